/**
 * The report as a terminal table, CSV or JSON, pure. Table and CSV show the breakdown by the chosen dimension
 * plus totals; JSON holds everything the HTML page shows. Money: formatUsd for people, exact decimal USD and
 * integer nano-USD for machines.
 */
import { usdDecimal } from '../../consumers/detect/budget-store';
import { formatUsd } from '../../consumers/detect/alerts';
import { formatCount, formatPercent } from '../../consumers/alerts/slack';
import type { BreakdownRow, Measures, ReportAlert, ReportData, ReportWindow } from './types';
import { alignedTable, csv, toJson } from './text';
import type { Align } from './text';

const iso = (ms: number): string => new Date(ms).toISOString();

/** "2026-11-22 11:28 – 2026-11-29 11:29 UTC" */
export function windowText(w: Pick<ReportWindow, 'since' | 'until'>): string {
  const f = (ms: number): string => iso(ms).slice(0, 16).replace('T', ' ');
  return `${f(w.since)} – ${f(w.until)} UTC`;
}

const SOURCE_TEXT: Readonly<Record<ReportWindow['source'], string>> = {
  usage_minute: 'minute rollup',
  usage_hour: 'hour rollup',
  usage_day: 'day rollup',
};

/** The one-line description of what a report covers. */
export function reportTitle(d: ReportData): string {
  return `Spend by ${d.by}, ${windowText(d.window)} (${SOURCE_TEXT[d.window.source]}), ${d.team === null ? 'all teams' : `team ${d.team}`}`;
}

/** "(none)" for the empty value (events without a user). */
export const keyText = (key: string): string => (key === '' ? '(none)' : key);

const withProvider = (d: ReportData): boolean => d.by === 'model';

/** The table: one row per value of the dimension, then the totals. */
export function renderTable(d: ReportData): string {
  const header = [
    d.by,
    ...(withProvider(d) ? ['provider'] : []),
    'cost',
    'share',
    'requests',
    'errors',
    'input tokens',
    'output tokens',
    'unpriced',
  ];
  const cells = (key: string, provider: string[], m: Measures): string[] => [
    key,
    ...provider,
    formatUsd(m.cost_nanousd),
    formatPercent(m.cost_nanousd, d.totals.cost_nanousd),
    formatCount(m.requests),
    formatCount(m.errors),
    formatCount(m.input_tokens),
    formatCount(m.output_tokens),
    formatCount(m.unpriced_requests),
  ];
  const rows = d.rows.map((r) => cells(keyText(r.key), withProvider(d) ? [r.provider ?? ''] : [], r));
  rows.push(cells('total', withProvider(d) ? [''] : [], d.totals));
  const align = header.map((_, i): Align => (i < (withProvider(d) ? 2 : 1) ? 'left' : 'right'));
  const lines = [reportTitle(d), '', alignedTable(header, rows, align)];
  if (d.rows.length === 0) lines.push('', 'no usage in this window');
  return `${lines.join('\n')}\n`;
}

const MEASURE_COLUMNS = [
  'cost_usd',
  'cost_nanousd',
  'requests',
  'errors',
  'unpriced_requests',
  'input_tokens',
  'output_tokens',
  'cache_read_input_tokens',
] as const;

function measureValues(m: Measures): string[] {
  return [
    usdDecimal(m.cost_nanousd),
    m.cost_nanousd.toString(),
    m.requests.toString(),
    m.errors.toString(),
    m.unpriced_requests.toString(),
    m.input_tokens.toString(),
    m.output_tokens.toString(),
    m.cache_read_input_tokens.toString(),
  ];
}

/**
 * CSV: a header, one line per value of the dimension, and a last line with `row` = total. The first column,
 * `row`, is `item` or `total`, so a team literally named "total" stays unambiguous.
 */
export function renderCsv(d: ReportData): string {
  const header = ['row', d.by, ...(withProvider(d) ? ['provider'] : []), ...MEASURE_COLUMNS];
  const rows = d.rows.map((r) => [
    'item',
    r.key,
    ...(withProvider(d) ? [r.provider ?? ''] : []),
    ...measureValues(r),
  ]);
  rows.push(['total', '', ...(withProvider(d) ? [''] : []), ...measureValues(d.totals)]);
  return `${csv(header, rows)}\n`;
}

function measuresJson(m: Measures): Record<string, string> {
  return Object.fromEntries(MEASURE_COLUMNS.map((c, i) => [c, measureValues(m)[i] ?? '']));
}

function rowJson(d: ReportData, r: BreakdownRow): Record<string, unknown> {
  return { [d.by]: r.key, ...(withProvider(d) ? { provider: r.provider ?? '' } : {}), ...measuresJson(r) };
}

function alertJson(a: ReportAlert): Record<string, unknown> {
  return {
    ...a,
    fired_at: iso(a.fired_at),
    window_start: iso(a.window_start),
    window_end: iso(a.window_end),
    forecast_exhausted_at: a.forecast_exhausted_at === null ? null : iso(a.forecast_exhausted_at),
  };
}

/** Everything in the report as one JSON document: 64-bit numbers as decimal strings, instants as ISO 8601. */
export function renderJson(d: ReportData): string {
  const w = d.window;
  return `${toJson(
    {
      generated_at: iso(d.generatedAt),
      window: {
        since: iso(w.since),
        until: iso(w.until),
        requested_since: iso(w.requestedSince),
        requested_until: iso(w.requestedUntil),
        source: w.source,
        bucket_seconds: w.bucketMs / 1000,
      },
      by: d.by,
      team: d.team,
      totals: {
        ...measuresJson(d.totals),
        teams: d.totals.teams,
        users: d.totals.users,
        models: d.totals.models,
      },
      rows: d.rows.map((r) => rowJson(d, r)),
      spend_over_time: {
        buckets: d.spendOverTime.buckets.map(iso),
        series: d.spendOverTime.series.map((s) => ({ team: s.team, cost_nanousd: s.points })),
      },
      models: d.models.map((m) => ({ provider: m.provider, model: m.model, ...measuresJson(m) })),
      top_users: d.topUsers.map((u) => ({ user_id: u.user_id, teams: u.teams, ...measuresJson(u) })),
      budgets: d.budgets.map((b) => ({
        budget_id: b.budget.budget_id,
        scope: b.budget.scope,
        scope_id: b.budget.scope_id,
        period: b.budget.period,
        time_zone: b.budget.time_zone,
        unit: b.budget.unit,
        amount: b.budget.amount,
        thresholds: b.budget.thresholds,
        period_label: b.periodLabel,
        period_start: iso(b.periodStart),
        period_end: iso(b.periodEnd),
        as_of: iso(b.asOf),
        spent: b.spent,
        spent_percent: formatPercent(b.spent, b.budget.amount),
        forecast:
          b.forecast === null
            ? null
            : {
                pace_window_seconds: b.forecast.paceWindowMs / 1000,
                pace_spent: b.forecast.paceSpent,
                projected: b.forecast.projected,
                exhausted_at: b.forecast.exhaustedAt === null ? null : iso(b.forecast.exhaustedAt),
              },
        forecast_alert: b.forecastAlert === null ? null : alertJson(b.forecastAlert),
        points: b.points.map((p) => ({ at: iso(p.at), cumulative: p.cumulative })),
      })),
      alerts: d.alerts.map(alertJson),
    },
    2,
  )}\n`;
}
