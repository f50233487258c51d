/**
 * `collectReport`: everything a spend report shows, read from ClickHouse. Totals, the breakdown, spend over
 * time, the model mix and the top users come from ONE rollup chosen by the window (window.ts), so they add up
 * exactly; budgets' burn-down from usage_minute like the detector's spend to date; alerts from `alerts`.
 *
 * SQL text is built only from fixed fragments in this file; every user value (the team, the window, a budget
 * id) reaches ClickHouse as a query parameter.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { loadBudgets } from '../../consumers/detect/budget-store';
import type { Budget } from '../../consumers/detect/budgets';
import { periodBounds, periodLabel } from '../../consumers/detect/periods';
import { burnBucket, burnPoints, forecast, paceWindow } from './burn';
import type {
  BreakdownRow,
  BudgetBurn,
  Measures,
  ModelSpend,
  ReportAlert,
  ReportData,
  ReportDimension,
  ReportOptions,
  ReportTotals,
  ReportWindow,
  TeamSeries,
  UserSpend,
} from './types';
import { OTHER_SERIES } from './types';
import { bucketStarts, planWindow } from './window';

/** At most this many teams get their own series; the others are summed as OTHER_SERIES. */
export const MAX_SERIES = 8;
export const MAX_MODELS = 12;
export const MAX_USERS = 10;
export const MAX_ALERTS = 200;

type Row = Record<string, unknown>;

/** The time column of each rollup, as a DateTime('UTC'). */
const TIME: Readonly<Record<ReportWindow['source'], string>> = {
  usage_minute: 'minute',
  usage_hour: 'hour',
  usage_day: "toDateTime(day, 'UTC')",
};

/** The GROUP BY columns of each dimension (fixed text: never a user value). */
const KEY: Readonly<Record<ReportDimension, string>> = {
  team: 'team_id AS key',
  user: 'user_id AS key',
  provider: 'provider AS key',
  model: 'model AS key, provider',
};

const MEASURES = `sum(cost_nanousd) AS cost_nanousd, sum(requests) AS requests, sum(errors) AS errors,
  sum(unpriced_requests) AS unpriced_requests, sum(input_tokens) AS input_tokens,
  sum(output_tokens) AS output_tokens, sum(cache_read_input_tokens) AS cache_read_input_tokens`;

/** The column a budget's scope is matched on in the rollups (a fixed list). */
const SCOPE_COLUMN: Readonly<Record<Budget['scope'], string>> = {
  team: 'team_id',
  project: 'project_id',
  user: 'user_id',
};

const big = (v: unknown): bigint => (typeof v === 'string' || typeof v === 'number' ? BigInt(v) : 0n);
const num = (v: unknown): number => (typeof v === 'string' || typeof v === 'number' ? Number(v) : 0);
const str = (v: unknown): string => (typeof v === 'string' ? v : '');

function measures(r: Row): Measures {
  return {
    cost_nanousd: big(r.cost_nanousd),
    requests: big(r.requests),
    errors: big(r.errors),
    unpriced_requests: big(r.unpriced_requests),
    input_tokens: big(r.input_tokens),
    output_tokens: big(r.output_tokens),
    cache_read_input_tokens: big(r.cache_read_input_tokens),
  };
}

interface Query {
  (sql: string, params?: Record<string, unknown>): Promise<Row[]>;
}

function querier(ch: ClickHouseClient): Query {
  return async (sql, params = {}) => {
    const rs = await ch.query({
      query: sql,
      query_params: params,
      format: 'JSONEachRow',
      // 64-bit sums as strings whatever the client's defaults: they become bigint here.
      clickhouse_settings: { output_format_json_quote_64bit_integers: 1 },
    });
    return rs.json<Row>();
  };
}

const seconds = (ms: number): number => Math.floor(ms / 1000);

/**
 * Promise.all that waits for every query to finish before rejecting with the first error: no response is left
 * half-read when the caller closes the client.
 */
async function settled<T extends readonly unknown[] | []>(
  promises: T,
): Promise<{ -readonly [P in keyof T]: Awaited<T[P]> }> {
  await Promise.allSettled(promises);
  return Promise.all(promises);
}

/** Collects the report for [since, until) by the dimension, optionally for one team. */
export async function collectReport(ch: ClickHouseClient, opts: ReportOptions): Promise<ReportData> {
  const now = opts.now ?? Date.now();
  const window = planWindow(opts.since, opts.until, now);
  const q = querier(ch);
  const team = opts.team ?? null;
  const time = TIME[window.source];
  const where = `${time} >= toDateTime({since:UInt32}, 'UTC') AND ${time} < toDateTime({until:UInt32}, 'UTC')${team === null ? '' : ' AND team_id = {team:String}'}`;
  const params = {
    since: seconds(window.since),
    until: seconds(window.until),
    bucket: seconds(window.bucketMs),
    ...(team === null ? {} : { team }),
  };
  const from = `FROM ${window.source} WHERE ${where}`;

  const [totals, rows, series, models, users, alerts, budgets] = await settled([
    q(
      `SELECT ${MEASURES}, uniqExact(team_id) AS teams, uniqExactIf(user_id, user_id != '') AS users,
              uniqExact(provider, model) AS models ${from}`,
      params,
    ),
    q(
      `SELECT ${KEY[opts.by]}, ${MEASURES} ${from} GROUP BY ${opts.by === 'model' ? 'key, provider' : 'key'}
       ORDER BY cost_nanousd DESC, requests DESC, key`,
      params,
    ),
    q(
      `SELECT intDiv(toUInt32(${time}), {bucket:UInt32}) * {bucket:UInt32} AS bucket, team_id,
              sum(cost_nanousd) AS cost_nanousd
       ${from} GROUP BY bucket, team_id`,
      params,
    ),
    q(
      `SELECT provider, model, ${MEASURES} ${from} GROUP BY provider, model
       ORDER BY cost_nanousd DESC, requests DESC, provider, model LIMIT ${MAX_MODELS}`,
      params,
    ),
    q(
      `SELECT user_id, groupUniqArray(5)(team_id) AS teams, ${MEASURES} ${from} AND user_id != ''
       GROUP BY user_id ORDER BY cost_nanousd DESC, requests DESC, user_id LIMIT ${MAX_USERS}`,
      params,
    ),
    q(
      `SELECT ${ALERT_COLUMNS} FROM alerts
       WHERE fired_at >= fromUnixTimestamp64Milli({sinceMs:Int64}, 'UTC')
         AND fired_at < fromUnixTimestamp64Milli({untilMs:Int64}, 'UTC')
         ${team === null ? '' : 'AND team_id = {team:String}'}
       ORDER BY fired_at DESC, alert_id LIMIT 1 BY alert_id LIMIT ${MAX_ALERTS}`,
      { ...params, sinceMs: window.since, untilMs: window.until },
    ),
    collectBudgets(ch, q, team, Math.min(now, opts.until)),
  ]);

  const t = totals[0] ?? {};
  const reportTotals: ReportTotals = {
    ...measures(t),
    teams: num(t.teams),
    users: num(t.users),
    models: num(t.models),
  };
  return {
    generatedAt: now,
    window,
    by: opts.by,
    team,
    totals: reportTotals,
    rows: rows.map((r): BreakdownRow => ({
      key: str(r.key),
      ...(opts.by === 'model' ? { provider: str(r.provider) } : {}),
      ...measures(r),
    })),
    spendOverTime: pivotSeries(window, series),
    alerts: alerts.map(toAlert),
    budgets,
    models: models.map((r): ModelSpend => ({
      provider: str(r.provider),
      model: str(r.model),
      ...measures(r),
    })),
    topUsers: users.map((r): UserSpend => ({
      user_id: str(r.user_id),
      teams: Array.isArray(r.teams) ? r.teams.map(str).sort() : [],
      ...measures(r),
    })),
  };
}

/** Buckets × teams, the biggest MAX_SERIES - 1 teams on their own and the rest summed (when there are more). */
export function pivotSeries(
  window: Pick<ReportWindow, 'since' | 'until' | 'bucketMs'>,
  rows: readonly Row[],
): TeamSeries {
  const buckets = bucketStarts(window);
  const index = new Map(buckets.map((b, i) => [b, i]));
  const byTeam = new Map<string, bigint[]>();
  const totals = new Map<string, bigint>();
  for (const r of rows) {
    const i = index.get(num(r.bucket) * 1000);
    if (i === undefined) continue;
    const team = str(r.team_id);
    const cost = big(r.cost_nanousd);
    let points = byTeam.get(team);
    if (points === undefined) {
      points = buckets.map(() => 0n);
      byTeam.set(team, points);
    }
    points[i] = (points[i] ?? 0n) + cost;
    totals.set(team, (totals.get(team) ?? 0n) + cost);
  }
  const ranked = [...byTeam.keys()].sort((a, b) => {
    const d = (totals.get(b) ?? 0n) - (totals.get(a) ?? 0n);
    return d > 0n ? 1 : d < 0n ? -1 : a < b ? -1 : a > b ? 1 : 0;
  });
  const own = ranked.length <= MAX_SERIES ? ranked : ranked.slice(0, MAX_SERIES - 1);
  const series = own.map((team) => ({ team, points: byTeam.get(team) ?? [] }));
  if (own.length < ranked.length) {
    const other = buckets.map(() => 0n);
    for (const team of ranked.slice(own.length)) {
      (byTeam.get(team) ?? []).forEach((v, i) => (other[i] = (other[i] ?? 0n) + v));
    }
    series.push({ team: OTHER_SERIES, points: other });
  }
  return { buckets, series };
}

const ALERT_COLUMNS = `alert_id, kind, severity, toUnixTimestamp64Milli(fired_at) AS fired_ms, team_id, scope, model,
  user_id, toUnixTimestamp64Milli(window_start) AS window_start_ms, toUnixTimestamp64Milli(window_end) AS window_end_ms,
  observed_cost_nanousd, expected_cost_nanousd, budget_id,
  if(forecast_exhausted_at IS NULL, NULL, toUnixTimestamp64Milli(assumeNotNull(forecast_exhausted_at))) AS forecast_ms,
  message`;

function toAlert(r: Row): ReportAlert {
  return {
    alert_id: str(r.alert_id),
    kind: str(r.kind),
    severity: str(r.severity),
    fired_at: num(r.fired_ms),
    team_id: str(r.team_id),
    scope: str(r.scope),
    model: str(r.model),
    user_id: str(r.user_id),
    window_start: num(r.window_start_ms),
    window_end: num(r.window_end_ms),
    observed_cost_nanousd: big(r.observed_cost_nanousd),
    expected_cost_nanousd: big(r.expected_cost_nanousd),
    budget_id: str(r.budget_id),
    forecast_exhausted_at: r.forecast_ms === null || r.forecast_ms === undefined ? null : num(r.forecast_ms),
    message: str(r.message),
  };
}

/**
 * The budgets in force (one team's team budgets when `team` is set) with their current period's burn-down at
 * `asOf`: cumulative spend per bucket, the forecast, and the detector's forecast alert for the period.
 */
async function collectBudgets(
  ch: ClickHouseClient,
  q: Query,
  team: string | null,
  asOf: number,
): Promise<BudgetBurn[]> {
  const all = await loadBudgets(ch);
  const chosen = team === null ? all : all.filter((b) => b.scope === 'team' && b.scope_id === team);
  return settled(chosen.map((b) => burnOf(q, b, asOf)));
}

async function burnOf(q: Query, budget: Budget, asOf: number): Promise<BudgetBurn> {
  const { start, end } = periodBounds(asOf, budget.period, budget.time_zone);
  const bucketMs = burnBucket(budget.period);
  const measure = budget.unit === 'usd' ? 'cost_nanousd' : 'input_tokens + output_tokens';
  const scope = `${SCOPE_COLUMN[budget.scope]} = {scopeId:String}`;
  const pace = paceWindow(start, end, asOf);
  const params = {
    id: budget.budget_id,
    scopeId: budget.scope_id,
    start: seconds(start),
    asOf: Math.ceil(asOf / 1000),
    step: seconds(bucketMs),
    paceStart: seconds(asOf - (pace ?? 0)),
    startMs: start,
  };
  const [buckets, paced, alerts] = await settled([
    q(
      `SELECT intDiv(toUInt32(minute) - {start:UInt32}, {step:UInt32}) AS i, sum(${measure}) AS spent
       FROM usage_minute
       WHERE ${scope}
         AND minute >= toDateTime({start:UInt32}, 'UTC') AND minute < toDateTime({asOf:UInt32}, 'UTC')
       GROUP BY i`,
      params,
    ),
    pace === undefined
      ? Promise.resolve([])
      : q(
          `SELECT sum(${measure}) AS spent FROM usage_minute
           WHERE ${scope}
             AND minute >= toDateTime({paceStart:UInt32}, 'UTC') AND minute < toDateTime({asOf:UInt32}, 'UTC')`,
          params,
        ),
    q(
      `SELECT ${ALERT_COLUMNS} FROM alerts
       WHERE kind = 'budget_forecast' AND budget_id = {id:String}
         AND budget_period_start = fromUnixTimestamp64Milli({startMs:Int64}, 'UTC')
       ORDER BY fired_at DESC LIMIT 1`,
      params,
    ),
  ]);
  const sums = new Map(buckets.map((r) => [num(r.i), big(r.spent)]));
  const points = burnPoints(start, asOf, bucketMs, sums);
  const spent = points[points.length - 1]?.cumulative ?? 0n;
  const alert = alerts[0];
  return {
    budget,
    periodStart: start,
    periodEnd: end,
    periodLabel: periodLabel(start, budget.period, budget.time_zone),
    asOf,
    spent,
    bucketMs,
    points,
    forecast:
      pace === undefined
        ? null
        : forecast({
            amount: budget.amount,
            periodEnd: end,
            asOf,
            spent,
            paceWindowMs: pace,
            paceSpent: big(paced[0]?.spent),
          }),
    forecastAlert: alert === undefined ? null : toAlert(alert),
  };
}
