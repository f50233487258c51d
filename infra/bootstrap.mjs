#!/usr/bin/env node
// Set-up that every top-level command runs first (npm run demo | test | bench): plain Node, no dependencies.
//  1. npm dependencies: `npm install` from package-lock.json when node_modules was not installed from this lock.
//     (Not `npm ci`: chdb lists per-platform engine packages as optional dependencies, and the lock can only
//     record the ones the registry serves, which `npm ci` then reports as missing.);
//  2. the Apache Kafka broker jars from Maven Central (infra/kafka/fetch-jars.sh), unless KAFKA_BROKERS names a cluster;
//  3. with --browser (npm test): Debian's chromium for the HTML report's browser test, installed with apt-get when
//     running as root and missing (otherwise a note says how; the test then fails naming what is missing).
// Each step is skipped quickly when everything is already in place.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { getuid } from 'node:process';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const [major] = process.versions.node.split('.').map(Number);
if (major < 20) {
  console.error(`tokenledger needs Node.js 20 or newer; this is ${process.version}`);
  process.exit(1);
}

function run(cmd, args, what) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.error || r.status !== 0) {
    console.error(`setup: ${what} failed (${r.error ? r.error.message : `exit ${r.status}`})`);
    process.exit(r.status || 1);
  }
}

const lock = readFileSync(join(root, 'package-lock.json'));
const want = createHash('sha256').update(lock).digest('hex');
const stamp = join(root, 'node_modules', '.tokenledger-lock-sha256');
if (!existsSync(stamp) || readFileSync(stamp, 'utf8') !== want) {
  console.error('setup: installing npm dependencies ...');
  run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], 'npm install');
  writeFileSync(stamp, want);
}

// The kafkajs fixes applied at install (postinstall); run again in case node_modules came from elsewhere.
run('node', [join(root, 'infra', 'patches', 'kafkajs.mjs')], 'patching kafkajs');

if (!process.env.KAFKA_BROKERS) {
  run('bash', [join(root, 'infra', 'kafka', 'fetch-jars.sh')], 'fetching the Kafka jars');
}

if (process.argv.includes('--browser')) {
  const candidates = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'];
  if (!candidates.some((p) => p && existsSync(p))) {
    const aptGet = spawnSync('sh', ['-c', 'command -v apt-get'], { encoding: 'utf8' }).stdout.trim();
    if (getuid?.() === 0 && aptGet !== '') {
      console.error("setup: installing Debian's chromium for the report's browser test (apt-get) ...");
      const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
      for (const args of [
        ['update', '-qq'],
        ['install', '-y', '-qq', '--no-install-recommends', 'chromium'],
      ]) {
        const r = spawnSync(aptGet, args, { stdio: ['ignore', 'ignore', 'inherit'], env });
        if (r.status !== 0) {
          console.error(`setup: apt-get ${args.join(' ')} failed: the report's browser test will fail`);
          break;
        }
      }
    } else {
      console.error(
        "setup: no Chromium found: the report's browser test needs it (apt-get install chromium, or set CHROMIUM_PATH)",
      );
    }
  }
}
