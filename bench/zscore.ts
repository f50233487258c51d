/**
 * The baseline for bench:detect: a rolling z-score (windowed Gaussian) detector, the textbook way. Pure.
 *
 * Per team, the value at minute m is the spend of that minute (or of the last 5 minutes); its mean and standard
 * deviation over the trailing window (the `windowMinutes` values before it, spikes included, no seasonality)
 * give z = (value − mean) / sd. It alerts when z ≥ threshold, once per episode: after an alert it re-arms only
 * after `rearmQuietMinutes` minutes in a row below the threshold (the tokenledger detector's cooldown idea).
 * A window of all-equal values (sd 0, e.g. no spend at all) gives z = +∞ for any larger value.
 */

export interface ZScoreConfig {
  /** trailing window, in values (one per minute) */
  readonly windowMinutes: number;
  /** 1: the minute's spend; 5: the spend of the last 5 minutes */
  readonly valueMinutes: number;
  readonly threshold: number;
  /** optional absolute gate: value − mean ≥ this many USD per hour (scaled to the value's minutes); 0 = none */
  readonly minExcessUsdPerHour: number;
  readonly rearmQuietMinutes: number;
}

export interface ZSeries {
  /** z per minute, NaN until the window is full */
  readonly z: Float64Array;
  /** value − window mean, USD */
  readonly excessUsd: Float64Array;
}

/** z-scores of one team's per-minute spend (nano-USD). */
export function zScoreSeries(costNano: Float64Array, windowMinutes: number, valueMinutes: number): ZSeries {
  const n = costNano.length;
  const z = new Float64Array(n).fill(Number.NaN);
  const excessUsd = new Float64Array(n);
  const ring = new Float64Array(windowMinutes);
  let filled = 0;
  let head = 0;
  let sum = 0;
  let sumSq = 0;
  let value = 0;
  for (let m = 0; m < n; m++) {
    value += (costNano[m] ?? 0) / 1e9;
    if (m >= valueMinutes) value -= (costNano[m - valueMinutes] ?? 0) / 1e9;
    if (m < valueMinutes - 1) continue;
    if (filled === windowMinutes) {
      const mean = sum / windowMinutes;
      const sd = Math.sqrt(Math.max(0, sumSq / windowMinutes - mean * mean));
      // sd below float noise of the running sums counts as 0
      const eps = 1e-12 * Math.max(1, Math.abs(mean));
      excessUsd[m] = value - mean;
      z[m] = sd > eps ? (value - mean) / sd : value > mean + eps ? Infinity : 0;
    }
    const old = ring[head] ?? 0;
    ring[head] = value;
    head = (head + 1) % windowMinutes;
    if (filled < windowMinutes) {
      filled++;
      sum += value;
      sumSq += value * value;
    } else {
      sum += value - old;
      sumSq += value * value - old * old;
    }
    // running sums drift; recompute them exactly once per window
    if (head === 0 && filled === windowMinutes) {
      sum = 0;
      sumSq = 0;
      for (const v of ring) {
        sum += v;
        sumSq += v * v;
      }
    }
  }
  return { z, excessUsd };
}

/** Minutes (indexes) at which the detector alerts, given a team's z series. */
export function zScoreAlerts(series: ZSeries, config: ZScoreConfig): number[] {
  const out: number[] = [];
  const minExcess = (config.minExcessUsdPerHour * config.valueMinutes) / 60;
  let armed = true;
  let quiet = 0;
  const { z, excessUsd } = series;
  for (let m = 0; m < z.length; m++) {
    const zm = z[m] ?? Number.NaN;
    const hot = zm >= config.threshold && (excessUsd[m] ?? 0) >= minExcess;
    if (armed) {
      if (hot) {
        out.push(m);
        armed = false;
        quiet = 0;
      }
    } else {
      quiet = hot ? 0 : quiet + 1;
      if (quiet >= config.rearmQuietMinutes) armed = true;
    }
  }
  return out;
}
