#!/usr/bin/env node
// Two fixes to kafkajs 2.2.4 (unmaintained since 2023), each replacing one file in node_modules only when it
// still holds the known upstream code; anything else is left alone and reported. Neither changes what goes on
// the wire: the same messages, partitions, order and bytes. See docs/decisions/0006-kafkajs-patch.md.
//
// 1. producer/groupMessagesPerPartition.js groups a send's messages with `[...current, message]` for every
//    message: O(n²) copies per send (upstream PR tulios/kafkajs#1576, never merged).
// 2. protocol/recordBatch/record/v0/index.js encodes each record through a fresh 512-byte zeroed Encoder, one
//    Buffer.from per varint and long.js objects for the timestamp: about a fifth of the emitter's CPU and much of
//    its garbage. The replacement computes the record's exact size with plain integer arithmetic and writes it
//    into one buffer; records with headers or out-of-range deltas still take the original code, kept in the
//    file as `slow` (tests/unit/kafkajs-record-patch.test.ts compares the two byte for byte).
//
// Run by `npm install` (postinstall) and infra/bootstrap.mjs; idempotent.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const src = join(root, 'node_modules', 'kafkajs', 'src');

const GROUP_MARK = '// tokenledger: linear grouping';
const QUADRATIC = 'return Object.assign(result, { [partition]: [...current, message] })';
const LINEAR = `${GROUP_MARK} (see infra/patches/kafkajs.mjs)
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

const RECORD_MARK = '// tokenledger: one-buffer record encoder';
const RECORD_EXPORT =
  'module.exports = ({ offsetDelta = 0, timestampDelta = 0, key, value, headers = {} }) => {';
const RECORD_FAST = `
${RECORD_MARK} (see infra/patches/kafkajs.mjs): the exact size first, then one buffer, no long.js.
const LIMIT = 0x1fffffff // |v| below 2^29: the zigzag of v fits a non-negative 31-bit integer
const zigzag = v => (v << 1) ^ (v >> 31)
const uvarintSize = u => (u < 0x80 ? 1 : u < 0x4000 ? 2 : u < 0x200000 ? 3 : u < 0x10000000 ? 4 : 5)
const writeUVarInt = (buf, pos, u) => {
  while (u >= 0x80) {
    buf[pos++] = (u & 0x7f) | 0x80
    u >>>= 7
  }
  buf[pos++] = u
  return pos
}
const small = v => typeof v === 'number' && Number.isInteger(v) && v > -LIMIT && v < LIMIT
const fast = record => {
  const { offsetDelta = 0, timestampDelta = 0, key, value, headers } = record
  if (headers != null) for (const _ in headers) return slow(record)
  if (!small(offsetDelta) || !small(timestampDelta)) return slow(record)
  const keyIsString = typeof key === 'string'
  const valueIsString = typeof value === 'string'
  if (!(key == null || keyIsString || Buffer.isBuffer(key))) return slow(record)
  if (!(value == null || valueIsString || Buffer.isBuffer(value))) return slow(record)
  const keyLength = key == null ? -1 : keyIsString ? Buffer.byteLength(key, 'utf8') : key.length
  const valueLength = value == null ? -1 : valueIsString ? Buffer.byteLength(value, 'utf8') : value.length
  if (keyLength >= LIMIT || valueLength >= LIMIT) return slow(record)
  const td = zigzag(timestampDelta)
  const od = zigzag(offsetDelta)
  const kl = zigzag(keyLength)
  const vl = zigzag(valueLength)
  const body =
    1 + uvarintSize(td) + uvarintSize(od) +
    uvarintSize(kl) + Math.max(keyLength, 0) +
    uvarintSize(vl) + Math.max(valueLength, 0) +
    1 // headers: a zero-length array
  const size = uvarintSize(zigzag(body)) + body
  const buf = Buffer.allocUnsafe(size)
  let pos = writeUVarInt(buf, 0, zigzag(body))
  buf[pos++] = 0 // attributes
  pos = writeUVarInt(buf, pos, td)
  pos = writeUVarInt(buf, pos, od)
  pos = writeUVarInt(buf, pos, kl)
  if (keyIsString) pos += buf.write(key, pos, keyLength, 'utf8')
  else if (key != null) pos += key.copy(buf, pos)
  pos = writeUVarInt(buf, pos, vl)
  if (valueIsString) pos += buf.write(value, pos, valueLength, 'utf8')
  else if (value != null) pos += value.copy(buf, pos)
  buf[pos++] = 0 // headers count
  const encoder = Object.create(Encoder.prototype)
  encoder.buf = buf
  encoder.offset = pos
  return encoder
}

module.exports = fast
module.exports.slow = slow
`;

const PATCHED_VERSION = '2.2.4';
const pkg = join(root, 'node_modules', 'kafkajs', 'package.json');
const version = existsSync(pkg) ? JSON.parse(readFileSync(pkg, 'utf8')).version : undefined;

/** Replaces `file` with `patch(text)` unless it is marked already; reports and leaves unknown versions alone. */
function apply(relative, mark, known, patch, what) {
  const file = join(src, relative);
  if (!existsSync(file)) return; // kafkajs not installed (yet)
  if (version !== PATCHED_VERSION) {
    console.error(`kafkajs patch: kafkajs ${version} is not ${PATCHED_VERSION}; ${relative} left as it is`);
    return;
  }
  const text = readFileSync(file, 'utf8');
  if (text.includes(mark)) return;
  if (!text.includes(known)) {
    console.error(`kafkajs patch: ${file} is not the known version; left as it is`);
    return;
  }
  writeFileSync(file, patch(text));
  console.error(`kafkajs patch: ${what} applied`);
}

apply(
  'producer/groupMessagesPerPartition.js',
  GROUP_MARK,
  QUADRATIC,
  () => LINEAR,
  'linear groupMessagesPerPartition',
);
apply(
  'protocol/recordBatch/record/v0/index.js',
  RECORD_MARK,
  RECORD_EXPORT,
  (text) =>
    text.replace(RECORD_EXPORT, RECORD_EXPORT.replace('module.exports =', 'const slow =')) + RECORD_FAST,
  'one-buffer record encoder',
);
