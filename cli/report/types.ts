/**
 * What a spend report holds (`collectReport` fills it from ClickHouse; the renderers turn it into a table, CSV,
 * JSON or the HTML page). Money is integer nano-USD as bigint, counts of tokens and requests are bigint too
 * (sums can pass 2^53); instants are ms since the epoch (UTC).
 */
import type { Budget } from '../../consumers/detect/budgets';

export const REPORT_DIMENSIONS = ['team', 'user', 'model', 'provider'] as const;
export type ReportDimension = (typeof REPORT_DIMENSIONS)[number];

export const REPORT_FORMATS = ['table', 'csv', 'json', 'html'] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

export interface ReportOptions {
  /** ms since the epoch, inclusive */
  readonly since: number;
  /** ms since the epoch, exclusive */
  readonly until: number;
  readonly by: ReportDimension;
  /** only this team (a query parameter, never SQL text) */
  readonly team?: string;
  /** "now" for the budgets' current periods and for the report's timestamp (default Date.now()) */
  readonly now?: number;
}

/** The rollup a report reads and the step of its time series. */
export interface ReportWindow {
  /** as asked */
  readonly requestedSince: number;
  readonly requestedUntil: number;
  /** as read: widened to whole rows of the rollup (a minute, an hour or a day) */
  readonly since: number;
  readonly until: number;
  readonly source: 'usage_minute' | 'usage_hour' | 'usage_day';
  /** the time series' bucket, ms */
  readonly bucketMs: number;
}

export interface Measures {
  cost_nanousd: bigint;
  requests: bigint;
  errors: bigint;
  unpriced_requests: bigint;
  input_tokens: bigint;
  output_tokens: bigint;
  cache_read_input_tokens: bigint;
}

export interface ReportTotals extends Measures {
  teams: number;
  users: number;
  models: number;
}

/** One value of the report's dimension. For `model`, `provider` is the model's provider. */
export interface BreakdownRow extends Measures {
  readonly key: string;
  readonly provider?: string;
}

/** Spend over time, one series per team (the biggest ones; the rest summed as OTHER_SERIES). */
export interface TeamSeries {
  /** bucket starts, ms, ascending and evenly spaced by bucketMs */
  readonly buckets: readonly number[];
  readonly series: readonly { readonly team: string; readonly points: readonly bigint[] }[];
}

/** The name of the series that sums the teams beyond the biggest ones. */
export const OTHER_SERIES = '(other teams)';

export interface ReportAlert {
  readonly alert_id: string;
  /** an AlertKind (as stored: a newer detector may write kinds this code does not know) */
  readonly kind: string;
  /** an AlertSeverity */
  readonly severity: string;
  readonly fired_at: number;
  readonly team_id: string;
  readonly scope: string;
  readonly model: string;
  readonly user_id: string;
  readonly window_start: number;
  readonly window_end: number;
  readonly observed_cost_nanousd: bigint;
  readonly expected_cost_nanousd: bigint;
  readonly budget_id: string;
  readonly forecast_exhausted_at: number | null;
  readonly message: string;
}

export interface BurnPoint {
  /** the end of the bucket, ms */
  readonly at: number;
  /** spend from the period start to `at` */
  readonly cumulative: bigint;
}

export interface BudgetForecast {
  /** the pace is the spend of [asOf - paceWindowMs, asOf) */
  readonly paceWindowMs: number;
  readonly paceSpent: bigint;
  /** spend by the end of the period at that pace */
  readonly projected: bigint;
  /** when the budget runs out at that pace; null: not before the period ends */
  readonly exhaustedAt: number | null;
}

export interface BudgetBurn {
  readonly budget: Budget;
  readonly periodStart: number;
  readonly periodEnd: number;
  readonly periodLabel: string;
  /** the instant the burn-down runs to (now, or the report's end if that is earlier) */
  readonly asOf: number;
  /** nano-USD or tokens (by the budget's unit) spent from the period start to asOf */
  readonly spent: bigint;
  readonly bucketMs: number;
  /** starts with { at: periodStart, cumulative: 0 } */
  readonly points: readonly BurnPoint[];
  /** null: too early in the period, or no recent spend */
  readonly forecast: BudgetForecast | null;
  /** the detector's newest budget_forecast alert for this budget and period, if any */
  readonly forecastAlert: ReportAlert | null;
}

export interface ModelSpend extends Measures {
  readonly provider: string;
  readonly model: string;
}

export interface UserSpend extends Measures {
  readonly user_id: string;
  readonly teams: readonly string[];
}

export interface ReportData {
  /** ms: when the report was made */
  readonly generatedAt: number;
  readonly window: ReportWindow;
  readonly by: ReportDimension;
  readonly team: string | null;
  readonly totals: ReportTotals;
  /** by the chosen dimension, most expensive first */
  readonly rows: readonly BreakdownRow[];
  readonly spendOverTime: TeamSeries;
  /** alerts fired in the window, newest first (at most MAX_ALERTS) */
  readonly alerts: readonly ReportAlert[];
  readonly budgets: readonly BudgetBurn[];
  /** most expensive first (at most MAX_MODELS) */
  readonly models: readonly ModelSpend[];
  /** most expensive first (at most MAX_USERS) */
  readonly topUsers: readonly UserSpend[];
}
