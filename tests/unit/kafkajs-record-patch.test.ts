// The kafkajs record-encoder patch (infra/patches/kafkajs.mjs) must write exactly the bytes kafkajs's own code
// writes. The patched file keeps the original as `slow`; every case here is encoded both ways and compared.
import { mulberry32 } from '../../lib/random';

type RecordInput = {
  offsetDelta?: number;
  timestampDelta?: number;
  key?: unknown;
  value?: unknown;
  headers?: Record<string, unknown>;
};
type Encoded = { buffer: Buffer; buf: Buffer; offset: number };
type RecordFn = ((r: RecordInput) => Encoded) & { slow?: (r: RecordInput) => Encoded };

// eslint-disable-next-line @typescript-eslint/no-require-imports
const Record = require('kafkajs/src/protocol/recordBatch/record/v0') as RecordFn;

function bytesBothWays(r: RecordInput, fastPath = false): [string, string] {
  const slow = Record.slow;
  if (slow === undefined) throw new Error('kafkajs is not patched: run node infra/patches/kafkajs.mjs');
  const fast = Record(r);
  // the fast path computes the exact size first: every allocated byte is written
  if (fastPath) expect(fast.offset).toBe(fast.buf.length);
  return [fast.buffer.toString('hex'), slow(r).buffer.toString('hex')];
}

describe('kafkajs record encoder patch', () => {
  it('is applied (the original is kept as `slow`)', () => {
    expect(typeof Record.slow).toBe('function');
  });

  it.each<[string, RecordInput]>([
    [
      'string key, buffer value',
      { key: 'team-a', value: Buffer.from('hello'), offsetDelta: 3, timestampDelta: 17 },
    ],
    ['null key', { key: null, value: Buffer.from([1, 2, 3]) }],
    ['undefined key and value', {}],
    ['null value (tombstone)', { key: 'k', value: null, offsetDelta: 1 }],
    ['string value', { key: Buffer.from('k'), value: 'plain text' }],
    ['multi-byte UTF-8', { key: 'équipe-ü-🚀', value: 'naïve ✓', offsetDelta: 200 }],
    ['negative timestamp delta', { key: 'k', value: Buffer.alloc(0), timestampDelta: -1234 }],
    [
      'deltas at the fast-path edge',
      { key: 'k', value: Buffer.alloc(1), timestampDelta: 0x1ffffffe, offsetDelta: 70_000 },
    ],
    [
      'a timestamp delta past 2^29 (original code)',
      { key: 'k', value: Buffer.alloc(1), timestampDelta: 2 ** 40 },
    ],
    ['a value over 16 KiB', { key: 'k', value: Buffer.alloc(20_000, 7), offsetDelta: 16_383 }],
    [
      'headers (original code)',
      { key: 'k', value: Buffer.from('v'), headers: { reason: 'x', list: ['a', 'b'] } },
    ],
    ['empty headers object', { key: 'k', value: Buffer.from('v'), headers: {} }],
  ])('%s: same bytes as kafkajs', (name, r) => {
    const [fast, slow] = bytesBothWays(r, !name.includes('(original code)'));
    expect(fast).toBe(slow);
  });

  it('matches on 5,000 random records', () => {
    const rnd = mulberry32(42);
    const int = (n: number): number => Math.floor(rnd() * n);
    for (let i = 0; i < 5000; i++) {
      const r: RecordInput = {
        offsetDelta: int(3) === 0 ? int(1 << 20) : int(200),
        timestampDelta: int(4) === 0 ? -int(1 << 28) : int(1 << (int(29) + 1)),
        key: int(5) === 0 ? null : int(2) === 0 ? `team-${int(1e6)}` : Buffer.alloc(int(40), int(256)),
        value: int(9) === 0 ? null : Buffer.alloc(int(3) === 0 ? int(1 << 15) : int(300), int(256)),
      };
      const [fast, slow] = bytesBothWays(r);
      if (fast !== slow) throw new Error(`record ${i} differs: ${JSON.stringify({ ...r, value: '…' })}`);
    }
  });
});
