/**
 * `tokenledger budgets set|list|delete|load` as a user runs them: the real CLI in a child process against the
 * real ClickHouse, a private database with the schema from the migrations, usage rows inserted into
 * usage_events (the minute rollup fills from them), exit codes and messages for bad flags and files, and
 * nothing written when the input is bad.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { clickhouseUrl } from '../../lib/config';
import type { Config } from '../../lib/config';
import { periodBounds } from '../../consumers/detect/periods';
import { ensureSchema } from '../../migrations/runner';
import { runCli, isolatedEnv } from '../helpers/cli';
import type { CliResult } from '../helpers/cli';
import { useTestDatabase } from '../helpers/clickhouse';
import { testLogger } from '../helpers/env';

const db = useTestDatabase();
const unmigrated = useTestDatabase();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenledger-budgets-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function cliEnv(config: Config, database: string): NodeJS.ProcessEnv {
  return isolatedEnv({
    CLICKHOUSE_URL: clickhouseUrl(config),
    CLICKHOUSE_USER: config.clickhouse.user,
    CLICKHOUSE_PASSWORD: config.clickhouse.password,
    CLICKHOUSE_DATABASE: database,
  });
}

const budgets = (...args: string[]): Promise<CliResult> =>
  runCli(['budgets', ...args], cliEnv(db.config, db.name));

interface ListedJson {
  budget_id: string;
  scope: string;
  scope_id: string;
  period: string;
  time_zone: string;
  unit: string;
  amount: string;
  amount_usd?: string;
  thresholds: number[];
  description: string;
  period_label: string;
  period_start: string;
  period_end: string;
  spent: string;
  spent_usd?: string;
  spent_percent: number;
}

async function list(): Promise<Map<string, ListedJson>> {
  const r = await budgets('list', '--json');
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return new Map((JSON.parse(r.stdout) as ListedJson[]).map((b) => [b.budget_id, b]));
}

/** Every row ever written to the budgets table (versions and deletions included). */
async function rowCount(): Promise<number> {
  const rs = await db.client().query({ query: 'SELECT count() AS n FROM budgets', format: 'JSONEachRow' });
  const [row] = await rs.json<{ n: string }>();
  return Number(row?.n);
}

function writeFile(name: string, text: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
}

const USD = 1_000_000_000n;
const NOW = Date.now();
/** This month in Berlin: usage at its first instant counts, usage one ms before it does not. */
const BERLIN_MONTH = periodBounds(NOW, 'month', 'Europe/Berlin');

beforeAll(async () => {
  await ensureSchema(db.client(), testLogger());
  const row = (team: string, project: string, at: number, cost: bigint, input: number, output: number) => ({
    event_id: randomUUID(),
    occurred_at: new Date(at).toISOString().replace('T', ' ').replace('Z', ''),
    team_id: team,
    project_id: project,
    provider: 'openai',
    request_model: 'gpt-4o',
    response_model: 'gpt-4o',
    cost_status: 'priced',
    cost_nanousd: cost.toString(),
    input_tokens: input,
    output_tokens: output,
  });
  await db.client().insert({
    table: 'usage_events',
    format: 'JSONEachRow',
    values: [
      row('search', 'checkout', BERLIN_MONTH.start, 1_250n * USD, 1000, 200),
      row('search', 'checkout', BERLIN_MONTH.start + 60_000, 750n * USD + 1n, 3000, 800),
      row('search', 'checkout', BERLIN_MONTH.start - 1, 999n * USD, 50_000, 50_000), // last month in Berlin
      row('ads', 'checkout', BERLIN_MONTH.start + 120_000, 7n * USD, 10, 0), // another team
    ],
    clickhouse_settings: { async_insert: 0 },
  });
});

test('set, list with spend so far, replace, delete', async () => {
  const set = await budgets(
    'set',
    '--team',
    'search',
    '--period',
    'month',
    '--usd',
    '5000',
    '--tz',
    'Europe/Berlin',
  );
  expect(set.stderr).toBe('');
  expect(set.code).toBe(0);
  expect(set.stdout).toBe(
    'created budget team:search:month: team search, $5,000 per month (Europe/Berlin), alerts at 50%, 80%, 100%\n',
  );
  const tokens = await budgets(
    ...['set', '--project', 'checkout', '--period', 'month', '--tokens', '100000', '--thresholds', '80,50'],
    ...['--id', 'checkout-tokens', '--description', 'all teams', '--tz', 'Europe/Berlin'],
  );
  expect(tokens.code).toBe(0);

  const listed = await list();
  expect(listed.get('team:search:month')).toEqual({
    budget_id: 'team:search:month',
    scope: 'team',
    scope_id: 'search',
    period: 'month',
    time_zone: 'Europe/Berlin',
    unit: 'usd',
    amount: (5000n * USD).toString(),
    amount_usd: '5000',
    thresholds: [50, 80, 100],
    description: '',
    period_label: expect.stringMatching(/^[A-Z][a-z]+ \d{4}$/) as unknown,
    period_start: new Date(BERLIN_MONTH.start).toISOString(),
    period_end: new Date(BERLIN_MONTH.end).toISOString(),
    spent: (2000n * USD + 1n).toString(),
    spent_usd: '2000.000000001',
    spent_percent: 40,
  });
  expect(listed.get('checkout-tokens')).toMatchObject({
    scope: 'project',
    unit: 'tokens',
    amount: '100000',
    thresholds: [50, 80],
    description: 'all teams',
    spent: String(1000 + 200 + 3000 + 800 + 10), // both teams: a project budget spans teams
    spent_percent: 5.01,
  });

  const table = await budgets('list');
  expect(table.code).toBe(0);
  const lines = table.stdout.trimEnd().split('\n');
  expect(lines[0]?.split(/\s{2,}/)).toEqual([
    'id',
    'scope',
    'period',
    'time zone',
    'amount',
    'spent',
    'spent %',
    'thresholds',
    'description',
  ]);
  expect(lines.find((l) => l.startsWith('team:search:month'))?.split(/\s{2,}/)).toEqual([
    'team:search:month',
    'team search',
    listed.get('team:search:month')?.period_label,
    'Europe/Berlin',
    '$5,000',
    '$2,000',
    '40.00%',
    '50,80,100',
  ]);

  const replaced = await budgets(
    'set',
    '--team',
    'search',
    '--period',
    'month',
    '--usd',
    '0.1',
    '--tz',
    'Europe/Berlin',
  );
  expect(replaced.stdout).toMatch(/^replaced budget team:search:month: team search, \$0\.10 per month/);
  expect((await list()).get('team:search:month')).toMatchObject({ amount: '100000000', amount_usd: '0.1' });

  const deleted = await budgets('delete', 'team:search:month');
  expect([deleted.code, deleted.stdout]).toEqual([0, 'deleted budget team:search:month\n']);
  expect((await list()).has('team:search:month')).toBe(false);
  const again = await budgets('delete', 'team:search:month');
  expect(again.code).toBe(2);
  expect(again.stderr).toBe(
    'tokenledger: no budget with id "team:search:month": `tokenledger budgets list` shows the ids\n',
  );
  // Set again after a delete: in force again.
  const back = await budgets('set', '--team', 'search', '--period', 'month', '--usd', '10');
  expect(back.stdout).toMatch(/^created budget team:search:month/);
  expect((await list()).get('team:search:month')?.time_zone).toBe('UTC');
});

test('bad flags exit 2 naming the flag and the value, and write nothing', async () => {
  const before = await rowCount();
  const r = await budgets('set', '--team', 'x', '--period', 'quarter', '--usd', '-5', '--tz', 'Mars/Base');
  expect(r.code).toBe(2);
  expect(r.stdout).toBe('');
  expect(r.stderr).toBe(
    [
      'tokenledger: invalid budget (3 problems):',
      '  --period: "quarter" is not one of day, week, month',
      '  --usd: "-5" is not a positive amount of USD (a decimal with at most 9 decimals, like "5000" or "12.50")',
      '  --tz: "Mars/Base" is not an IANA time zone name (like "UTC", "Europe/Berlin", "America/New_York")',
      '',
    ].join('\n'),
  );
  const both = await budgets(
    'set',
    '--team',
    'x',
    '--user',
    'y',
    '--period',
    'day',
    '--usd',
    '1',
    '--tokens',
    '5',
  );
  expect(both.code).toBe(2);
  expect(both.stderr).toContain(
    'options: needs exactly one of --team, --project, --user, got --team and --user',
  );
  expect(both.stderr).toContain('options: needs exactly one of --usd, --tokens, got --usd and --tokens');
  const percent = await budgets(
    'set',
    '--team',
    'x',
    '--period',
    'day',
    '--usd',
    '1',
    '--thresholds',
    '50,0',
  );
  expect(percent.code).toBe(2);
  expect(percent.stderr).toContain('--thresholds: 0 is not a whole percent from 1 to 1000');
  expect(await rowCount()).toBe(before);
});

test('load: a good file creates and replaces; a bad one is refused whole, naming each entry and value', async () => {
  const good = writeFile(
    'good.yaml',
    `time_zone: America/New_York
budgets:
  - team: ads
    period: week
    amount_usd: 1200.5
  - id: alice-daily
    user: alice@example.com
    period: day
    amount_usd: "25"
    time_zone: Asia/Kolkata
    thresholds: [100]
    description: contractor cap
`,
  );
  const loaded = await budgets('load', good);
  expect(loaded.stderr).toBe('');
  expect([loaded.code, loaded.stdout]).toEqual([
    0,
    `loaded 2 budget(s) from ${good}: 2 created, 0 replaced\n`,
  ]);
  const listed = await list();
  expect(listed.get('team:ads:week')).toMatchObject({
    time_zone: 'America/New_York',
    amount_usd: '1200.5',
    thresholds: [50, 80, 100],
  });
  expect(listed.get('alice-daily')).toMatchObject({
    scope: 'user',
    scope_id: 'alice@example.com',
    period: 'day',
    time_zone: 'Asia/Kolkata',
    amount_usd: '25',
    thresholds: [100],
    description: 'contractor cap',
  });
  expect((await budgets('load', good)).stdout).toBe(
    `loaded 2 budget(s) from ${good}: 0 created, 2 replaced\n`,
  );

  const before = await rowCount();
  const bad = writeFile(
    'bad.yaml',
    `budgets:
  - team: growth
    period: month
    amount_usd: "300"
  - team: ads
    period: quarter
    amount_usd: "-1"
  - project: checkout
    period: week
    tokens: 1000
    time_zone: Mars/Base
`,
  );
  const refused = await budgets('load', bad);
  expect(refused.code).toBe(2);
  expect(refused.stderr).toBe(
    [
      `tokenledger: invalid budgets file ${bad} (3 problems):`,
      '  budgets[1].period: "quarter" is not one of day, week, month',
      '  budgets[1].amount_usd: "-1" is not a positive amount of USD (a decimal with at most 9 decimals, like "5000" or "12.50")',
      '  budgets[2].time_zone: "Mars/Base" is not an IANA time zone name (like "UTC", "Europe/Berlin", "America/New_York")',
      '',
    ].join('\n'),
  );
  expect(await rowCount()).toBe(before);
  expect((await list()).has('team:growth:month')).toBe(false);

  const notYaml = await budgets('load', writeFile('broken.yaml', 'budgets: [\n'));
  expect(notYaml.code).toBe(2);
  expect(notYaml.stderr).toMatch(/broken\.yaml \(1 problem\):\n {2}not valid YAML: /);
  expect(await rowCount()).toBe(before);
});

test('a database without the migrations: a message that says what to run', async () => {
  const r = await runCli(['budgets', 'list'], cliEnv(unmigrated.config, unmigrated.name));
  expect(r.code).toBe(1);
  expect(r.stderr).toBe(
    `tokenledger: no budgets table in database ${unmigrated.name}: run \`tokenledger migrate up\` first\n`,
  );
});
