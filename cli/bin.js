#!/usr/bin/env node
// The `tokenledger` command: runs the TypeScript CLI through tsx's CommonJS hook (no build step).
require('tsx/cjs');
require('./main.ts');
