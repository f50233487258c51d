/**
 * UUIDv7 (RFC 9562): 48-bit Unix milliseconds, version 7, a 12-bit counter that orders ids within one
 * millisecond (method 1 of the RFC), variant 10, 62 random bits. Time-ordered, so ClickHouse keeps the
 * event_ids of one period together. Random bytes come from a pooled buffer; the hex digits are written into one
 * reusable buffer from a table and read out as a single string, to keep `record()` cheap.
 */
import { randomFillSync } from 'node:crypto';

/** ASCII codes of the two hex digits of each byte value, high digit in the upper 8 bits. */
const HEX_PAIR = Uint16Array.from({ length: 256 }, (_, i) => {
  const d = i.toString(16).padStart(2, '0');
  return (d.charCodeAt(0) << 8) | d.charCodeAt(1);
});
const POOL_SIZE = 16 * 1024;
const pool = Buffer.allocUnsafe(POOL_SIZE);
let poolPos = POOL_SIZE;
let lastMs = -1;
let counter = 0;
/** The 36 characters of one id are written here, then read out as one string (no concatenation garbage). */
const text = Buffer.from('00000000-0000-7000-8000-000000000000', 'latin1');

function putHex(at: number, byte: number): void {
  const pair = HEX_PAIR[byte & 0xff] ?? 0x3030;
  text[at] = pair >>> 8;
  text[at + 1] = pair & 0xff;
}

export function uuidv7(now: number = Date.now()): string {
  if (poolPos + 9 > POOL_SIZE) {
    randomFillSync(pool);
    poolPos = 0;
  }
  const p = poolPos;
  poolPos += 9;
  if (now > lastMs) {
    lastMs = now;
    counter = (pool[p] ?? 0) << 3; // a random start in the lower half leaves room to count up
  } else if (++counter > 0xfff) {
    lastMs++; // 4096 ids in one millisecond: borrow the next one, keeping ids ordered
    counter = 0;
  }
  const hi = Math.floor(lastMs / 0x10000); // top 32 of the 48 time bits
  const lo = lastMs % 0x10000;
  putHex(0, hi >>> 24);
  putHex(2, hi >>> 16);
  putHex(4, hi >>> 8);
  putHex(6, hi);
  putHex(9, lo >>> 8);
  putHex(11, lo);
  putHex(14, 0x70 | (counter >>> 8));
  putHex(16, counter);
  putHex(19, 0x80 | ((pool[p + 1] ?? 0) & 0x3f));
  putHex(21, pool[p + 2] ?? 0);
  for (let i = 0; i < 6; i++) putHex(24 + 2 * i, pool[p + 3 + i] ?? 0);
  return text.toString('latin1', 0, 36);
}
