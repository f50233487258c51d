/**
 * Scores a spike detector's alerts against labelled spikes (bench:detect). Pure.
 *
 * - An alert matches a spike of its team when its windowEnd falls in [spike.start, spike.end + 15 min].
 * - Alerts matched to a qualifying spike are true positives; alerts matched to a minor spike (or to a spike that
 *   started in the warm-up) are ignored, neither TP nor FP; every other alert is a false positive, level shifts
 *   included. Every alert counts: a warning and its later critical escalation are two alerts.
 * - Precision = TP alerts / (TP + FP alerts); recall = qualifying spikes with ≥ 1 matched alert / qualifying
 *   spikes; F1 from those.
 * - Delay of a detected spike = its first matching alert's windowEnd + the allowed lateness − spike start
 *   (the detector only closes a minute once the lateness has passed).
 * - Only the scored period counts: spikes starting before it are excluded, alerts with windowEnd before it are
 *   ignored.
 */

export const MATCH_GRACE_MS = 15 * 60_000;
const WEEK_MS = 7 * 86_400_000;

export interface LabelledSpike {
  readonly id: number;
  readonly team: string;
  readonly shape: string;
  /** ms */
  readonly start: number;
  /** ms, exclusive */
  readonly end: number;
  readonly qualifying: boolean;
}

export interface ScoredAlert {
  readonly team: string;
  /** end of the window that fired (event time, ms) */
  readonly windowEnd: number;
}

export interface ScoreOptions {
  /** start of the scored period (ms) */
  readonly scoredFrom: number;
  /** end of the scored period (ms, exclusive) */
  readonly scoredTo: number;
  /** teams in the data set (for rates per team and week) */
  readonly teams: number;
  /** the detector's allowed lateness, added to every delay */
  readonly latenessMs: number;
}

export type AlertVerdict = 'tp' | 'fp' | 'minor' | 'warmup_spike';

export interface ShapeScores {
  readonly qualifying: number;
  readonly detected: number;
  readonly recall: number;
  readonly delayMedianMin: number;
}

export interface DetectionScores {
  /** alerts in the scored period */
  readonly alerts: number;
  readonly tp: number;
  readonly fp: number;
  /** alerts matched to a minor spike: neither TP nor FP */
  readonly ignoredMinor: number;
  /** alerts matched to a spike that started in the warm-up: neither TP nor FP */
  readonly ignoredWarmupSpike: number;
  readonly precision: number;
  readonly recall: number;
  readonly f1: number;
  readonly qualifying: number;
  readonly detected: number;
  readonly minor: number;
  /** minor spikes with ≥ 1 matched alert (information only) */
  readonly minorAlerted: number;
  readonly delayMedianMin: number;
  readonly delayP95Min: number;
  readonly falseAlertsPerTeamWeek: number;
  readonly alertsPerTeamWeek: number;
  readonly byShape: Readonly<Record<string, ShapeScores>>;
  /** per alert of the input (same order): its verdict, or null outside the scored period */
  readonly verdicts: readonly (AlertVerdict | null)[];
  /** per alert: the id of the spike it matched, or null */
  readonly matchedSpike: readonly (number | null)[];
  /** delay (min) of each detected qualifying spike, by spike id */
  readonly delays: ReadonlyMap<number, number>;
  /** ids of the qualifying scored spikes nothing matched */
  readonly missed: readonly number[];
}

/** Median (mean of the two middle values for an even count); NaN when empty. */
export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return Number.NaN;
  const mid = n >> 1;
  return n % 2 === 1 ? (s[mid] ?? NaN) : ((s[mid - 1] ?? NaN) + (s[mid] ?? NaN)) / 2;
}

/** Nearest-rank quantile: the smallest value with at least q of the values at or below it; NaN when empty. */
export function quantile(values: readonly number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] ?? NaN;
}

export function f1Of(precision: number, recall: number): number {
  if (!(precision + recall > 0)) return 0;
  return (2 * precision * recall) / (precision + recall);
}

/** Finds the spike (of the alert's team) whose match window holds t, by binary search over sorted starts. */
function matcher(spikes: readonly LabelledSpike[]): (team: string, t: number) => LabelledSpike | undefined {
  const byTeam = new Map<string, LabelledSpike[]>();
  for (const s of spikes) {
    const list = byTeam.get(s.team) ?? [];
    list.push(s);
    byTeam.set(s.team, list);
  }
  for (const list of byTeam.values()) list.sort((a, b) => a.start - b.start);
  return (team, t) => {
    const list = byTeam.get(team);
    if (list === undefined) return undefined;
    // the last spike starting at or before t, then earlier ones while their windows may still reach t
    let lo = 0;
    let hi = list.length - 1;
    let idx = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if ((list[mid]?.start ?? Infinity) <= t) {
        idx = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    for (let i = idx; i >= 0; i--) {
      const s = list[i];
      if (s !== undefined && t <= s.end + MATCH_GRACE_MS) return s;
    }
    return undefined;
  };
}

export function scoreDetections(
  alerts: readonly ScoredAlert[],
  spikes: readonly LabelledSpike[],
  opts: ScoreOptions,
): DetectionScores {
  const inScored = (t: number): boolean => t >= opts.scoredFrom && t < opts.scoredTo;
  const match = matcher(spikes);
  const verdicts: (AlertVerdict | null)[] = [];
  const matchedSpike: (number | null)[] = [];
  const firstAlert = new Map<number, number>();
  let tp = 0;
  let fp = 0;
  let ignoredMinor = 0;
  let ignoredWarmupSpike = 0;
  let count = 0;
  for (const a of alerts) {
    if (!inScored(a.windowEnd)) {
      verdicts.push(null);
      matchedSpike.push(null);
      continue;
    }
    count++;
    const s = match(a.team, a.windowEnd);
    matchedSpike.push(s?.id ?? null);
    let v: AlertVerdict;
    if (s === undefined) {
      v = 'fp';
      fp++;
    } else if (!inScored(s.start)) {
      v = 'warmup_spike';
      ignoredWarmupSpike++;
    } else {
      if (!s.qualifying) {
        v = 'minor';
        ignoredMinor++;
      } else {
        v = 'tp';
        tp++;
      }
      const prev = firstAlert.get(s.id);
      if (prev === undefined || a.windowEnd < prev) firstAlert.set(s.id, a.windowEnd);
    }
    verdicts.push(v);
  }

  const scored = spikes.filter((s) => inScored(s.start));
  const qualifying = scored.filter((s) => s.qualifying);
  const delays = new Map<number, number>();
  const missed: number[] = [];
  for (const s of qualifying) {
    const first = firstAlert.get(s.id);
    if (first === undefined) missed.push(s.id);
    else delays.set(s.id, (first + opts.latenessMs - s.start) / 60_000);
  }
  const shapes = [...new Set(scored.map((s) => s.shape))].sort();
  const byShape: Record<string, ShapeScores> = {};
  for (const shape of shapes) {
    const q = qualifying.filter((s) => s.shape === shape);
    const d = q.flatMap((s) => {
      const x = delays.get(s.id);
      return x === undefined ? [] : [x];
    });
    byShape[shape] = {
      qualifying: q.length,
      detected: d.length,
      recall: q.length === 0 ? Number.NaN : d.length / q.length,
      delayMedianMin: median(d),
    };
  }
  const precision = tp + fp === 0 ? Number.NaN : tp / (tp + fp);
  const recall = qualifying.length === 0 ? Number.NaN : delays.size / qualifying.length;
  const teamWeeks = (opts.teams * (opts.scoredTo - opts.scoredFrom)) / WEEK_MS;
  const delayList = [...delays.values()];
  return {
    alerts: count,
    tp,
    fp,
    ignoredMinor,
    ignoredWarmupSpike,
    precision,
    recall,
    f1: f1Of(Number.isNaN(precision) ? 0 : precision, Number.isNaN(recall) ? 0 : recall),
    qualifying: qualifying.length,
    detected: delays.size,
    minor: scored.length - qualifying.length,
    minorAlerted: scored.filter((s) => !s.qualifying && firstAlert.has(s.id)).length,
    delayMedianMin: median(delayList),
    delayP95Min: quantile(delayList, 0.95),
    falseAlertsPerTeamWeek: teamWeeks > 0 ? fp / teamWeeks : Number.NaN,
    alertsPerTeamWeek: teamWeeks > 0 ? count / teamWeeks : Number.NaN,
    byShape,
    verdicts,
    matchedSpike,
    delays,
    missed,
  };
}
