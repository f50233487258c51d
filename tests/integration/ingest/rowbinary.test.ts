/** The RowBinary encoder against the real engine: every column reads back as the JSON insert of the same rows. */
import { ensureSchema } from '../../../migrations/runner';
import { encodeUsageRows, USAGE_COLUMNS } from '../../../consumers/ingest/rowbinary';
import type { UsageRow } from '../../../consumers/ingest';
import { Readable } from 'node:stream';
import { useTestDatabase } from '../../helpers/clickhouse';
import { testLogger } from '../../helpers/env';

const db = useTestDatabase();
beforeAll(async () => ensureSchema(db.client(), testLogger()).then(() => undefined));

const row = (i: number, patch: Partial<UsageRow> = {}): UsageRow => ({
  event_id:
    i % 4 === 0
      ? `0194F3C2-7D1E-7ABC-8DEF-${String(i).padStart(10, '0')}Af`
      : `0194f3c2-7d1e-7abc-8def-${String(i).padStart(12, '0')}`,
  occurred_at: Date.now() - 60_000 + i,
  org_id: 'acme',
  team_id: `team-${i % 3}`,
  user_id: i % 2 === 0 ? '' : 'José Ünïcode ✓',
  project_id: '',
  application: i === 5 ? `app-${'a'.repeat(300)}` : i === 6 ? `é${'x'.repeat(200)}` : 'app',
  environment: 'prod',
  provider: 'openai',
  operation: 'chat',
  request_model: 'gpt-4.1',
  response_model: 'gpt-4.1-2025-04-14',
  streaming: i % 2 === 1,
  service_tier: '',
  status: 'ok',
  error_type: '',
  duration_ms: i % 3 === 0 ? null : 4_000_000_000,
  time_to_first_token_ms: i % 2 === 0 ? null : 12,
  input_tokens: 2 ** 40 + i,
  cache_read_input_tokens: 0,
  cache_creation_input_tokens: 127,
  output_tokens: 128,
  reasoning_output_tokens: 16_384,
  client_cost_nanousd: i % 2 === 0 ? null : i % 3 === 0 ? '-9007199254740993' : '-5',
  cost_nanousd: '9007199254740993123', // above 2^53: exact only as a string
  price_version: '2026-11-29.1',
  cost_status: 'priced',
  tags: i % 3 === 0 ? {} : { feature: 'search', 'pull request': '#42', ünï: 'çødé' },
  sdk: 'tokenledger-node/0.1.0',
  schema_fingerprint: 'c0ffee0123456789',
  kafka_topic: 'tokenledger.usage.v1',
  kafka_partition: 11,
  kafka_offset: String(2 ** 40 + i),
  ...patch,
});

test('RowBinary rows read back exactly as the same rows inserted as JSON', async () => {
  const rows = Array.from({ length: 300 }, (_, i) => row(i));
  const c = db.client();
  await c.command({ query: 'CREATE TABLE json_copy AS usage_events' });
  await c.insert({ table: 'json_copy', values: rows, format: 'JSONEachRow' });
  const r = await c.exec({
    query: `INSERT INTO usage_events (${USAGE_COLUMNS.join(', ')}) FORMAT RowBinary`,
    values: Readable.from([encodeUsageRows(rows)]),
  });
  r.stream.resume();
  const cols = USAGE_COLUMNS.join(', ');
  const read = async (table: string): Promise<unknown[]> =>
    (
      await c.query({ query: `SELECT ${cols} FROM ${table} ORDER BY event_id`, format: 'JSONEachRow' })
    ).json();
  const viaBinary = await read('usage_events');
  expect(viaBinary).toHaveLength(rows.length);
  expect(viaBinary).toEqual(await read('json_copy'));
  const second = viaBinary.find((r) => (r as { kafka_offset: string }).kafka_offset === String(2 ** 40 + 1));
  expect(second).toMatchObject({
    cost_nanousd: '9007199254740993123',
    user_id: 'José Ünïcode ✓',
    kafka_offset: String(2 ** 40 + 1),
  });
});
