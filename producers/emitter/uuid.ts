/**
 * UUIDv7 (RFC 9562): 48-bit Unix milliseconds, version 7, a 12-bit counter that orders ids within one
 * millisecond (method 1 of the RFC), variant 10, 62 random bits. Time-ordered, so ClickHouse keeps the
 * event_ids of one period together. Random bytes come from a pooled buffer and hex digits from a table, to
 * keep `record()` cheap.
 */
import { randomFillSync } from 'node:crypto';

const HEX: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
const POOL_SIZE = 16 * 1024;
const pool = Buffer.allocUnsafe(POOL_SIZE);
let poolPos = POOL_SIZE;
let lastMs = -1;
let counter = 0;

const hex = (byte: number): string => HEX[byte & 0xff] ?? '00';

export function uuidv7(now: number = Date.now()): string {
  if (poolPos + 9 > POOL_SIZE) {
    randomFillSync(pool);
    poolPos = 0;
  }
  const p = poolPos;
  poolPos += 9;
  if (now > lastMs) {
    lastMs = now;
    counter = pool.readUInt8(p) << 3; // a random start in the lower half leaves room to count up
  } else if (++counter > 0xfff) {
    lastMs++; // 4096 ids in one millisecond: borrow the next one, keeping ids ordered
    counter = 0;
  }
  const hi = Math.floor(lastMs / 0x10000); // top 32 of the 48 time bits
  const lo = lastMs % 0x10000;
  const r = (i: number): number => pool.readUInt8(p + 1 + i);
  return (
    hex(hi >>> 24) +
    hex(hi >>> 16) +
    hex(hi >>> 8) +
    hex(hi) +
    '-' +
    hex(lo >>> 8) +
    hex(lo) +
    '-' +
    hex(0x70 | (counter >>> 8)) +
    hex(counter) +
    '-' +
    hex(0x80 | (r(0) & 0x3f)) +
    hex(r(1)) +
    '-' +
    hex(r(2)) +
    hex(r(3)) +
    hex(r(4)) +
    hex(r(5)) +
    hex(r(6)) +
    hex(r(7))
  );
}
