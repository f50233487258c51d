/**
 * UUIDv7 (RFC 9562): 48-bit Unix milliseconds, version 7, a 12-bit counter that orders ids within one
 * millisecond (method 1 of the RFC), variant 10, 62 random bits. Time-ordered, so ClickHouse keeps the
 * event_ids of one period together. Random bytes come from a pooled buffer to keep `record()` cheap.
 */
import { randomFillSync } from 'node:crypto';

const POOL_SIZE = 16 * 1024;
const pool = Buffer.allocUnsafe(POOL_SIZE);
let poolPos = POOL_SIZE;
const scratch = Buffer.alloc(16);
let lastMs = -1;
let counter = 0;

export function uuidv7(now: number = Date.now()): string {
  if (poolPos + 9 > POOL_SIZE) {
    randomFillSync(pool);
    poolPos = 0;
  }
  if (now > lastMs) {
    lastMs = now;
    counter = pool.readUInt8(poolPos) << 3; // a random start in the lower half leaves room to count up
  } else if (++counter > 0xfff) {
    lastMs++; // 4096 ids in one millisecond: borrow the next one, keeping ids ordered
    counter = 0;
  }
  scratch.writeUIntBE(lastMs, 0, 6);
  scratch.writeUInt16BE(0x7000 | counter, 6);
  pool.copy(scratch, 8, poolPos + 1, poolPos + 9);
  scratch.writeUInt8(0x80 | (scratch.readUInt8(8) & 0x3f), 8);
  poolPos += 9;
  const h = scratch.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
