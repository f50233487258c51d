/**
 * The alert as TypeScript sees it. `schemas/alert/v*.avsc` is the source of truth; `ALERT_FIELDS` ties the two
 * together (tests/unit/alert-schema.test.ts checks it against the newest .avsc field by field).
 *
 * Avro longs are bigint here (money and token counts can pass 2^53: a $10M monthly budget is 1e16 nano-USD),
 * except timestamps, which are ms since the epoch as number; `schema.ts` converts at the wire.
 */

export const ALERT_KINDS = [
  'cost_spike',
  'spike_resolved',
  'budget_threshold',
  'budget_burn_rate',
  'budget_forecast',
] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

export const ALERT_SEVERITIES = ['info', 'warning', 'critical'] as const;
export type AlertSeverity = (typeof ALERT_SEVERITIES)[number];

export const ALERT_SCOPES = ['team', 'team_model', 'team_user', 'project', 'user'] as const;
export type AlertScope = (typeof ALERT_SCOPES)[number];

export const BUDGET_PERIODS = ['day', 'week', 'month'] as const;
export type BudgetPeriod = (typeof BUDGET_PERIODS)[number];

export const BUDGET_UNITS = ['usd', 'tokens'] as const;
export type BudgetUnit = (typeof BUDGET_UNITS)[number];

export interface AlertBudget {
  budget_id: string;
  period: BudgetPeriod;
  /** ms since the epoch (UTC). */
  period_start: number;
  /** ms since the epoch (UTC), exclusive. */
  period_end: number;
  time_zone: string;
  unit: BudgetUnit;
  /** nano-USD or tokens per period. */
  limit: bigint;
  spent: bigint;
  threshold_percent: number | null;
  burn_rate: number | null;
  burn_window: string | null;
  /** ms since the epoch (UTC). */
  forecast_exhausted_at: number | null;
}

export interface Contributor {
  dimension: 'user' | 'model' | 'project';
  value: string;
  cost_nanousd: bigint;
  share: number;
}

/** One alert (Avro record dev.tokenledger.Alert, current version). */
export interface Alert {
  alert_id: string;
  kind: AlertKind;
  severity: AlertSeverity;
  /** ms since the epoch (UTC). */
  fired_at: number;
  org_id: string | null;
  team_id: string;
  scope: AlertScope;
  model: string | null;
  user_id: string | null;
  project_id: string | null;
  /** ms since the epoch (UTC), inclusive. */
  window_start: number;
  /** ms since the epoch (UTC), exclusive. */
  window_end: number;
  observed_cost_nanousd: bigint;
  expected_cost_nanousd: bigint;
  observed_tokens: bigint;
  expected_tokens: bigint;
  score: number;
  rule: string;
  budget: AlertBudget | null;
  top_contributors: Contributor[];
  message: string;
  related_alert_id: string | null;
  detector: string;
}

/** Every field of Alert, in .avsc order, with its Avro kind ('?' = union with null, default null). */
export const ALERT_FIELDS = {
  alert_id: 'string',
  kind: 'string',
  severity: 'string',
  fired_at: 'long',
  org_id: 'string?',
  team_id: 'string',
  scope: 'string',
  model: 'string?',
  user_id: 'string?',
  project_id: 'string?',
  window_start: 'long',
  window_end: 'long',
  observed_cost_nanousd: 'long',
  expected_cost_nanousd: 'long',
  observed_tokens: 'long',
  expected_tokens: 'long',
  score: 'double',
  rule: 'string',
  budget: 'record?',
  top_contributors: 'array',
  message: 'string',
  related_alert_id: 'string?',
  detector: 'string',
} as const satisfies { [K in keyof Required<Alert>]: string };
