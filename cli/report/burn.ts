/**
 * Budget burn-down, pure: the cumulative spend series of a period and the forecast at the recent pace. The
 * forecast follows the detector's (consumers/detect/budgets.ts): the pace is the spend of the trailing
 * min(elapsed, 24 h), a forecast needs min(10 % of the period, 24 h) of the period behind it, and all money
 * arithmetic is bigint.
 */
import { DEFAULT_BUDGET_SETTINGS } from '../../consumers/detect/budgets';
import type { BudgetPeriod } from '../../schemas/alert/types';
import type { BudgetForecast, BurnPoint } from './types';
import { HOUR_MS, MINUTE_MS } from './window';

/** The burn-down's step: 15 min for a day, an hour for a week, 3 h for a month (~100 to 250 points). */
export function burnBucket(period: BudgetPeriod): number {
  return period === 'day' ? 15 * MINUTE_MS : period === 'week' ? HOUR_MS : 3 * HOUR_MS;
}

/**
 * Cumulative spend from `periodStart`: a point at the start (0), then one at the end of each bucket up to
 * `asOf` (the last one at `asOf` itself). `sums` holds the spend of bucket i (i = 0 from periodStart).
 */
export function burnPoints(
  periodStart: number,
  asOf: number,
  bucketMs: number,
  sums: ReadonlyMap<number, bigint>,
): BurnPoint[] {
  const points: BurnPoint[] = [{ at: periodStart, cumulative: 0n }];
  let cumulative = 0n;
  for (let i = 0; periodStart + i * bucketMs < asOf; i++) {
    cumulative += sums.get(i) ?? 0n;
    points.push({ at: Math.min(periodStart + (i + 1) * bucketMs, asOf), cumulative });
  }
  return points;
}

/** How long a pace window the forecast uses at `asOf`, or undefined when it is too early for a forecast. */
export function paceWindow(periodStart: number, periodEnd: number, asOf: number): number | undefined {
  const s = DEFAULT_BUDGET_SETTINGS;
  const elapsed = asOf - periodStart;
  const needed = Math.min(
    (periodEnd - periodStart) * s.forecastMinElapsedFraction,
    s.forecastMinElapsedCapMs,
  );
  if (elapsed <= 0 || elapsed < needed) return undefined;
  return Math.min(elapsed, s.forecastTrailingMs);
}

export interface ForecastInput {
  readonly amount: bigint;
  readonly periodEnd: number;
  readonly asOf: number;
  /** spent from the period start to asOf */
  readonly spent: bigint;
  readonly paceWindowMs: number;
  /** spent in [asOf - paceWindowMs, asOf) */
  readonly paceSpent: bigint;
}

/** Linear projection at the recent pace; null without recent spend. */
export function forecast(f: ForecastInput): BudgetForecast | null {
  if (f.paceSpent <= 0n || f.paceWindowMs <= 0 || f.asOf >= f.periodEnd) return null;
  const window = BigInt(f.paceWindowMs);
  const projected = f.spent + (f.paceSpent * BigInt(f.periodEnd - f.asOf)) / window;
  let exhaustedAt: number | null = null;
  if (f.spent < f.amount) {
    const left = f.amount - f.spent;
    const at = f.asOf + Number((left * window + f.paceSpent - 1n) / f.paceSpent);
    if (at < f.periodEnd) exhaustedAt = at;
  }
  return { paceWindowMs: f.paceWindowMs, paceSpent: f.paceSpent, projected, exhaustedAt };
}
