/**
 * Labelled synthetic usage for `npm run bench:detect`: pure and deterministic from a seed (no I/O, no clock).
 *
 * Each team's spend per event-time minute is a compound Poisson sum: N ~ Poisson(λ) calls, each with a lognormal
 * cost, λ = spend rate / mean call cost. The rate is
 *   mean size × daily·weekly profile (team time zone) × slow noise × growth × level shifts   (the "usual" rate)
 *   + the extra rate of an injected spike, if one is running.
 * Level shifts (a team onboarding a service: a permanent step ×1.2–×1.6) are not incidents. Spikes are labelled
 * "qualifying" iff, at the first minute of their full strength, they are ≥ 3× the usual rate AND ≥ $50/h over it.
 */

export const MINUTE_MS = 60_000;
export const DAY_MINUTES = 1440;
export const WEEK_MINUTES = 7 * DAY_MINUTES;
/** Monday 2026-01-05 00:00 UTC: minute 0 of every generated data set */
export const DEFAULT_START_MS = Date.UTC(2026, 0, 5);
/** what makes a spike "qualifying" (the goal) */
export const QUALIFYING_MULTIPLE = 3;
export const QUALIFYING_EXTRA_USD_PER_HOUR = 50;
/** minimum quiet time between two spikes of one team */
export const SPIKE_GAP_MINUTES = 120;
/** the count of calls in a minute is drawn exactly below this λ, by moments above */
const EXACT_CALLS_BELOW = 50;
const NANO = 1e9;

export type SpikeShape = 'burst' | 'loop' | 'ramp';
export const SPIKE_SHAPES: readonly SpikeShape[] = ['burst', 'loop', 'ramp'];

export interface GeneratorOptions {
  readonly seed: number;
  readonly teams: number;
  /** scored weeks, after the warm-up */
  readonly weeks: number;
  /** unscored weeks at the start, while baselines learn */
  readonly warmupWeeks: number;
  readonly startMs?: number;
}

export interface LevelShift {
  readonly minute: number;
  readonly factor: number;
}

/** How a team's usage was drawn (the truth behind its series). */
export interface TeamProfile {
  readonly id: string;
  /** mean spend at minute 0 (before growth and level shifts), USD/h */
  readonly meanUsdPerHour: number;
  /** mean cost of one call, USD; call costs are lognormal with this mean */
  readonly meanCallUsd: number;
  /** σ of ln(call cost) */
  readonly callSigma: number;
  /** local time = UTC + this */
  readonly tzOffsetHours: number;
  /** night trough / business-hours peak of the daily profile */
  readonly troughRatio: number;
  /** Saturday and Sunday rate / weekday rate */
  readonly weekendFactor: number;
  /** compound growth per 30 days (0.4 = +40 %) */
  readonly growthPerMonth: number;
  /** σ of the log-rate noise's change over one hour (mean-reverting, 12 h time constant) */
  readonly noisePerHour: number;
  readonly levelShifts: readonly LevelShift[];
}

export interface SyntheticSpike {
  readonly id: number;
  /** index into `teams` */
  readonly team: number;
  readonly teamId: string;
  readonly shape: SpikeShape;
  readonly startMinute: number;
  /** first minute at full strength (after a ramp's rise) */
  readonly peakMinute: number;
  /** exclusive */
  readonly endMinute: number;
  /** the extra spend rate at full strength, USD/h */
  readonly extraUsdPerHour: number;
  /** the usual rate at peakMinute, USD/h */
  readonly usualUsdPerHour: number;
  /** (usual + extra) / usual at peakMinute */
  readonly multiple: number;
  readonly qualifying: boolean;
}

/** One team's minutes, index = minute since the start. */
export interface TeamSeries {
  /** spend, integer nano-USD */
  readonly cost: Float64Array;
  /** Σ over the minute's calls of cost², nano-USD² */
  readonly costSq: Float64Array;
  /** number of calls */
  readonly calls: Uint32Array;
  /** the most expensive single call of the minute, nano-USD (0 without calls) */
  readonly maxCall: Float64Array;
  /** the usual rate (no spike), USD/h */
  readonly usual: Float32Array;
}

export interface SyntheticUsage {
  readonly options: Required<GeneratorOptions>;
  readonly startMs: number;
  readonly minutes: number;
  /** first scored minute (after the warm-up) */
  readonly scoredFromMinute: number;
  readonly teams: readonly TeamProfile[];
  readonly series: readonly TeamSeries[];
  /** every spike, warm-up ones included, ordered by team then start */
  readonly spikes: readonly SyntheticSpike[];
}

// ---- seeded randomness --------------------------------------------------------------------------------------

/** sfc32 seeded through splitmix32: one independent stream per (seed, stream). */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spare = Number.NaN;

  constructor(seed: number, stream = 0) {
    let s = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(stream + 1, 0x85ebca77)) >>> 0;
    const next = (): number => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
      z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
      return (z ^ (z >>> 15)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
    for (let i = 0; i < 12; i++) this.next();
  }

  /** uniform in [0, 1) */
  next(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return (t >>> 0) / 4294967296;
  }

  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  logUniform(lo: number, hi: number): number {
    return Math.exp(this.uniform(Math.log(lo), Math.log(hi)));
  }

  /** integer in [lo, hi] */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** standard normal (Box–Muller, pairs) */
  normal(): number {
    if (!Number.isNaN(this.spare)) {
      const z = this.spare;
      this.spare = Number.NaN;
      return z;
    }
    const u = 1 - this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    const t = 2 * Math.PI * this.next();
    this.spare = r * Math.sin(t);
    return r * Math.cos(t);
  }

  exponential(mean: number): number {
    return -mean * Math.log(1 - this.next());
  }

  /** Poisson by multiplication of uniforms (small λ only) */
  poisson(lambda: number): number {
    const limit = Math.exp(-lambda);
    let k = 0;
    let p = this.next();
    while (p > limit) {
      k++;
      p *= this.next();
    }
    return k;
  }
}

// ---- the usual rate -----------------------------------------------------------------------------------------

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

/**
 * Rate multiplier by local minute of the week (Monday 00:00 = 0), mean 1: a smooth business-hours bump
 * (peak 15:00, trough 03:00) between `trough` and 1, times a weekend factor with half-hour-wide edges.
 */
export function weeklyProfile(troughRatio: number, weekendFactor: number): Float64Array {
  const out = new Float64Array(WEEK_MINUTES);
  let sum = 0;
  for (let x = 0; x < WEEK_MINUTES; x++) {
    const hour = (x % DAY_MINUTES) / 60;
    const bump = ((1 - Math.cos((2 * Math.PI * (hour - 3)) / 24)) / 2) ** 1.5;
    let weekend = 0;
    for (const k of [-1, 0, 1]) {
      const y = x + k * WEEK_MINUTES;
      weekend += sigmoid((y - 5 * DAY_MINUTES) / 30) - sigmoid((y - 7 * DAY_MINUTES) / 30);
    }
    const v = (troughRatio + (1 - troughRatio) * bump) * (1 - (1 - weekendFactor) * weekend);
    out[x] = v;
    sum += v;
  }
  const mean = sum / WEEK_MINUTES;
  for (let x = 0; x < WEEK_MINUTES; x++) out[x] = (out[x] ?? 0) / mean;
  return out;
}

function drawTeam(rng: Rng, index: number, minutes: number): TeamProfile {
  const weeks = minutes / WEEK_MINUTES;
  const levelShifts: LevelShift[] = [];
  if (rng.next() >= 0.3) {
    const n = rng.poisson(weeks / 3);
    for (let i = 0; i < n; i++)
      levelShifts.push({ minute: rng.int(DAY_MINUTES, minutes - 1), factor: rng.uniform(1.2, 1.6) });
    levelShifts.sort((a, b) => a.minute - b.minute);
  }
  return {
    id: `team-${String(index).padStart(3, '0')}`,
    meanUsdPerHour: rng.logUniform(0.5, 2000),
    meanCallUsd: rng.logUniform(0.001, 0.5),
    callSigma: rng.uniform(0.5, 1.2),
    tzOffsetHours: rng.int(-9, 10),
    troughRatio: rng.uniform(0.05, 0.6),
    weekendFactor: rng.uniform(0.2, 1),
    growthPerMonth: rng.uniform(0, 0.4),
    noisePerHour: rng.uniform(0.01, 0.05),
    levelShifts,
  };
}

/** The usual rate of every minute, USD/h. */
function usualRates(rng: Rng, t: TeamProfile, minutes: number): Float32Array {
  const profile = weeklyProfile(t.troughRatio, t.weekendFactor);
  const out = new Float32Array(minutes);
  const tau = 12 * 60;
  const a = Math.exp(-1 / tau);
  const step = t.noisePerHour / Math.sqrt(60);
  let noise = (rng.normal() * step) / Math.sqrt(1 - a * a);
  const growthPerMinute = Math.log(1 + t.growthPerMonth) / (30 * DAY_MINUTES);
  const tz = t.tzOffsetHours * 60;
  let level = 1;
  let nextShift = 0;
  for (let m = 0; m < minutes; m++) {
    while (nextShift < t.levelShifts.length && (t.levelShifts[nextShift]?.minute ?? Infinity) <= m) {
      level *= t.levelShifts[nextShift]?.factor ?? 1;
      nextShift++;
    }
    const local = (((m + tz) % WEEK_MINUTES) + WEEK_MINUTES) % WEEK_MINUTES;
    out[m] = t.meanUsdPerHour * (profile[local] ?? 1) * Math.exp(noise + growthPerMinute * m) * level;
    noise = a * noise + step * rng.normal();
  }
  return out;
}

/** Spikes of one team: about 1–2 a week, ≥ 2 h apart, the last one over 15 min before the end. */
function drawSpikes(
  rng: Rng,
  team: number,
  t: TeamProfile,
  usual: Float32Array,
  minutes: number,
  firstId: number,
): SyntheticSpike[] {
  const out: SyntheticSpike[] = [];
  const meanGap = WEEK_MINUTES / rng.uniform(1, 2);
  let at = Math.round(rng.exponential(meanGap));
  for (;;) {
    const u = rng.next();
    const shape: SpikeShape = u < 0.4 ? 'burst' : u < 0.7 ? 'loop' : 'ramp';
    let rise = 0;
    let duration: number;
    if (shape === 'burst') duration = rng.int(5, 30);
    else if (shape === 'loop') duration = Math.round(rng.logUniform(30, 360));
    else {
      rise = rng.int(20, 120);
      duration = rise + rng.int(10, 60);
    }
    if (at + duration + 15 >= minutes) break;
    const peakMinute = at + rise;
    const usualAtPeak = usual[peakMinute] ?? 0;
    const multiple = rng.logUniform(1.5, 30);
    const extra = (multiple - 1) * usualAtPeak;
    out.push({
      id: firstId + out.length,
      team,
      teamId: t.id,
      shape,
      startMinute: at,
      peakMinute,
      endMinute: at + duration,
      extraUsdPerHour: extra,
      usualUsdPerHour: usualAtPeak,
      multiple,
      qualifying: multiple >= QUALIFYING_MULTIPLE && extra >= QUALIFYING_EXTRA_USD_PER_HOUR,
    });
    at += duration + SPIKE_GAP_MINUTES + Math.round(rng.exponential(meanGap));
  }
  return out;
}

/** The extra rate (USD/h) a spike adds in minute m. */
export function spikeExtraAt(s: SyntheticSpike, m: number): number {
  if (m < s.startMinute || m >= s.endMinute) return 0;
  if (m >= s.peakMinute) return s.extraUsdPerHour;
  return (s.extraUsdPerHour * (m - s.startMinute + 0.5)) / (s.peakMinute - s.startMinute);
}

const ACKLAM_A = [
  -39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716,
  2.506628277459239,
];
const ACKLAM_B = [
  -54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572, 1,
];
const ACKLAM_C = [
  -0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968,
  2.938163982698783,
];
const ACKLAM_D = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416, 1];

/**
 * z with P(Z > z) = p (Acklam's rational approximation of the normal quantile, relative error < 1.2e-9), for
 * 0 < p < 1; accurate in the far tail, where the largest of many calls lives.
 */
export function normalUpperQuantile(p: number): number {
  const poly = (k: readonly number[], x: number): number => k.reduce((acc, v) => acc * x + v, 0);
  const lower = Math.min(p, 1 - p);
  let x: number;
  if (lower < 0.02425) {
    const q = Math.sqrt(-2 * Math.log(lower));
    x = poly(ACKLAM_C, q) / poly(ACKLAM_D, q);
  } else {
    const q = lower - 0.5;
    const r = q * q;
    x = (poly(ACKLAM_A, r) * q) / poly(ACKLAM_B, r);
  }
  // x is the lower-tail quantile of `lower` (negative)
  return p < 0.5 ? -x : x;
}

/** Draws each minute's calls: exactly for small λ, by matched moments (Fenton–Wilkinson) for large λ. */
function drawMinutes(
  rng: Rng,
  t: TeamProfile,
  usual: Float32Array,
  spikes: readonly SyntheticSpike[],
): Omit<TeamSeries, 'usual'> {
  const minutes = usual.length;
  const cost = new Float64Array(minutes);
  const costSq = new Float64Array(minutes);
  const calls = new Uint32Array(minutes);
  const maxCall = new Float64Array(minutes);
  const s2 = t.callSigma ** 2;
  const mu = Math.log(t.meanCallUsd) - s2 / 2;
  const c = t.meanCallUsd;
  // moments of one call's cost c and of c²: E[c^k] = c̄^k e^{(k²−k)σ²/2}
  const m1 = c;
  const v1 = c * c * (Math.exp(s2) - 1);
  const m2 = c * c * Math.exp(s2);
  const v2 = c ** 4 * (Math.exp(6 * s2) - Math.exp(2 * s2));
  const cov12 = c ** 3 * (Math.exp(3 * s2) - Math.exp(s2));
  let si = 0;
  for (let m = 0; m < minutes; m++) {
    while (si < spikes.length && (spikes[si]?.endMinute ?? Infinity) <= m) si++;
    const spike = spikes[si];
    const rate = (usual[m] ?? 0) + (spike === undefined ? 0 : spikeExtraAt(spike, m));
    const lambda = rate / 60 / c;
    let sum = 0;
    let sumSq = 0;
    let max = 0;
    let n: number;
    if (lambda < EXACT_CALLS_BELOW) {
      n = rng.poisson(lambda);
      for (let i = 0; i < n; i++) {
        const x = Math.exp(mu + t.callSigma * rng.normal());
        sum += x;
        sumSq += x * x;
        if (x > max) max = x;
      }
    } else {
      n = Math.max(0, Math.round(lambda + Math.sqrt(lambda) * rng.normal()));
      if (n > 0) {
        // S = Σc and Q = Σc² as a correlated lognormal pair with the exact means, variances and covariance
        const es = n * m1;
        const eq = n * m2;
        const ss2 = Math.log(1 + v1 / (n * m1 * m1));
        const sq2 = Math.log(1 + v2 / (n * m2 * m2));
        const ss = Math.sqrt(ss2);
        const sq = Math.sqrt(sq2);
        const rho = Math.min(1, Math.max(-1, Math.log(1 + (n * cov12) / (es * eq)) / (ss * sq)));
        const z1 = rng.normal();
        const z2 = rho * z1 + Math.sqrt(1 - rho * rho) * rng.normal();
        sum = Math.exp(Math.log(es) - ss2 / 2 + ss * z1);
        sumSq = Math.exp(Math.log(eq) - sq2 / 2 + sq * z2);
        // the largest of n calls: its uniform is V^(1/n); 1 − V^(1/n) = −expm1(ln V / n) keeps the tail exact
        const tail = Math.max(1e-300, -Math.expm1(Math.log(1 - rng.next()) / n));
        max = Math.min(sum, Math.exp(mu + t.callSigma * normalUpperQuantile(tail)));
      }
    }
    cost[m] = Math.round(sum * NANO);
    costSq[m] = sumSq * NANO * NANO;
    calls[m] = n;
    maxCall[m] = max * NANO;
  }
  return { cost, costSq, calls, maxCall };
}

/** Draws the whole data set. */
export function generateUsage(options: GeneratorOptions): SyntheticUsage {
  const opts: Required<GeneratorOptions> = { startMs: DEFAULT_START_MS, ...options };
  const minutes = (opts.weeks + opts.warmupWeeks) * WEEK_MINUTES;
  const teams: TeamProfile[] = [];
  const series: TeamSeries[] = [];
  const spikes: SyntheticSpike[] = [];
  for (let i = 0; i < opts.teams; i++) {
    const rng = new Rng(opts.seed, i);
    const team = drawTeam(rng, i, minutes);
    const usual = usualRates(rng, team, minutes);
    const own = drawSpikes(rng, i, team, usual, minutes, spikes.length);
    teams.push(team);
    series.push({ ...drawMinutes(rng, team, usual, own), usual });
    spikes.push(...own);
  }
  return {
    options: opts,
    startMs: opts.startMs,
    minutes,
    scoredFromMinute: opts.warmupWeeks * WEEK_MINUTES,
    teams,
    series,
    spikes,
  };
}
