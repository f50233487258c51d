#!/usr/bin/env node
// kafkajs 2.2.4 groups a send's messages by partition with `[...current, message]` for every message: O(n²)
// copies and garbage per send (upstream PR tulios/kafkajs#1576, never merged; kafkajs is unmaintained). At the
// emitter's batch sizes that is a third of its CPU. This replaces that one file with the linear version, only
// when it still holds the known quadratic code; anything else is left alone and reported.
// Run by `npm install` (postinstall) and infra/bootstrap.mjs; idempotent. See docs/decisions/0006-kafkajs-patch.md.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const file = join(root, 'node_modules', 'kafkajs', 'src', 'producer', 'groupMessagesPerPartition.js');
const MARK = '// tokenledger: linear grouping';
const QUADRATIC = 'return Object.assign(result, { [partition]: [...current, message] })';
const LINEAR = `${MARK} (see infra/patches/kafkajs-group-messages.mjs)
module.exports = ({ topic, partitionMetadata, messages, partitioner }) => {
  if (partitionMetadata.length === 0) {
    return {}
  }

  const result = {}
  for (const message of messages) {
    const partition = partitioner({ topic, partitionMetadata, message })
    const current = result[partition]
    if (current === undefined) result[partition] = [message]
    else current.push(message)
  }
  return result
}
`;

if (!existsSync(file)) process.exit(0); // kafkajs not installed (yet)
const text = readFileSync(file, 'utf8');
if (text.startsWith(MARK)) process.exit(0);
if (!text.includes(QUADRATIC)) {
  console.error(`kafkajs patch: ${file} is not the known quadratic version; left as it is`);
  process.exit(0);
}
writeFileSync(file, LINEAR);
console.error('kafkajs patch: linear groupMessagesPerPartition applied');
