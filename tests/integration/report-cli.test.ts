/**
 * `tokenledger report` and `tokenledger sql` as a user runs them: the real CLI in a child process against the
 * real ClickHouse, a private database with the schema from the migrations, usage rows inserted into
 * usage_events (the rollups fill from them), an alert and a budget. Every format, exact money, bad flags
 * (exit 2 naming the value), and team values built to break SQL that stay plain parameters.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { clickhouseUrl } from '../../lib/config';
import type { Config } from '../../lib/config';
import { alertRow } from '../../consumers/alerts/sink';
import { upsertBudgets, usdDecimal } from '../../consumers/detect/budget-store';
import { periodBounds } from '../../consumers/detect/periods';
import { ensureSchema } from '../../migrations/runner';
import type { Alert } from '../../schemas/alert/types';
import { runCli, isolatedEnv } from '../helpers/cli';
import type { CliResult } from '../helpers/cli';
import { useTestDatabase } from '../helpers/clickhouse';
import { testLogger } from '../helpers/env';

const db = useTestDatabase();
const unmigrated = useTestDatabase();
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenledger-report-'));
afterAll(() => fs.rmSync(home, { recursive: true, force: true }));

const MIN = 60_000;
const H = 60 * MIN;
const USD = 1_000_000_000n;
const NOW = Date.now();
/** The report window: the last 6 hours, from a whole minute. */
const SINCE = Math.floor((NOW - 6 * H) / MIN) * MIN;
const SINCE_ARG = new Date(SINCE).toISOString();
const EVIL = "x' OR '1'='1";
const NOT_A_TEAM = "search' OR 1=1 --";

function cliEnv(config: Config, database: string): NodeJS.ProcessEnv {
  return isolatedEnv({
    CLICKHOUSE_URL: clickhouseUrl(config),
    CLICKHOUSE_USER: config.clickhouse.user,
    CLICKHOUSE_PASSWORD: config.clickhouse.password,
    CLICKHOUSE_DATABASE: database,
    TOKENLEDGER_HOME: home,
  });
}
const cli = (...args: string[]): Promise<CliResult> => runCli(args, cliEnv(db.config, db.name));

interface Ev {
  team: string;
  user: string;
  provider: string;
  model: string;
  at: number;
  cost: bigint;
  input: number;
  output: number;
  status?: string;
  unpriced?: boolean;
}

const EVENTS: Ev[] = [
  {
    team: 'search',
    user: 'alice',
    provider: 'openai',
    model: 'gpt-4.1',
    at: NOW - 5 * H,
    cost: 10n ** 17n + 1n,
    input: 1000,
    output: 100,
  },
  {
    team: 'search',
    user: 'bob',
    provider: 'anthropic',
    model: 'claude-sonnet-4-5',
    at: NOW - 61 * MIN,
    cost: 250n * USD + 7n,
    input: 5000,
    output: 900,
    status: 'error',
  },
  {
    team: 'search',
    user: 'alice',
    provider: 'openai',
    model: 'gpt-4.1',
    at: NOW - 60 * MIN,
    cost: 3n,
    input: 10,
    output: 1,
  },
  {
    team: 'ads',
    user: 'carol',
    provider: 'openai',
    model: 'gpt-4.1-mini',
    at: NOW - 2 * H,
    cost: 5n * USD,
    input: 300,
    output: 30,
  },
  {
    team: 'ads',
    user: '',
    provider: 'acme',
    model: 'internal-x',
    at: NOW - 90 * MIN,
    cost: 0n,
    input: 400,
    output: 40,
    unpriced: true,
  },
  {
    team: EVIL,
    user: 'mallory',
    provider: 'openai',
    model: 'gpt-4.1',
    at: NOW - 3 * H,
    cost: 42n * USD,
    input: 700,
    output: 70,
  },
  // outside the window: two days back
  {
    team: 'search',
    user: 'alice',
    provider: 'openai',
    model: 'gpt-4.1',
    at: NOW - 48 * H,
    cost: 999n * USD,
    input: 1,
    output: 1,
  },
];
const IN_WINDOW = EVENTS.filter((e) => e.at >= SINCE);
const total = (es: readonly Ev[]): bigint => es.reduce((a, e) => a + e.cost, 0n);

function spikeAlert(): Alert {
  return {
    alert_id: 'spike-search-1',
    kind: 'cost_spike',
    severity: 'critical',
    fired_at: NOW - 59 * MIN,
    org_id: 'acme',
    team_id: 'search',
    scope: 'team',
    model: null,
    user_id: null,
    project_id: null,
    window_start: NOW - 75 * MIN,
    window_end: NOW - 60 * MIN,
    observed_cost_nanousd: 250n * USD,
    expected_cost_nanousd: 2n * USD,
    observed_tokens: 5900n,
    expected_tokens: 100n,
    score: 125,
    rule: 'window 15m: observed >= 3x expected',
    budget: null,
    top_contributors: [],
    message: 'search spent $250 in the last 15 min, 125x its usual $2.00; 100% from user bob',
    related_alert_id: null,
    detector: 'tokenledger-detect/test',
  };
}

beforeAll(async () => {
  await ensureSchema(db.client(), testLogger());
  const dt = (ms: number): string => new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
  await db.client().insert({
    table: 'usage_events',
    format: 'JSONEachRow',
    values: EVENTS.map((e) => ({
      event_id: randomUUID(),
      occurred_at: dt(e.at),
      team_id: e.team,
      user_id: e.user,
      provider: e.provider,
      request_model: e.model,
      response_model: e.model,
      status: e.status ?? 'ok',
      cost_status: e.unpriced === true ? 'unpriced' : 'priced',
      cost_nanousd: e.cost.toString(),
      input_tokens: e.input,
      output_tokens: e.output,
    })),
    clickhouse_settings: { async_insert: 0 },
  });
  await db.client().insert({
    table: 'alerts',
    format: 'JSONEachRow',
    values: [alertRow(spikeAlert())],
    clickhouse_settings: { async_insert: 0 },
  });
  await upsertBudgets(db.client(), [
    {
      budget_id: 'team:search:month',
      scope: 'team',
      scope_id: 'search',
      period: 'month',
      time_zone: 'Europe/Berlin',
      unit: 'usd',
      amount: 10n ** 18n,
      thresholds: [50, 80, 100],
      description: '',
    },
  ]);
});

interface ReportJson {
  window: { since: string; source: string };
  team: string | null;
  totals: Record<string, string | number>;
  rows: Record<string, string>[];
  spend_over_time: { buckets: string[]; series: { team: string; cost_nanousd: string[] }[] };
  models: Record<string, string>[];
  top_users: Record<string, unknown>[];
  budgets: { budget_id: string; spent: string; period_start: string; points: unknown[] }[];
  alerts: { alert_id: string; message: string }[];
}

async function reportJson(...args: string[]): Promise<ReportJson> {
  const r = await cli('report', '--since', SINCE_ARG, '--format', 'json', ...args);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as ReportJson;
}

describe('tokenledger report', () => {
  test('json: totals, the breakdown, the series, models, users, budgets and alerts, money exact', async () => {
    const j = await reportJson();
    expect(j.window).toMatchObject({ since: new Date(SINCE).toISOString(), source: 'usage_minute' });
    expect(j.totals).toMatchObject({
      cost_nanousd: total(IN_WINDOW).toString(),
      cost_usd: usdDecimal(total(IN_WINDOW)),
      requests: String(IN_WINDOW.length),
      errors: '1',
      unpriced_requests: '1',
      input_tokens: String(IN_WINDOW.reduce((a, e) => a + e.input, 0)),
      teams: 3,
      users: 4,
      models: 4,
    });
    const teams = ['search', 'ads', EVIL].map((t) => IN_WINDOW.filter((e) => e.team === t));
    expect(j.rows.map((r) => [r.team, r.cost_nanousd, r.requests])).toEqual([
      ['search', total(teams[0] ?? []).toString(), '3'],
      [EVIL, total(teams[2] ?? []).toString(), '1'],
      ['ads', total(teams[1] ?? []).toString(), '2'],
    ]);
    const charted = j.spend_over_time.series
      .flatMap((s) => s.cost_nanousd)
      .reduce((a, v) => a + BigInt(v), 0n);
    expect(charted).toBe(total(IN_WINDOW));
    expect(j.spend_over_time.buckets.length).toBeGreaterThanOrEqual(24); // 15-minute steps over 6 hours
    expect(j.models[0]).toMatchObject({
      provider: 'openai',
      model: 'gpt-4.1',
      cost_nanousd: (10n ** 17n + 42n * USD + 4n).toString(),
    });
    expect(j.top_users.map((u) => u.user_id)).toEqual(['alice', 'bob', 'mallory', 'carol']);
    expect(j.alerts.map((a) => a.alert_id)).toEqual(['spike-search-1']);
    const month = periodBounds(NOW, 'month', 'Europe/Berlin');
    const inMonth = EVENTS.filter((e) => e.team === 'search' && e.at >= month.start && e.at < month.end);
    expect(j.budgets).toHaveLength(1);
    expect(j.budgets[0]).toMatchObject({
      budget_id: 'team:search:month',
      period_start: new Date(month.start).toISOString(),
      spent: total(inMonth).toString(),
    });
  });

  test('csv by model: a header, one exact line per model, the total', async () => {
    const r = await cli('report', '--since', SINCE_ARG, '--by', 'model', '--format', 'csv');
    expect(r.code).toBe(0);
    expect(r.stdout.trimEnd().split('\n')).toEqual([
      'row,model,provider,cost_usd,cost_nanousd,requests,errors,unpriced_requests,input_tokens,output_tokens,cache_read_input_tokens',
      `item,gpt-4.1,openai,${usdDecimal(10n ** 17n + 42n * USD + 4n)},${10n ** 17n + 42n * USD + 4n},3,0,0,1710,171,0`,
      `item,claude-sonnet-4-5,anthropic,250.000000007,${250n * USD + 7n},1,1,0,5000,900,0`,
      `item,gpt-4.1-mini,openai,5,${5n * USD},1,0,0,300,30,0`,
      'item,internal-x,acme,0,0,1,0,1,400,40,0',
      `total,,,${usdDecimal(total(IN_WINDOW))},${total(IN_WINDOW)},6,1,1,7410,1141,0`,
    ]);
  });

  test('table by user: aligned, money formatted, "(none)" for events without a user', async () => {
    const r = await cli('report', '--since', SINCE_ARG, '--by', 'user');
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toMatch(/^Spend by user, .* UTC \(minute rollup\), all teams$/);
    expect(lines[2]).toMatch(
      /^user\s+cost\s+share\s+requests\s+errors\s+input tokens\s+output tokens\s+unpriced$/,
    );
    expect(r.stdout).toMatch(/\nalice\s+\$100,000,000\s+/);
    expect(r.stdout).toMatch(/\n\(none\)\s+\$0\.0000\s+/);
    expect(r.stdout).toMatch(/\ntotal\s+\$100,000,297\s+100\.0%\s+6\s+1\s+7,410\s+1,141\s+1\n/);
  });

  test('--team: a value built to break SQL selects exactly the team of that name, and no other', async () => {
    const evil = await reportJson('--team', EVIL);
    expect(evil.team).toBe(EVIL);
    expect(evil.totals.cost_nanousd).toBe((42n * USD).toString());
    expect(evil.rows.map((r) => r.team)).toEqual([EVIL]);
    expect(evil.budgets).toEqual([]); // the month budget is team search's
    const none = await reportJson('--team', NOT_A_TEAM);
    expect(none.totals).toMatchObject({ cost_nanousd: '0', requests: '0', teams: 0 });
    expect(none.rows).toEqual([]);
    expect(none.alerts).toEqual([]);
    const search = await reportJson('--team', 'search', '--by', 'user');
    expect(search.rows.map((r) => [r.user, r.cost_nanousd])).toEqual([
      ['alice', (10n ** 17n + 4n).toString()],
      ['bob', (250n * USD + 7n).toString()],
    ]);
    expect(search.alerts.map((a) => a.alert_id)).toEqual(['spike-search-1']);
  });

  test('html: a self-contained page in TOKENLEDGER_HOME/reports, every chart with data, the spike marked', async () => {
    const r = await cli('report', '--since', SINCE_ARG, '--format', 'html');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const file = r.stdout.trim();
    expect(path.dirname(file)).toBe(path.join(home, 'reports'));
    expect(path.basename(file)).toMatch(/^report-\d{4}-\d{2}-\d{2}T\d{6}Z\.html$/);
    const html = fs.readFileSync(file, 'utf8');
    expect(html).not.toMatch(/<script|<link|https?:|url\(/i);
    const points = new Map<string, number>(
      [...html.matchAll(/<figure class="chart[^"]*" id="([^"]+)" data-points="(\d+)"/g)].map(
        (m): [string, number] => [m[1] ?? '', Number(m[2])],
      ),
    );
    expect([...points.keys()]).toEqual(['spend-over-time', 'burn-down-1', 'model-mix', 'top-users']);
    for (const n of points.values()) expect(n).toBeGreaterThan(0);
    expect(points.get('model-mix')).toBe(4);
    expect(html).toContain('<g class="alert-marker" data-alert-id="spike-search-1"><title>');
    expect(html).toContain('125x its usual $2.00; 100% from user bob</title>');
    expect(html).toContain('x&#39; OR &#39;1&#39;=&#39;1'); // the team name, escaped

    const out = path.join(home, 'custom', 'r.html');
    const custom = await cli(
      'report',
      '--since',
      SINCE_ARG,
      '--format',
      'html',
      '--out',
      out,
      '--team',
      'ads',
    );
    expect(custom.code).toBe(0);
    expect(custom.stdout.trim()).toBe(out);
    expect(fs.readFileSync(out, 'utf8')).toContain('team ads');
  });

  test.each([
    [['--by', 'org'], '--by must be one of team, user, model, provider; got "org"'],
    [['--format', 'pdf'], '--format must be one of table, csv, json, html; got "pdf"'],
    [['--since', 'yesterday'], '--since must be a duration back from now'],
    [['--since', '1h', '--until', '2h'], '--since "1h"'],
    [['--team', ''], '--team must not be empty; got ""'],
  ])('bad flags %j exit 2 naming the value', async (args, message) => {
    const r = await cli('report', ...args);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(message);
  });

  test('an unmigrated database: exit 1 saying to run migrate up', async () => {
    const r = await runCli(['report'], cliEnv(unmigrated.config, unmigrated.name));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('run `tokenledger migrate up` first');
  });
});

describe('tokenledger sql', () => {
  const query = `SELECT team_id, sum(cost_nanousd) AS cost, count() AS n FROM usage_events
                 WHERE team_id = {team:String} AND occurred_at >= now() - INTERVAL 1 DAY GROUP BY team_id`;

  test('json with a parameter: a value built to break SQL stays a value; 64-bit money exact', async () => {
    const r = await cli('sql', query, '--param', `team=${EVIL}`, '--format', 'json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([{ team_id: EVIL, cost: (42n * USD).toString(), n: '1' }]);
    const big = await cli('sql', query, '--param', 'team=search', '--format', 'jsonl');
    expect(big.stdout).toBe(
      `${JSON.stringify({ team_id: 'search', cost: (10n ** 17n + 250n * USD + 11n).toString(), n: '3' })}\n`,
    );
    const none = await cli('sql', query, '--param', `team=${NOT_A_TEAM}`, '--format', 'json');
    expect(none.stdout).toBe('[]\n');
  });

  test('table and csv over a BI view', async () => {
    const q =
      'SELECT team_id, sum(requests) AS requests, toString(sum(cost_usd)) AS usd FROM spend_by_team_day WHERE day >= today() - 1 GROUP BY team_id ORDER BY team_id';
    const table = await cli('sql', q);
    expect(table.code).toBe(0);
    expect(table.stderr).toBe('(3 rows)\n');
    expect(table.stdout.split('\n').slice(0, 2)).toEqual([
      expect.stringMatching(/^team_id\s+requests\s+usd$/),
      expect.stringMatching(/^-+\s+-+\s+-+$/),
    ]);
    const csv = await cli('sql', q, '--format', 'csv');
    expect(csv.stdout).toBe(
      `team_id,requests,usd\nads,2,5\nsearch,3,${usdDecimal(10n ** 17n + 250n * USD + 11n)}\n${EVIL},1,42\n`,
    );
  });

  test('read-only: writes are refused before and by ClickHouse; readonly = 2 is in force', async () => {
    const insert = await cli('sql', "INSERT INTO budgets (budget_id) VALUES ('x')");
    expect(insert.code).toBe(2);
    expect(insert.stderr).toContain(`only read queries run here`);
    expect(insert.stderr).toContain(`"INSERT INTO budgets (budget_id) VALUES ('x')"`);
    const setting = await cli('sql', "SELECT getSetting('readonly') AS readonly", '--format', 'csv');
    expect(setting.stdout).toBe('readonly\n2\n');
    const sneaky = await cli('sql', 'SELECT 1; DROP TABLE budgets');
    expect(sneaky.code).toBe(1);
    expect(sneaky.stderr).toContain('query failed');
    const [exists] = await (
      await db.client().query({
        query:
          "SELECT count() AS n FROM system.tables WHERE database = currentDatabase() AND name = 'budgets'",
        format: 'JSONEachRow',
      })
    ).json<{ n: string }>();
    expect(exists?.n).toBe('1');
    const escalate = await cli('sql', 'SELECT 1 SETTINGS readonly = 0');
    expect(escalate.code).toBe(1);
    expect(escalate.stderr).toMatch(/readonly/i);
  });

  test.each([
    [['SELECT 1', '--format', 'xml'], '--format must be one of table, csv, json, jsonl; got "xml"'],
    [['SELECT 1', '--param', '9x=1'], '"9x=1"'],
    [['SELECT 1', '--param', 'novalue'], '"novalue"'],
  ])('bad flags %j exit 2 naming the value', async (args, message) => {
    const r = await cli('sql', ...args);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
  });

  test('a ClickHouse error exits 1 with its message and code', async () => {
    const r = await cli('sql', 'SELECT * FROM no_such_table');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/query failed: .*no_such_table.*\(ClickHouse error 60/);
  });
});
