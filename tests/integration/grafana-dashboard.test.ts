/**
 * The Grafana dashboard of infra/docker-compose.yml (infra/grafana/dashboards/tokenledger.json) against the real
 * ClickHouse engine. Grafana needs a Docker engine, so what is tested is what Grafana would send: every SQL query
 * of the dashboard (panels, annotations, the team variable) is expanded the way Grafana's frontend and the
 * official ClickHouse plugin (grafana-clickhouse-datasource 4.x) expand it, then run on a private database
 * migrated with the project's migrations and holding a handful of usage events (the rollups fed by the
 * materialized views), alerts, budgets and a dead letter. Every query must run with the team variable at All
 * and at one team, every panel must return rows, and the spend, alert and budget panels must return the right
 * numbers for the seeded data.
 *
 * The expansion follows the plugin's code: frontend `applyConditionalAll` then template variables with the
 * plugin's `format` (src/data/CHDatasource.ts), backend macros (pkg/macros/macros.go) found the way the plugin
 * SDK's sqlutil finds them. Older SDKs took the first parenthesised group after an argument-less macro as its
 * arguments; newer ones only one that follows it at once. Every query must expand the same either way.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { PROJECT_ROOT } from '../../lib/config';
import { ensureSchema } from '../../migrations/runner';
import { useTestDatabase } from '../helpers/clickhouse';
import { testLogger } from '../helpers/env';

// ---------------------------------------------------------------------------------------------------------
// The dashboard and its queries.

interface Target {
  rawSql?: string;
  refId?: string;
}
interface Panel {
  id?: number;
  type: string;
  title?: string;
  targets?: Target[];
  panels?: Panel[];
}
interface TemplateVariable {
  name: string;
  type: string;
  query?: string | { rawSql?: string };
  includeAll?: boolean;
  multi?: boolean;
}
interface Dashboard {
  time: { from: string; to: string };
  panels: Panel[];
  annotations?: { list?: { name: string; target?: Target }[] };
  templating?: { list?: TemplateVariable[] };
}

const DASHBOARD_FILE = path.join(PROJECT_ROOT, 'infra', 'grafana', 'dashboards', 'tokenledger.json');
const dashboard = JSON.parse(fs.readFileSync(DASHBOARD_FILE, 'utf8')) as Dashboard;

interface NamedQuery {
  readonly label: string;
  readonly sql: string;
}

function panelQueries(panels: readonly Panel[]): NamedQuery[] {
  return panels.flatMap((p) => [
    ...(p.targets ?? []).flatMap((t) =>
      t.rawSql === undefined ? [] : [{ label: `panel "${p.title ?? String(p.id)}"`, sql: t.rawSql }],
    ),
    ...panelQueries(p.panels ?? []),
  ]);
}

const queries: NamedQuery[] = [
  ...panelQueries(dashboard.panels),
  ...(dashboard.annotations?.list ?? []).flatMap((a) =>
    a.target?.rawSql === undefined ? [] : [{ label: `annotation "${a.name}"`, sql: a.target.rawSql }],
  ),
];
const variableQueries: NamedQuery[] = (dashboard.templating?.list ?? [])
  .filter((v) => v.type === 'query')
  .map((v) => ({
    label: `variable "${v.name}"`,
    sql: typeof v.query === 'string' ? v.query : (v.query?.rawSql ?? ''),
  }));

// ---------------------------------------------------------------------------------------------------------
// Grafana's frontend: $__conditionalAll, then template variables.

interface VariableValue {
  /** "All" selected (the plugin sees '$__all'). */
  readonly all: boolean;
  /** The selected values, or every option when `all`. */
  readonly values: readonly string[];
}

interface ExpandContext {
  readonly fromMs: number;
  readonly toMs: number;
  readonly intervalMs: number;
  readonly variables: ReadonlyMap<string, VariableValue>;
}

/** The plugin's getMacroArgs: the arguments of the macro whose '(' is at `argsIndex`, split at depth 1. */
function macroArgs(query: string, argsIndex: number): string[] {
  const args: string[] = [];
  const re = /\(|\)|,/g;
  let depth = 0;
  let lastArgEnd = 1;
  const s = query.substring(argsIndex);
  for (let m = re.exec(s); m !== null; m = re.exec(s)) {
    if (m[0] === '(') depth++;
    else if (m[0] === ')') depth--;
    if (m[0] === ',' && depth === 1) {
      args.push(s.substring(lastArgEnd, re.lastIndex - 1));
      lastArgEnd = re.lastIndex;
    }
    if (depth === 0) {
      args.push(s.substring(lastArgEnd, re.lastIndex - 1));
      return args;
    }
  }
  return [];
}

/** The plugin's applyConditionalAll: `$__conditionalAll(cond, $var)` is `1=1` when var is All or empty. */
function applyConditionalAll(sql: string, variables: ReadonlyMap<string, VariableValue>): string {
  const macro = '$__conditionalAll(';
  let out = sql;
  for (let at = out.lastIndexOf(macro); at !== -1; at = out.lastIndexOf(macro)) {
    const params = macroArgs(out, at + macro.length - 1);
    if (params.length !== 2)
      throw new Error(`$__conditionalAll needs 2 arguments: ${out.slice(at, at + 80)}`);
    const [condition, variable] = params as [string, string];
    const name = /(?<=\$\{)\w+(?=\})|(?<=\$)\w+/.exec(variable.trim())?.[0];
    const value = name === undefined ? undefined : variables.get(name);
    if (value === undefined) throw new Error(`$__conditionalAll names no dashboard variable: ${variable}`);
    const phrase = value.all || value.values.length === 0 ? '1=1' : condition;
    out = out.replace(`${macro}${condition},${variable})`, phrase);
  }
  return out;
}

/** Grafana's templateSrv.replace with the plugin's default format (arrays: 'a','b'; one value: as is). */
function replaceVariables(sql: string, variables: ReadonlyMap<string, VariableValue>): string {
  const re = /\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?::([^}]+))?\}/g;
  return sql.replace(
    re,
    (
      match,
      plain?: string,
      bracket?: string,
      bracketFormat?: string,
      braced?: string,
      bracedFormat?: string,
    ) => {
      const name = plain ?? bracket ?? braced ?? '';
      const value = variables.get(name);
      if (value === undefined) return match; // a macro ($__timeFilter ...) or not a variable: the backend's turn
      const format = bracketFormat ?? bracedFormat;
      const values = value.values;
      switch (format) {
        case undefined:
          return `'${values.join("','")}'`;
        case 'singlequote':
          return values.map((v) => `'${v.replace(/'/g, "\\'")}'`).join(',');
        case 'doublequote':
          return values.map((v) => `"${v.replace(/"/g, '\\"')}"`).join(',');
        case 'csv':
          return values.join(',');
        default:
          throw new Error(`variable format ${format} is not modelled by this test: ${match}`);
      }
    },
  );
}

// ---------------------------------------------------------------------------------------------------------
// The plugin's backend macros (pkg/macros/macros.go) and how the SDK finds them (data/sqlutil/macros.go).

type Macro = (ctx: ExpandContext, args: string[]) => string;

const seconds = (ms: number): number => Math.floor(ms / 1000);
const ymd = (ms: number): string => new Date(ms).toISOString().slice(0, 10);
const intervalSeconds = (ctx: ExpandContext): number => Math.max(Math.trunc(ctx.intervalMs / 1000), 1);

function arity(name: string, n: number, args: string[]): void {
  if (args.length !== n) throw new Error(`$__${name}: expected ${n} argument(s), received ${args.length}`);
}

const MACROS: Readonly<Record<string, Macro>> = {
  fromTime: (ctx) => `toDateTime(${seconds(ctx.fromMs)})`,
  toTime: (ctx) => `toDateTime(${seconds(ctx.toMs)})`,
  fromTime_ms: (ctx) => `fromUnixTimestamp64Milli(${ctx.fromMs})`,
  toTime_ms: (ctx) => `fromUnixTimestamp64Milli(${ctx.toMs})`,
  timeFilter: (ctx, a) => {
    arity('timeFilter', 1, a);
    const c = a[0] ?? '';
    return `${c} >= toDateTime(${seconds(ctx.fromMs)}) AND ${c} <= toDateTime(${seconds(ctx.toMs)})`;
  },
  timeFilter_ms: (ctx, a) => {
    arity('timeFilter_ms', 1, a);
    const c = a[0] ?? '';
    return `${c} >= fromUnixTimestamp64Milli(${ctx.fromMs}) AND ${c} <= fromUnixTimestamp64Milli(${ctx.toMs})`;
  },
  dateFilter: (ctx, a) => {
    arity('dateFilter', 1, a);
    const c = a[0] ?? '';
    return `${c} >= toDate('${ymd(ctx.fromMs)}') AND ${c} <= toDate('${ymd(ctx.toMs)}')`;
  },
  dateTimeFilter: (ctx, a) => dateTimeFilter('dateTimeFilter', ctx, a),
  dt: (ctx, a) => dateTimeFilter('dt', ctx, a),
  timeInterval: (ctx, a) => {
    arity('timeInterval', 1, a);
    return `toStartOfInterval(toDateTime(${a[0] ?? ''}), INTERVAL ${intervalSeconds(ctx)} second)`;
  },
  timeInterval_ms: (ctx, a) => {
    arity('timeInterval_ms', 1, a);
    const ms = Math.max(Math.trunc(ctx.intervalMs), 1);
    return `toStartOfInterval(toDateTime64(${a[0] ?? ''}, 3), INTERVAL ${ms} millisecond)`;
  },
  interval_s: (ctx) => String(intervalSeconds(ctx)),
};

function dateTimeFilter(name: string, ctx: ExpandContext, a: string[]): string {
  arity(name, 2, a);
  const [d, t] = a as [string, string];
  const dates = `(${d} >= toDate('${ymd(ctx.fromMs)}') AND ${d} <= toDate('${ymd(ctx.toMs)}'))`;
  const times = `(${t} >= toDateTime(${seconds(ctx.fromMs)}) AND ${t} <= toDateTime(${seconds(ctx.toMs)}))`;
  return `${dates} AND ${times}`;
}

/** The SDK's own defaults (timeFrom, timeTo, timeGroup, table, column) would expand to non-ClickHouse SQL. */
const SDK_DEFAULTS = ['timeFrom', 'timeTo', 'timeGroup', 'table', 'column'];

/**
 * The occurrences of `$__name` with their argument text. `strict`: arguments only from a '(' right after the
 * name (current SDK); otherwise the older scan that takes the first balanced '(...)' found before any ')'.
 */
function findMacro(sql: string, name: string, strict: boolean): { text: string; args: string | undefined }[] {
  const found: { text: string; args: string | undefined }[] = [];
  const re = new RegExp(`\\$__${name}\\b`, 'g');
  for (let m = re.exec(sql); m !== null; m = re.exec(sql)) {
    const start = m.index;
    const nameEnd = start + m[0].length;
    let depth = 0;
    let argStart = -1;
    let end = -1;
    for (let i = strict ? nameEnd : start; i < sql.length; i++) {
      const ch = sql[i];
      if (ch === '(') {
        if (argStart === -1) {
          if (strict && i !== nameEnd) break;
          argStart = i + 1;
        }
        depth++;
      } else if (ch === ')') {
        if (depth === 0) break;
        depth--;
        if (depth === 0) {
          end = i + 1;
          break;
        }
      } else if (strict && argStart === -1) {
        break;
      }
    }
    if (end === -1 || argStart === -1) found.push({ text: m[0], args: undefined });
    else found.push({ text: sql.slice(start, end), args: sql.slice(argStart, end - 1) });
  }
  return found;
}

function interpolateBackend(sql: string, ctx: ExpandContext, strict: boolean): string {
  let out = sql;
  for (const name of SDK_DEFAULTS) {
    if (new RegExp(`\\$__${name}\\b`).test(out)) {
      throw new Error(
        `$__${name} is the SDK's generic macro, not the ClickHouse plugin's: use its own macros`,
      );
    }
  }
  for (const [name, macro] of Object.entries(MACROS)) {
    for (const { text, args } of findMacro(out, name, strict)) {
      const list = args === undefined ? [] : args.split(',').map((s) => s.trim());
      out = out.split(text).join(macro(ctx, list));
    }
  }
  return out;
}

/** What the ClickHouse server receives for `sql` (throws when either SDK scan would expand it differently). */
function expand(sql: string, ctx: ExpandContext): string {
  const frontend = replaceVariables(applyConditionalAll(sql, ctx.variables), ctx.variables);
  const strict = interpolateBackend(frontend, ctx, true);
  const lax = interpolateBackend(frontend, ctx, false);
  if (strict !== lax) {
    throw new Error(`expands differently with older plugin SDKs:\n--- current\n${strict}\n--- older\n${lax}`);
  }
  const leftover = /\$\w+|\$\{[^}]*\}|\[\[[^\]]*\]\]/.exec(strict);
  if (leftover !== null) throw new Error(`${leftover[0]} is left unexpanded in:\n${strict}`);
  return strict;
}

/** Grafana's relative times as the dashboard uses them: now, now-<n><s|m|h|d|w>. */
function relativeTime(text: string, nowMs: number): number {
  const m = /^now(?:-(\d+)([smhdw]))?$/.exec(text);
  if (m === null) throw new Error(`time ${text} is not modelled by this test`);
  if (m[1] === undefined || m[2] === undefined) return nowMs;
  const unit = { s: 1e3, m: 60e3, h: 3600e3, d: 86_400e3, w: 604_800e3 }[m[2] as 's' | 'm' | 'h' | 'd' | 'w'];
  return nowMs - Number(m[1]) * unit;
}

// ---------------------------------------------------------------------------------------------------------
// The plugin's expansion, checked against its own tests and code before anything runs.

describe('macro expansion as the plugin does it', () => {
  // pkg/macros/macros_test.go's range: 2014-11-12T11:45:26.371Z .. 2015-11-12T11:45:26.371Z, interval 20 s.
  const ctx: ExpandContext = {
    fromMs: Date.parse('2014-11-12T11:45:26.371Z'),
    toMs: Date.parse('2015-11-12T11:45:26.371Z'),
    intervalMs: 20_000,
    variables: new Map([
      ['team', { all: false, values: ['a', "o'b"] }],
      ['everyone', { all: true, values: ['a', 'b'] }],
    ]),
  };

  test('time macros', () => {
    expect(expand('$__timeFilter(t)', ctx)).toBe(
      't >= toDateTime(1415792726) AND t <= toDateTime(1447328726)',
    );
    expect(expand('$__timeFilter_ms(t)', ctx)).toBe(
      't >= fromUnixTimestamp64Milli(1415792726371) AND t <= fromUnixTimestamp64Milli(1447328726371)',
    );
    expect(expand('$__dateFilter(d)', ctx)).toBe("d >= toDate('2014-11-12') AND d <= toDate('2015-11-12')");
    expect(expand('$__fromTime < $__toTime', ctx)).toBe('toDateTime(1415792726) < toDateTime(1447328726)');
    expect(expand('$__timeInterval(col)', ctx)).toBe(
      'toStartOfInterval(toDateTime(col), INTERVAL 20 second)',
    );
    expect(expand('INTERVAL $__interval_s second)', ctx)).toBe('INTERVAL 20 second)');
    expect(expand('$__timeInterval(c)', { ...ctx, intervalMs: 300 })).toBe(
      'toStartOfInterval(toDateTime(c), INTERVAL 1 second)',
    );
  });

  test('variables and $__conditionalAll', () => {
    expect(expand('x IN (${team:singlequote})', ctx)).toBe("x IN ('a','o\\'b')");
    expect(expand('x IN ($team)', ctx)).toBe("x IN ('a','o'b')");
    expect(expand('$__conditionalAll(x IN (${team:singlequote}), $team)', ctx)).toBe("x IN ('a','o\\'b')");
    expect(expand('$__conditionalAll(x IN (${everyone:singlequote}), ${everyone})', ctx)).toBe('1=1');
    expect(() => expand('$__conditionalAll(x = 1, $nobody)', ctx)).toThrow(/no dashboard variable/);
    expect(() => expand('SELECT $__timeGroup(t, hour)', ctx)).toThrow(/generic macro/);
    expect(() => expand('SELECT ${team:json}', ctx)).toThrow(/not modelled/);
    expect(() => expand('SELECT $__unknown', ctx)).toThrow(/left unexpanded/);
  });

  test('an argument-less macro followed by parentheses is caught (older SDKs swallow them)', () => {
    expect(() => expand("t >= $__fromTime AND x IN ('a')", ctx)).toThrow(/expands differently/);
  });
});

// ---------------------------------------------------------------------------------------------------------
// The data: a migrated private database with a handful of rows.

const db = useTestDatabase();
const MINUTE = 60_000;
const NANO = 1_000_000_000n;

interface Seed {
  team: string;
  user: string;
  provider: string;
  model: string;
  cost_nanousd: bigint;
  cost_status: 'priced' | 'unpriced';
  status: 'ok' | 'error';
  input: number;
  output: number;
}

// A team name with a quote: Grafana's singlequote format must escape it the way ClickHouse reads it.
const OBRIEN = "team-o'brien";
const SEEDS: Seed[] = [
  ...[0, 1, 2].map((): Seed => ({
    team: 'team-a',
    user: 'alice',
    provider: 'openai',
    model: 'gpt-4.1',
    cost_nanousd: 1_234_567_891n,
    cost_status: 'priced',
    status: 'ok',
    input: 1000,
    output: 100,
  })),
  ...(['ok', 'error'] as const).map((status): Seed => ({
    team: 'team-b',
    user: 'bob',
    provider: 'anthropic',
    model: 'claude-sonnet-4-5',
    cost_nanousd: 987_654_321n,
    cost_status: 'priced',
    status,
    input: 2000,
    output: 300,
  })),
  ...[0, 1].map((): Seed => ({
    team: OBRIEN,
    user: '',
    provider: 'acme',
    model: 'mystery-1',
    cost_nanousd: 0n,
    cost_status: 'unpriced',
    status: 'ok',
    input: 500,
    output: 50,
  })),
];
const TEAMS = [...new Set(SEEDS.map((s) => s.team))].sort();

const costOf = (team?: string): bigint =>
  SEEDS.filter((s) => team === undefined || s.team === team).reduce((sum, s) => sum + s.cost_nanousd, 0n);

const chTime = (ms: number): string => new Date(ms).toISOString().replace('T', ' ').replace('Z', '');

/** A Decimal as ClickHouse prints it ('3.703703673', '0', '-1.5') in nano-USD, exactly. */
function decimalToNano(text: string): bigint {
  const negative = text.startsWith('-');
  const [whole = '0', fraction = ''] = (negative ? text.slice(1) : text).split('.');
  const nano = BigInt(whole) * NANO + BigInt(fraction.padEnd(9, '0').slice(0, 9));
  return negative ? -nano : nano;
}

let nowMs = 0;
let options: string[] = [];

beforeAll(async () => {
  const ch = db.client();
  await ensureSchema(ch, testLogger());
  const seededAt = Date.now();
  await ch.insert({
    table: 'usage_events',
    format: 'JSONEachRow',
    values: SEEDS.map((s, i) => ({
      event_id: randomUUID(),
      occurred_at: chTime(seededAt - (i + 1) * 5 * MINUTE),
      org_id: 'acme',
      team_id: s.team,
      user_id: s.user,
      project_id: 'search',
      application: 'tests',
      environment: 'test',
      provider: s.provider,
      operation: 'chat',
      request_model: s.model,
      response_model: s.model,
      status: s.status,
      error_type: s.status === 'error' ? 'rate_limit' : '',
      duration_ms: 200 + 100 * i,
      input_tokens: s.input,
      output_tokens: s.output,
      cost_nanousd: s.cost_nanousd.toString(),
      cost_status: s.cost_status,
      price_version: s.cost_status === 'priced' ? 'test' : '',
    })),
  });
  await ch.insert({
    table: 'alerts',
    format: 'JSONEachRow',
    values: [
      { id: 'alert-spike-a', kind: 'cost_spike', severity: 'warning', team: 'team-a', ago: 20 },
      { id: 'alert-budget-b', kind: 'budget_threshold', severity: 'critical', team: 'team-b', ago: 40 },
    ].map((a) => ({
      alert_id: a.id,
      kind: a.kind,
      severity: a.severity,
      fired_at: chTime(seededAt - a.ago * MINUTE),
      org_id: 'acme',
      team_id: a.team,
      scope: 'team',
      window_start: chTime(seededAt - (a.ago + 5) * MINUTE),
      window_end: chTime(seededAt - a.ago * MINUTE),
      observed_cost_nanousd: '5000000000',
      expected_cost_nanousd: '1000000000',
      score: 4.5,
      rule: 'test',
      message: `${a.kind} for ${a.team}`,
      detector: 'tests',
    })),
  });
  await ch.insert({
    table: 'budgets',
    format: 'JSONEachRow',
    values: [
      {
        budget_id: 'team-a-monthly',
        scope_id: 'team-a',
        period: 'month',
        unit: 'usd',
        amount: '100000000000',
      },
      {
        budget_id: 'obrien-daily-tokens',
        scope_id: OBRIEN,
        period: 'day',
        unit: 'tokens',
        amount: '1000000',
      },
    ].map((b) => ({
      ...b,
      scope: 'team',
      time_zone: 'Europe/Berlin',
      thresholds: [50, 80, 100],
      description: 'grafana dashboard test',
      updated_at: chTime(seededAt),
      deleted: 0,
    })),
  });
  await ch.insert({
    table: 'usage_dlq',
    format: 'JSONEachRow',
    values: [
      {
        received_at: chTime(seededAt - 10 * MINUTE),
        reason: 'bad_magic',
        message: 'not Avro single-object encoding',
        kafka_topic: 'tokenledger.usage.v1',
        kafka_partition: 0,
        kafka_offset: 42,
      },
    ],
  });
  // Grafana's "to: now" is the moment a panel refreshes, after the data arrived.
  nowMs = Date.now();
  // The team variable's options, as Grafana loads them with the dashboard.
  const teamVariable = variableQueries.find((v) => v.label === 'variable "team"');
  if (teamVariable === undefined) throw new Error('the dashboard has no team variable');
  const rows = await run(teamVariable.sql, context({ all: true, values: [] }, MINUTE));
  options = rows.map((r) => String(Object.values(r)[0]));
});

function context(team: VariableValue, intervalMs: number): ExpandContext {
  return {
    fromMs: relativeTime(dashboard.time.from, nowMs),
    toMs: relativeTime(dashboard.time.to, nowMs),
    intervalMs,
    variables: new Map([['team', team.all ? { all: true, values: options } : team]]),
  };
}

type Row = Record<string, unknown>;

async function run(sql: string, ctx: ExpandContext): Promise<Row[]> {
  const query = expand(sql, ctx);
  try {
    const rs = await db.client().query({
      query,
      format: 'JSONEachRow',
      clickhouse_settings: { output_format_json_quote_decimals: 1 },
    });
    return await rs.json<Row>();
  } catch (err) {
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n--- the query as sent:\n${query}`);
  }
}

const panelSql = (title: string): string => {
  const q = queries.find((x) => x.label === `panel "${title}"`);
  if (q === undefined) throw new Error(`the dashboard has no panel "${title}"`);
  return q.sql;
};

// ---------------------------------------------------------------------------------------------------------

test('the dashboard has the panels the issue asks for, each with a query', () => {
  expect(queries.length).toBeGreaterThanOrEqual(10);
  for (const title of [
    'Spend per team per day',
    'Spend by model (all teams)',
    'Top users',
    'Alert history',
    'Budget status',
    'Unpriced usage',
    'Requests over time',
    'Tokens over time',
  ]) {
    expect(panelSql(title)).toMatch(/SELECT/);
  }
});

test('the team variable lists every team', () => {
  expect(options).toEqual(TEAMS);
});

describe.each(queries.map((q) => [q.label, q] as const))('%s', (_label, q) => {
  test('returns rows for all teams, not only zeros', async () => {
    const rows = await run(q.sql, context({ all: true, values: [] }, MINUTE));
    expect(rows.length).toBeGreaterThan(0);
    // An aggregate over no data still returns a row (0, NULL): some value must say something.
    const empty = (v: unknown): boolean =>
      v === null || v === 0 || v === '0' || v === '' || (Array.isArray(v) && v.length === 0);
    expect(rows.some((r) => Object.values(r).some((v) => !empty(v)))).toBe(true);
  });

  test(`runs for one team (${OBRIEN}) with a 10-minute interval`, async () => {
    await expect(run(q.sql, context({ all: false, values: [OBRIEN] }, 10 * MINUTE))).resolves.toBeInstanceOf(
      Array,
    );
  });
});

test('spend is exact for all teams and for each team', async () => {
  const spend = async (team: VariableValue): Promise<bigint> => {
    const [row] = await run(panelSql('Spend'), context(team, MINUTE));
    return decimalToNano(String(row?.spend_usd));
  };
  expect(await spend({ all: true, values: [] })).toBe(costOf());
  for (const team of TEAMS) expect(await spend({ all: false, values: [team] })).toBe(costOf(team));
  expect(await spend({ all: false, values: ['team-a', 'team-b'] })).toBe(costOf('team-a') + costOf('team-b'));
});

test('spend per team per day and top users follow the team filter', async () => {
  const perDay = await run(panelSql('Spend per team per day'), context({ all: true, values: [] }, MINUTE));
  const byTeam = new Map<string, bigint>();
  for (const r of perDay) {
    const team = String(r.team_id);
    byTeam.set(team, (byTeam.get(team) ?? 0n) + decimalToNano(String(r.cost_usd)));
  }
  expect([...byTeam.keys()].sort()).toEqual(TEAMS);
  for (const team of TEAMS) expect(byTeam.get(team)).toBe(costOf(team));

  const users = await run(panelSql('Top users'), context({ all: false, values: ['team-b'] }, MINUTE));
  expect(users.map((r) => [r.team_id, r.user, r.requests])).toEqual([['team-b', 'bob', '2']]);
  const obrien = await run(panelSql('Top users'), context({ all: false, values: [OBRIEN] }, MINUTE));
  expect(obrien.map((r) => [r.team_id, r.user])).toEqual([[OBRIEN, '(not set)']]);
});

test('requests over time add up to the events, errors included', async () => {
  const rows = await run(panelSql('Requests over time'), context({ all: true, values: [] }, MINUTE));
  expect(rows.reduce((n, r) => n + Number(r.requests), 0)).toBe(SEEDS.length);
  expect(rows.reduce((n, r) => n + Number(r.errors), 0)).toBe(
    SEEDS.filter((s) => s.status === 'error').length,
  );
});

test('alerts, budgets and unpriced usage show what was stored', async () => {
  const alerts = await run(panelSql('Alert history'), context({ all: true, values: [] }, MINUTE));
  expect(alerts.map((r) => r.team_id)).toEqual(['team-a', 'team-b']); // newest first
  const teamB = await run(panelSql('Alert history'), context({ all: false, values: ['team-b'] }, MINUTE));
  expect(teamB.map((r) => [r.kind, r.severity])).toEqual([['budget_threshold', 'critical']]);

  const budgets = await run(panelSql('Budget status'), context({ all: true, values: [] }, MINUTE));
  expect(budgets.map((r) => r.budget_id).sort()).toEqual(['obrien-daily-tokens', 'team-a-monthly']);
  const obrien = await run(panelSql('Budget status'), context({ all: false, values: [OBRIEN] }, MINUTE));
  expect(obrien.map((r) => [r.budget_id, r.unit, r.amount_tokens])).toEqual([
    ['obrien-daily-tokens', 'tokens', '1000000'],
  ]);

  const unpriced = await run(panelSql('Unpriced usage'), context({ all: true, values: [] }, MINUTE));
  expect(unpriced.map((r) => [r.provider, r.model, r.requests, r.teams])).toEqual([
    ['acme', 'mystery-1', '2', OBRIEN],
  ]);
  const none = await run(panelSql('Unpriced usage'), context({ all: false, values: ['team-a'] }, MINUTE));
  expect(none).toEqual([]);
});
