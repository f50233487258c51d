/**
 * `tokenledger prices check` as a user runs it: the real CLI in a child process against the real ClickHouse,
 * rows inserted straight into usage_events of a private database (the schema from the migrations), the current
 * catalog with and without an overrides file, the exit codes CI and cron test.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { clickhouseUrl } from '../../lib/config';
import type { Config } from '../../lib/config';
import { loadCatalog } from '../../consumers/pricing';
import { ensureSchema } from '../../migrations/runner';
import { runCli, isolatedEnv } from '../helpers/cli';
import type { CliResult } from '../helpers/cli';
import { useTestDatabase } from '../helpers/clickhouse';
import { testLogger, uniqueName } from '../helpers/env';

const db = useTestDatabase();
const empty = useTestDatabase();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenledger-prices-check-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const version = loadCatalog().version;

function cliEnv(config: Config, database: string): NodeJS.ProcessEnv {
  return isolatedEnv({
    CLICKHOUSE_URL: clickhouseUrl(config),
    CLICKHOUSE_USER: config.clickhouse.user,
    CLICKHOUSE_PASSWORD: config.clickhouse.password,
    CLICKHOUSE_DATABASE: database,
  });
}

const check = (...args: string[]): Promise<CliResult> =>
  runCli(['prices', 'check', ...args], cliEnv(db.config, db.name));

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

interface Row {
  provider: string;
  request_model: string;
  response_model: string;
  cost_status: 'priced' | 'unpriced' | 'client_estimate';
  ago: number;
  input_tokens?: number;
  output_tokens?: number;
  cost_nanousd?: string;
}

function toRow(r: Row, now: number): Record<string, unknown> {
  return {
    event_id: randomUUID(),
    occurred_at: new Date(now - r.ago).toISOString().replace('T', ' ').replace('Z', ''),
    team_id: 'team-a',
    provider: r.provider,
    request_model: r.request_model,
    response_model: r.response_model,
    cost_status: r.cost_status,
    cost_nanousd: r.cost_nanousd ?? '0',
    input_tokens: r.input_tokens ?? 100,
    output_tokens: r.output_tokens ?? 10,
  };
}

beforeAll(async () => {
  await ensureSchema(db.client(), testLogger());
  const now = Date.now();
  const gpt4o = { provider: 'openai', request_model: 'gpt-4o', response_model: 'gpt-4o-2024-08-06' };
  const mystery = { provider: 'acme', request_model: 'mystery-1', response_model: 'mystery-1' };
  const rows: Row[] = [
    // priced at ingest: never listed
    { ...gpt4o, cost_status: 'priced', ago: HOUR, cost_nanousd: '1000' },
    { ...gpt4o, cost_status: 'priced', ago: 2 * HOUR, cost_nanousd: '1000' },
    // stored unpriced (ingested before the catalog had it), priced by the catalog now
    {
      provider: 'openai',
      request_model: 'gpt-4o',
      response_model: '',
      cost_status: 'unpriced',
      ago: 3 * HOUR,
    },
    // unknown to the catalog: 2 unpriced + 1 with the client's estimate
    { ...mystery, cost_status: 'unpriced', ago: DAY, input_tokens: 1000, output_tokens: 200 },
    { ...mystery, cost_status: 'unpriced', ago: 2 * HOUR, input_tokens: 500, output_tokens: 50 },
    {
      ...mystery,
      cost_status: 'client_estimate',
      ago: HOUR,
      input_tokens: 7,
      output_tokens: 3,
      cost_nanousd: '42',
    },
    // unknown, but 10 days old: outside the default 7 days
    {
      provider: 'acme',
      request_model: 'ancient-1',
      response_model: 'ancient-1',
      cost_status: 'unpriced',
      ago: 10 * DAY,
    },
  ];
  await db.client().insert({
    table: 'usage_events',
    values: rows.map((r) => toRow(r, now)),
    format: 'JSONEachRow',
  });
});

/** stdout split into lines, each line's columns split on runs of 2+ spaces (the table). */
const cells = (stdout: string): string[][] =>
  stdout
    .trimEnd()
    .split('\n')
    .map((l) => l.split(/\s{2,}/));

interface CheckJson {
  database: string;
  days: number;
  catalog: string;
  models_seen: number;
  unpriced_now: number;
  models: {
    provider: string;
    request_model: string;
    response_model: string;
    requests: number;
    client_estimate_requests: number;
    first_seen: string;
    last_seen: string;
    input_tokens: number;
    output_tokens: number;
    total_tokens: number;
    priced_now: boolean;
    priced_as: string | null;
  }[];
}

test('an unknown model is listed with its requests and exits 1; priced and old models are not listed', async () => {
  const r = await check();
  expect(r.stderr).toBe('');
  expect(r.code).toBe(1);
  const lines = cells(r.stdout);
  expect(lines[0]?.join('  ')).toBe(
    `1 of 3 model(s) seen in the last 7 days are not priced by catalog ${version}: add them to the catalog or an overrides file`,
  );
  expect(lines[1]).toEqual([
    'provider',
    'request model',
    'response model',
    'requests',
    'client estimates',
    'first seen (UTC)',
    'last seen (UTC)',
    'tokens',
    'catalog now',
  ]);
  const mystery = lines[2] ?? [];
  expect([...mystery.slice(0, 5), mystery[7], mystery[8]]).toEqual([
    'acme',
    'mystery-1',
    'mystery-1',
    '3',
    '1',
    '1760',
    'unpriced',
  ]);
  expect(mystery[5]).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
  // stored unpriced, priced by the current catalog: listed after the unpriced ones, not counted
  expect(lines[3]).toEqual([
    'openai',
    'gpt-4o',
    '-',
    '1',
    '0',
    expect.any(String),
    expect.any(String),
    '110',
    'priced now as gpt-4o (events before were stored unpriced)',
  ]);
  expect(lines).toHaveLength(4);
  expect(r.stdout).not.toContain('gpt-4o-2024-08-06');
  expect(r.stdout).not.toContain('ancient-1');
});

test('--days widens the window', async () => {
  const r = await check('--days', '30');
  expect(r.code).toBe(1);
  expect(r.stdout).toMatch(/^2 of 4 model\(s\) seen in the last 30 days are not priced by catalog /);
  expect(r.stdout).toMatch(/^acme\s+ancient-1\s+ancient-1\s+1\s+0\s/m);
});

test('--json prints the same check as JSON, with the same exit code', async () => {
  const r = await check('--json');
  expect(r.stderr).toBe('');
  expect(r.code).toBe(1);
  const out = JSON.parse(r.stdout) as CheckJson;
  expect(out).toMatchObject({
    database: db.name,
    days: 7,
    catalog: version,
    models_seen: 3,
    unpriced_now: 1,
  });
  expect(out.models.map((m) => [m.provider, m.request_model, m.response_model, m.priced_now])).toEqual([
    ['acme', 'mystery-1', 'mystery-1', false],
    ['openai', 'gpt-4o', '', true],
  ]);
  const mystery = out.models[0];
  expect(mystery).toMatchObject({
    requests: 3,
    client_estimate_requests: 1,
    input_tokens: 1507,
    output_tokens: 253,
    total_tokens: 1760,
    priced_as: null,
  });
  expect(Date.parse(mystery?.last_seen ?? '') - Date.parse(mystery?.first_seen ?? '')).toBeGreaterThan(
    22 * HOUR,
  );
  expect(out.models[1]?.priced_as).toBe('gpt-4o');
});

test('once the catalog prices the model, it is shown as priced now and the check exits 0', async () => {
  const file = path.join(dir, 'overrides.json');
  fs.writeFileSync(
    file,
    JSON.stringify({
      version: 'acme-1',
      entries: [
        {
          provider: 'acme',
          model: 'mystery-1',
          effective_from: '2025-01-01',
          input_per_mtok: '1.00',
          cached_input_per_mtok: '0.10',
          cache_write_per_mtok: '1.00',
          output_per_mtok: '2.00',
          source: 'contract ACME-9',
          as_of: '2025-01-01',
        },
      ],
    }),
  );
  const r = await check('--overrides', file);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  const lines = cells(r.stdout);
  expect(lines[0]?.join('  ')).toBe(
    `all 3 model(s) seen in the last 7 days are priced (catalog ${version}+acme-1)`,
  );
  expect(lines[2]?.slice(0, 4)).toEqual(['acme', 'mystery-1', 'mystery-1', '3']);
  expect(lines[2]?.[8]).toBe('priced now as mystery-1 (events before were stored unpriced)');
});

test('a bad --days exits 2 naming the value', async () => {
  for (const bad of ['0', '-3', '1.5', 'week']) {
    const r = await check('--days', bad);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `tokenledger: --days must be a whole number of days from 1 to 36500, got "${bad}"\n`,
    );
    expect(r.stdout).toBe('');
  }
});

test('no usage_events table (or no database) exits 1 saying what to run; an empty table exits 0', async () => {
  const missingDb = uniqueName('test_no_db');
  for (const name of [missingDb, empty.name]) {
    const r = await runCli(['prices', 'check'], cliEnv(empty.config, name));
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `tokenledger: no usage_events table in database ${name}: run \`tokenledger migrate up\` / \`tokenledger ingest\` first\n`,
    );
    expect(r.stdout).toBe('');
  }
  await ensureSchema(empty.client(), testLogger());
  const r = await runCli(['prices', 'check'], cliEnv(empty.config, empty.name));
  expect(r.code).toBe(0);
  expect(r.stdout).toBe(
    `no usage events in the last 7 days in database ${empty.name}: nothing to check (catalog ${version})\n`,
  );
});
