/**
 * The spike detector's pure interface: no I/O, event time only. `detect.ts` feeds it from Kafka; the benchmark
 * (bench/detect.ts) and the unit tests feed it synthetic minutes.
 *
 * Money inside the detector is integer nano-USD as a JS number: a single scope's spend over the longest window
 * (a day) stays far below 2^53 nano-USD (≈ $9M). Budget totals, which can pass that, are bigint (budgets.ts).
 */
import type { AlertScope, AlertSeverity, Contributor } from '../../schemas/alert/types';

export const MINUTE_MS = 60_000;
export const HOUR_MS = 3_600_000;

/** A scope the detector watches: a team, or a team and one model. */
export interface ScopeRef {
  readonly scope: Extract<AlertScope, 'team' | 'team_model'>;
  readonly team_id: string;
  /** for scope team_model */
  readonly model: string | null;
  readonly org_id: string | null;
}

/** One scope's spend in one closed event-time minute. */
export interface MinuteTotals {
  cost_nanousd: number;
  /** sum over the minute's calls of cost² (nano-USD², float): the noise model's input (spike.ts) */
  cost_sq: number;
  /**
   * the most expensive single call of the minute, nano-USD: the noise gate never calls one big call a spike.
   * Leave it out when unknown (the gate then relies on cost_sq alone).
   */
  max_call_nanousd?: number;
  /** input + output tokens */
  tokens: number;
  /** cost per `${user_id}\u0000${model}` ('' for a missing user), for the top contributors; may be empty */
  byUserModel: Map<string, number>;
}

/** A scope's spend in one closed minute, as handed to the detector. */
export interface ScopeMinute {
  readonly ref: ScopeRef;
  readonly totals: MinuteTotals;
}

/** What the spike detector decided; alerts.ts turns it into an Alert (id, message). */
export interface SpikeDecision {
  readonly kind: 'cost_spike' | 'spike_resolved';
  readonly severity: AlertSeverity;
  readonly ref: ScopeRef;
  /** event-time minute (start, ms) the episode began: part of alert_id, the same across restarts */
  readonly episodeStart: number;
  readonly windowStart: number;
  readonly windowEnd: number;
  readonly observedCost: number;
  readonly expectedCost: number;
  readonly observedTokens: number;
  readonly expectedTokens: number;
  /** observed / expected over the window (expected floored at 1 nano-USD) */
  readonly score: number;
  readonly rule: string;
  readonly contributors: Contributor[];
  /** the severity the episode opened with: a spike_resolved names that alert (related_alert_id) */
  readonly episodeSeverity: AlertSeverity;
}
