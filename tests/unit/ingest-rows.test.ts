/** Ingest's pure parts: message → row or dead letter (reason codes), and the per-partition repeat detector. */
import { randomUUID } from 'node:crypto';
import {
  createConverter,
  dlqMessage,
  dlqRow,
  DLQ_HEADERS,
  IdSet,
  PartitionDedupe,
} from '../../consumers/ingest';
import { loadCatalog, priceEvent } from '../../consumers/pricing';
import { usageEventRegistry } from '../../schemas/usage-event/schema';
import type { UsageEvent } from '../../schemas/usage-event/types';

const registry = usageEventRegistry();
const catalog = loadCatalog();
const converter = createConverter(registry, catalog);
const now = Date.UTC(2026, 10, 29, 12);

const event = (patch: Partial<UsageEvent> = {}): UsageEvent => ({
  event_id: '0194f3c2-7d1e-7abc-8def-0123456789ab',
  occurred_at: now - 60_000,
  org_id: null,
  team_id: 'search',
  user_id: 'ana',
  project_id: null,
  application: null,
  environment: 'prod',
  provider: 'anthropic',
  operation: 'chat',
  request_model: 'claude-sonnet-4-5',
  response_model: null,
  streaming: true,
  service_tier: null,
  status: 'ok',
  error_type: null,
  duration_ms: 1200,
  time_to_first_token_ms: null,
  input_tokens: 3000,
  cache_read_input_tokens: 1000,
  cache_creation_input_tokens: 500,
  output_tokens: 400,
  reasoning_output_tokens: 100,
  client_cost_nanousd: null,
  tags: { feature: 'answers' },
  sdk: 'test',
  ...patch,
});
const msg = (value: Buffer | null) => ({
  topic: 't',
  partition: 2,
  offset: '41',
  key: Buffer.from('search'),
  value,
});

test('a valid event becomes a row: nulls as "", money as an exact decimal string, Kafka coordinates and fingerprint kept', () => {
  const e = event();
  const c = converter.convert(msg(registry.encode(e)), now);
  if (!c.ok) throw new Error(c.message);
  expect(c.row).toMatchObject({
    event_id: e.event_id,
    occurred_at: e.occurred_at,
    org_id: '',
    project_id: '',
    input_tokens: 3000,
    cost_nanousd: priceEvent(catalog, e).cost_nanousd.toString(),
    cost_status: 'priced',
    kafka_topic: 't',
    kafka_partition: 2,
    kafka_offset: '41',
    schema_fingerprint: registry.current.fingerprintHex,
  });
  expect(c.row.duration_ms).toBe(1200);
  expect(c.row.time_to_first_token_ms).toBeNull();
});

test.each([
  ['empty_value', null],
  ['bad_magic', Buffer.from('{"team_id":"x"}')],
  ['unknown_fingerprint', Buffer.concat([Buffer.from([0xc3, 0x01]), Buffer.alloc(8, 7), Buffer.from([0])])],
  [
    'body_invalid',
    Buffer.concat([registry.encode(event()).subarray(0, 10), Buffer.from([0xff, 0xff, 0xff])]),
  ],
  ['tokens_negative', registry.encode(event({ output_tokens: -3 }))],
  ['team_missing', registry.encode(event({ team_id: '' }))],
  ['occurred_at_future', registry.encode(event({ occurred_at: now + 3600_000 }))],
  // older than the raw table keeps: a repeat could no longer be found, and rollups outlive raw rows
  ['occurred_at_too_old', registry.encode(event({ occurred_at: now - 396 * 24 * 3600_000 }))],
  // a value the UInt32 column cannot hold must not stop ingest
  ['duration_out_of_range', registry.encode(event({ duration_ms: 2 ** 32 }))],
  ['duration_out_of_range', registry.encode(event({ time_to_first_token_ms: -1 }))],
  [
    'cost_out_of_range',
    registry.encode(
      event({
        request_model: 'claude-sonnet-4-5',
        output_tokens: 2 ** 50,
        input_tokens: 1,
        cache_read_input_tokens: 0,
        cache_creation_input_tokens: 0,
        reasoning_output_tokens: 0,
      }),
    ),
  ],
])('%s goes to the DLQ with that reason', (reason, value) => {
  const c = converter.convert(msg(value), now);
  expect(c.ok).toBe(false);
  if (!c.ok) {
    expect(c.reason).toBe(reason);
    expect(c.message.length).toBeGreaterThan(5);
  }
});

test('event ids are stored in lower case, as ClickHouse prints UUIDs (repeats compare as text)', () => {
  const c = converter.convert(
    msg(registry.encode(event({ event_id: '0194F3C2-7D1E-7ABC-8DEF-0123456789AB' }))),
    now,
  );
  expect(c.ok && c.row.event_id).toBe('0194f3c2-7d1e-7abc-8def-0123456789ab');
});

test('a dead letter keeps the original bytes, key and headers and adds the reason headers', () => {
  const source = { ...msg(Buffer.from('junk')), headers: { trace: Buffer.from('abc') } };
  const d = { source, reason: 'bad_magic' as const, message: 'not avro', at: now };
  const m = dlqMessage(d);
  expect(m.value?.toString()).toBe('junk');
  expect(m.key?.toString()).toBe('search');
  expect(m.headers.trace?.toString()).toBe('abc');
  expect(m.headers[DLQ_HEADERS.reason]).toBe('bad_magic');
  expect(m.headers[DLQ_HEADERS.offset]).toBe('41');
  expect(dlqRow(d)).toMatchObject({
    reason: 'bad_magic',
    value_hex: Buffer.from('junk').toString('hex'),
    headers: { trace: 'abc' },
  });
});

test('IdSet: exact membership of 128-bit ids, growing past its first capacity', () => {
  const set = new IdSet(16);
  const ids = Array.from({ length: 50_000 }, () => randomUUID());
  expect(ids.map((id) => set.add(id)).every(Boolean)).toBe(true);
  expect(set.size).toBe(ids.length);
  expect(ids.every((id) => set.has(id))).toBe(true);
  expect(set.add(ids[123] ?? '')).toBe(false);
  // ids that differ from a member in one hex digit only, at any of the 32 positions, are not members
  const member = ids[7] ?? '';
  for (let at = 0; at < member.length; at++) {
    if (member[at] === '-') continue;
    const near = member.slice(0, at) + (member[at] === '0' ? '1' : '0') + member.slice(at + 1);
    expect([at, set.has(near)]).toEqual([at, false]);
  }
  expect(Array.from({ length: 1000 }, () => randomUUID()).some((id) => set.has(id))).toBe(false);
});

test('IdSet: sized from the count it expects, it holds that many in under 25 bytes per id without growing', () => {
  const n = 100_000;
  const set = new IdSet(n);
  const before = set.bytes;
  const ids = Array.from({ length: n }, () => randomUUID());
  for (const id of ids) set.add(id);
  expect(set.bytes).toBe(before);
  expect(set.bytes / n).toBeLessThan(25);
  expect(ids.every((id) => set.has(id))).toBe(true);
  for (let i = 0; i < n / 50; i++) set.add(randomUUID()); // 2 % more than expected: grows by half, keeps all
  expect(set.bytes).toBeGreaterThan(before);
  expect(set.bytes).toBeLessThan(before * 1.6);
  expect(ids.every((id) => set.has(id))).toBe(true);
});

test('PartitionDedupe: memory answers for recent events; older than the assignment or what memory dropped needs ClickHouse', () => {
  const d = new PartitionDedupe(60_000, 1_000_000);
  expect(d.needsLookup(999_999)).toBe(true); // ClickHouse may have it from before the assignment
  expect(d.needsLookup(1_000_001)).toBe(false);
  const a = randomUUID();
  d.add(a, 1_000_500);
  expect(d.has(a)).toBe(true);
  d.add(randomUUID(), 1_040_000); // half a horizon later: a new generation; `a` is in the previous one
  expect(d.has(a)).toBe(true);
  expect(d.needsLookup(1_000_500)).toBe(false);
  d.add(randomUUID(), 1_080_000); // the generation holding `a` is dropped
  expect(d.has(a)).toBe(false);
  expect(d.needsLookup(1_000_500)).toBe(true);
  expect(d.needsLookup(1_040_000)).toBe(true);
  expect(d.needsLookup(1_050_000)).toBe(false);
  expect(d.size).toBe(2);
});
