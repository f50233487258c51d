import fs from 'node:fs';
import path from 'node:path';
import avro from 'avsc';
import { incompatiblePairs } from '../../schemas/codec';
import { alertRegistry, alertSchemaFiles, decodeAlert, encodeAlert } from '../../schemas/alert/schema';
import { ALERT_FIELDS } from '../../schemas/alert/types';
import type { Alert } from '../../schemas/alert/types';

interface AvscField {
  name: string;
  type: unknown;
  doc?: string;
  default?: unknown;
}

/** The Avro kind of a field as ALERT_FIELDS spells it: 'string', 'long', 'string?', 'record?', 'array'. */
function kindOf(t: unknown): string {
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) {
    const nonNull = t.filter((x) => x !== 'null');
    return `${kindOf(nonNull[0])}?`;
  }
  return kindOf((t as { type: unknown }).type);
}

const files = alertSchemaFiles();
const newest = files[files.length - 1];
const schemaOf = (file: string): { fields: AvscField[]; doc?: string } =>
  JSON.parse(fs.readFileSync(file, 'utf8')) as { fields: AvscField[]; doc?: string };

/** Every record schema inside a schema (nested records of unions and arrays included). */
function records(t: unknown): { name: string; doc?: string; fields: AvscField[] }[] {
  if (Array.isArray(t)) return t.flatMap(records);
  if (typeof t !== 'object' || t === null) return [];
  const o = t as { type?: unknown; items?: unknown; fields?: AvscField[]; name?: string; doc?: string };
  if (o.type === 'record' && o.fields !== undefined) {
    return [
      { name: o.name ?? '', fields: o.fields, ...(o.doc === undefined ? {} : { doc: o.doc }) },
      ...o.fields.flatMap((f) => records(f.type)),
    ];
  }
  return [...records(o.type), ...records(o.items)];
}

test('every published version is kept: v1..vN with no gaps', () => {
  expect(files.map((f) => f.version)).toEqual(files.map((_, i) => i + 1));
  expect(files.length).toBeGreaterThanOrEqual(1);
});

test('the TypeScript type matches the newest .avsc field by field (names, order, kinds)', () => {
  const fields = schemaOf(newest?.file ?? '').fields;
  expect(fields.map((f) => [f.name, kindOf(f.type)])).toEqual(Object.entries(ALERT_FIELDS));
});

test('every record and field of every version is documented, optional fields default to null', () => {
  for (const { file } of files) {
    const all = records(schemaOf(file));
    expect(all.map((r) => r.name)).toEqual(['Alert', 'AlertBudget', 'Contributor']);
    for (const r of all) {
      expect([r.name, (r.doc ?? '').length > 10]).toEqual([r.name, true]);
      for (const f of r.fields) {
        expect([r.name, f.name, (f.doc ?? '').length > 10]).toEqual([r.name, f.name, true]);
        if (Array.isArray(f.type)) {
          expect([r.name, f.name, f.type[0], f.default]).toEqual([r.name, f.name, 'null', null]);
        }
      }
    }
  }
});

test('FULL_TRANSITIVE: every version reads data written by every other (backward and forward)', () => {
  expect(incompatiblePairs(alertRegistry().versions)).toEqual([]);
  expect(alertRegistry().versions).toHaveLength(files.length);
});

test('the fingerprint of every version matches the independent implementations (tests/fixtures)', () => {
  const fixtures = JSON.parse(
    fs.readFileSync(path.join(__dirname, '../fixtures/avro-fingerprints.json'), 'utf8'),
  ) as { cases: { schema: unknown; fingerprint_le_bytes: string }[] };
  for (const v of alertRegistry().versions) {
    const schema = JSON.parse(fs.readFileSync(files[v.version - 1]?.file ?? '', 'utf8')) as unknown;
    const fixture = fixtures.cases.find((c) => JSON.stringify(c.schema) === JSON.stringify(schema));
    expect([v.version, fixture?.fingerprint_le_bytes]).toEqual([v.version, v.fingerprintHex]);
  }
});

const MONEY_ABOVE_2_53 = 10n ** 17n; // $100M in nano-USD: 1e17 > 2^53 ≈ 9.007e15

const spike: Alert = {
  alert_id: '0123456789abcdef0123456789abcdef',
  kind: 'cost_spike',
  severity: 'critical',
  fired_at: Date.UTC(2026, 10, 29, 12, 16, 3, 517),
  org_id: 'acme',
  team_id: 'team-search',
  scope: 'team_model',
  model: 'claude-opus-4-1',
  user_id: null,
  project_id: null,
  window_start: Date.UTC(2026, 10, 29, 12, 0),
  window_end: Date.UTC(2026, 10, 29, 12, 15),
  observed_cost_nanousd: MONEY_ABOVE_2_53 + 1n,
  expected_cost_nanousd: 44_200_000_000n,
  observed_tokens: 2n ** 60n + 3n,
  expected_tokens: 1_234_567n,
  score: 9.3,
  rule: 'window 15m: observed >= 3x expected and >= $50/h over expected',
  budget: null,
  top_contributors: [
    { dimension: 'user', value: 'svc-indexer', cost_nanousd: MONEY_ABOVE_2_53 - 7n, share: 0.81 },
    { dimension: 'model', value: 'claude-opus-4-1', cost_nanousd: 5n, share: 0.19 },
  ],
  message: 'team-search spent $412 in the last 15 min, 9.3x its usual $44',
  related_alert_id: null,
  detector: 'tokenledger-detect/0.1.0 group=tokenledger-detect',
};

const budgetAlert: Alert = {
  ...spike,
  alert_id: 'fedcba9876543210fedcba9876543210',
  kind: 'budget_forecast',
  severity: 'warning',
  scope: 'project',
  model: null,
  project_id: 'search',
  expected_cost_nanousd: 0n,
  expected_tokens: 0n,
  score: 0.62,
  rule: 'forecast: the budget runs out before the period ends',
  budget: {
    budget_id: 'project:search:month',
    period: 'month',
    period_start: Date.UTC(2026, 10, 1) - 3_600_000,
    period_end: Date.UTC(2026, 11, 1) - 3_600_000,
    time_zone: 'Europe/Berlin',
    unit: 'usd',
    limit: MONEY_ABOVE_2_53 * 3n,
    spent: MONEY_ABOVE_2_53 + 123n,
    threshold_percent: 80,
    burn_rate: 2.5,
    burn_window: '1h/5m',
    forecast_exhausted_at: Date.UTC(2026, 10, 30, 7, 30),
  },
  top_contributors: [],
  message: 'project search will exhaust its monthly budget on 30 Nov',
  related_alert_id: '00000000000000000000000000000001',
};

test.each([
  ['a spike', spike],
  ['a budget alert', budgetAlert],
])('the current version round-trips %s exactly, money above 2^53 included', (_name, alert) => {
  const decoded = decodeAlert(encodeAlert(alert));
  expect(decoded).toEqual({ value: alert, writerVersion: alertRegistry().current.version });
  expect(decoded.value.observed_cost_nanousd).toBe(alert.observed_cost_nanousd);
  expect(typeof decoded.value.observed_cost_nanousd).toBe('bigint');
});

test('the wire carries single-object encoding: C3 01 and the current fingerprint', () => {
  const msg = encodeAlert(spike);
  expect(msg.subarray(0, 2).toString('hex')).toBe('c301');
  expect(msg.subarray(2, 10).toString('hex')).toBe(alertRegistry().current.fingerprintHex);
});

test.each(files.map((f) => [f.version, f.file] as const))(
  'data written with v%d by a plain Avro library reads with the current schema',
  (version, file) => {
    // a writer that knows nothing of our bigint mapping: longs as JS numbers (values below 2^53 here)
    const writer = avro.Type.forSchema(schemaOf(file) as unknown as avro.Schema, { wrapUnions: false });
    const small = {
      ...budgetAlert,
      observed_cost_nanousd: 412_000_000_000,
      expected_cost_nanousd: 0,
      observed_tokens: 1_000_000,
      expected_tokens: 0,
      budget: budgetAlert.budget && {
        ...budgetAlert.budget,
        limit: 1_000_000_000_000,
        spent: 620_000_000_000,
      },
    };
    const fp = alertRegistry().versions.find((v) => v.version === version)?.fingerprint;
    if (fp === undefined) throw new Error(`no v${version} in the registry`);
    const message = Buffer.concat([Buffer.from([0xc3, 0x01]), fp, writer.toBuffer(small)]);
    const decoded = decodeAlert(message);
    expect(decoded.writerVersion).toBe(version);
    expect(decoded.value).toEqual({
      ...budgetAlert,
      observed_cost_nanousd: 412_000_000_000n,
      observed_tokens: 1_000_000n,
      budget: { ...budgetAlert.budget, limit: 1_000_000_000_000n, spent: 620_000_000_000n },
    });
  },
);

test('a message from an unknown writer schema is CODEC_UNKNOWN_FINGERPRINT, not garbage', () => {
  const msg = Buffer.from(encodeAlert(spike));
  msg.writeUInt8(msg.readUInt8(4) ^ 0xff, 4);
  expect(() => decodeAlert(msg)).toThrow(
    expect.objectContaining({ code: 'CODEC_UNKNOWN_FINGERPRINT' }) as Error,
  );
  expect(() => decodeAlert(Buffer.from('{"alert_id":"x"}'))).toThrow(
    expect.objectContaining({ code: 'CODEC_BAD_MAGIC' }) as Error,
  );
});
