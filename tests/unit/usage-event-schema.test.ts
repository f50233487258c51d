import fs from 'node:fs';
import avro from 'avsc';
import { incompatiblePairs } from '../../schemas/codec';
import { usageEventRegistry, usageEventSchemaFiles } from '../../schemas/usage-event/schema';
import { USAGE_EVENT_FIELDS } from '../../schemas/usage-event/types';
import type { UsageEvent } from '../../schemas/usage-event/types';

interface AvscField {
  name: string;
  type: unknown;
  doc?: string;
  default?: unknown;
}

function kindOf(t: unknown): string {
  if (typeof t === 'string') return t === 'int' ? 'long' : t;
  if (Array.isArray(t)) {
    const nonNull = t.filter((x) => x !== 'null');
    return `${kindOf(nonNull[0])}?`;
  }
  const o = t as { type: string; values?: unknown };
  if (o.type === 'map') return `map<${kindOf(o.values)}>`;
  return kindOf(o.type);
}

const files = usageEventSchemaFiles();
const newest = files[files.length - 1];
const schemaOf = (file: string): { fields: AvscField[]; doc?: string } =>
  JSON.parse(fs.readFileSync(file, 'utf8')) as { fields: AvscField[]; doc?: string };

test('every published version is kept: v1..vN with no gaps', () => {
  expect(files.map((f) => f.version)).toEqual(files.map((_, i) => i + 1));
  expect(files.length).toBeGreaterThanOrEqual(2);
});

test('the TypeScript type matches the newest .avsc field by field (names, order, kinds)', () => {
  const fields = schemaOf(newest?.file ?? '').fields;
  expect(fields.map((f) => [f.name, kindOf(f.type)])).toEqual(Object.entries(USAGE_EVENT_FIELDS));
});

test('every field of every version is documented, optional fields default to null', () => {
  for (const { file } of files) {
    const s = schemaOf(file);
    expect(s.doc?.length).toBeGreaterThan(10);
    for (const f of s.fields) {
      expect([f.name, (f.doc ?? '').length > 10]).toEqual([f.name, true]);
      if (Array.isArray(f.type)) expect([f.name, f.type[0], f.default]).toEqual([f.name, 'null', null]);
    }
  }
});

test('FULL_TRANSITIVE: every version reads data written by every other (backward and forward)', () => {
  expect(incompatiblePairs(usageEventRegistry().versions)).toEqual([]);
  expect(usageEventRegistry().versions).toHaveLength(files.length);
});

const sample: UsageEvent = {
  event_id: '01939a6e-6c3f-7b6a-9c1d-2f7e8a9b0c1d',
  occurred_at: Date.UTC(2026, 10, 29, 12, 0, 0),
  org_id: 'acme',
  team_id: 'team-search',
  user_id: 'svc-indexer',
  project_id: null,
  application: 'search-api',
  environment: 'production',
  provider: 'anthropic',
  operation: 'chat',
  request_model: 'claude-opus-4-1',
  response_model: 'claude-opus-4-1-20250805',
  streaming: true,
  service_tier: 'priority',
  status: 'ok',
  error_type: null,
  duration_ms: 5120,
  time_to_first_token_ms: 640,
  input_tokens: 12000,
  cache_read_input_tokens: 8000,
  cache_creation_input_tokens: 1000,
  output_tokens: 900,
  reasoning_output_tokens: 300,
  client_cost_nanousd: 123_456_789,
  tags: { feature: 'ranking', ticket: 'SRCH-42' },
  sdk: 'tokenledger-node/0.1.0',
};

test.each(files.map((f) => [f.version, f.file] as const))(
  'data written with v%d reads with the current schema',
  (version, file) => {
    const writer = avro.Type.forSchema(schemaOf(file) as unknown as avro.Schema);
    const registry = usageEventRegistry();
    // what an emitter of that version would have written: the sample, restricted to that version's fields
    const written = writer.clone(sample, { wrapUnions: false }) as Record<string, unknown>;
    const fp = registry.versions.find((v) => v.version === version)?.fingerprint;
    if (fp === undefined) throw new Error(`no v${version} in the registry`);
    const message = Buffer.concat([Buffer.from([0xc3, 0x01]), fp, writer.toBuffer(written)]);
    const decoded = registry.decode(message);
    expect(decoded.writerVersion).toBe(version);
    const expected = Object.fromEntries(
      Object.keys(USAGE_EVENT_FIELDS).map((k) => [k, k in written ? sample[k as keyof UsageEvent] : null]),
    );
    expect(decoded.value).toEqual(expected);
  },
);

test('the current version round-trips an event exactly', () => {
  const r = usageEventRegistry();
  expect(r.decode(r.encode(sample))).toEqual({ value: sample, writerVersion: r.current.version });
});
