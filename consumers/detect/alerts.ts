/**
 * Alert identity and wording, shared by the spike detector and the budgets. `alertId` is derived from the
 * alert's kind, scope and window only, so the same alert decided twice (after a restart, by another replica)
 * has the same id and subscribers can deduplicate by it.
 */
import { createHash } from 'node:crypto';
import type { Alert, AlertKind } from '../../schemas/alert/types';
import type { SpikeDecision } from './types';

/** 32 hex characters: sha256 over the kind and the parts that name the scope and window. */
export function alertId(kind: AlertKind, parts: readonly (string | number | null)[]): string {
  const h = createHash('sha256');
  h.update(kind);
  for (const p of parts) h.update(`\u0000${p === null ? '' : String(p)}`);
  return h.digest('hex').slice(0, 32);
}

const NANO = 1_000_000_000n;

/**
 * Nano-USD as dollars for people: "$412", "$44.20", "$0.37", "$0.0012". Exact integer arithmetic (bigint), no
 * float rounding of the money itself; amounts of $100 or more are shown to the dollar, smaller ones to the cent,
 * below a cent to four significant decimals.
 */
export function formatUsd(nanousd: bigint | number): string {
  const n = typeof nanousd === 'bigint' ? nanousd : BigInt(Math.round(nanousd));
  const sign = n < 0n ? '-' : '';
  const abs = n < 0n ? -n : n;
  const group = (d: bigint): string => d.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  if (abs >= 100n * NANO) return `${sign}$${group((abs + NANO / 2n) / NANO)}`;
  if (abs >= NANO / 100n) {
    const cents = (abs + 5_000_000n) / 10_000_000n;
    return `${sign}$${group(cents / 100n)}.${(cents % 100n).toString().padStart(2, '0')}`;
  }
  const tenThousandths = (abs + 50_000n) / 100_000n;
  return `${sign}$0.${tenThousandths.toString().padStart(4, '0')}`;
}

/** A window length for people: "45 s", "15 min", "6 h", "3 d". */
export function formatDuration(ms: number): string {
  if (ms < 60_000) return `${Math.round(ms / 1000)} s`;
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)} min`;
  if (ms < 86_400_000) return `${+(ms / 3_600_000).toFixed(1)} h`;
  return `${+(ms / 86_400_000).toFixed(1)} d`;
}

/** The id of the cost_spike alert an episode opened with (what its spike_resolved points at). */
export function spikeAlertId(
  d: Pick<SpikeDecision, 'ref' | 'episodeStart'>,
  severity: SpikeDecision['severity'],
): string {
  return alertId('cost_spike', [d.ref.scope, d.ref.team_id, d.ref.model, d.episodeStart, severity]);
}

/** What a spike decision's alert is called: spikes per severity, the resolution once per episode. */
export function decisionAlertId(d: SpikeDecision): string {
  return d.kind === 'cost_spike'
    ? spikeAlertId(d, d.severity)
    : alertId('spike_resolved', [d.ref.scope, d.ref.team_id, d.ref.model, d.episodeStart]);
}

function clock(ms: number): string {
  return new Date(ms).toISOString().slice(11, 16);
}

/** The one line people read, e.g. "team-search spent $412 in the last 15 min, 9.3× its usual $44; 81% from ...". */
export function spikeMessage(d: SpikeDecision): string {
  const who = d.ref.scope === 'team_model' ? `${d.ref.team_id} on ${d.ref.model ?? ''}` : d.ref.team_id;
  const ratio = d.expectedCost > 0 ? `${(d.observedCost / d.expectedCost).toFixed(1)}×` : 'far above';
  if (d.kind === 'spike_resolved') {
    return (
      `${who}: spend back to normal; the spike from ${clock(d.windowStart)} to ${clock(d.windowEnd)} UTC cost ` +
      `${formatUsd(d.observedCost)} against ${formatUsd(d.expectedCost)} expected (${ratio})`
    );
  }
  const minutes = formatDuration(d.windowEnd - d.windowStart);
  const parts = [
    `${who} spent ${formatUsd(d.observedCost)} in the last ${minutes}, ${ratio} its usual ${formatUsd(d.expectedCost)}`,
  ];
  const user = d.contributors.find((c) => c.dimension === 'user');
  const model = d.contributors.find((c) => c.dimension === 'model');
  const share = (c: { share: number }): string => `${Math.round(c.share * 100)}%`;
  const from: string[] = [];
  if (user !== undefined) from.push(`${share(user)} from user ${user.value}`);
  if (model !== undefined && d.ref.scope === 'team') from.push(`${share(model)} on ${model.value}`);
  return from.length > 0 ? `${parts[0] ?? ''}; ${from.join(', ')}` : (parts[0] ?? '');
}

/** A spike decision as the alert published on the topic and recorded in ClickHouse. */
export function spikeAlert(d: SpikeDecision, firedAt: number, detector: string): Alert {
  return {
    alert_id: decisionAlertId(d),
    kind: d.kind,
    severity: d.severity,
    fired_at: firedAt,
    org_id: d.ref.org_id,
    team_id: d.ref.team_id,
    scope: d.ref.scope,
    model: d.ref.model,
    user_id: null,
    project_id: null,
    window_start: d.windowStart,
    window_end: d.windowEnd,
    observed_cost_nanousd: BigInt(d.observedCost),
    expected_cost_nanousd: BigInt(d.expectedCost),
    observed_tokens: BigInt(d.observedTokens),
    expected_tokens: BigInt(d.expectedTokens),
    score: d.score,
    rule: d.rule,
    budget: null,
    top_contributors: d.contributors,
    message: spikeMessage(d),
    // a resolution names the alert that opened its episode; so does an escalation (warning → critical)
    related_alert_id:
      d.kind === 'spike_resolved' || d.severity !== d.episodeSeverity
        ? spikeAlertId(d, d.episodeSeverity)
        : null,
    detector,
  };
}
