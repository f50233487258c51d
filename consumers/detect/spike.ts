/**
 * The cost-spike detector: pure, event time only, one closed minute at a time.
 *
 * For every scope (a team, or a team and one model) it keeps
 * - a clean hourly history (5 weeks): the seasonal baseline. Hours inside a spike are stored as what the
 *   baseline expected, so a spike is never learned as normal;
 * - the last 60 closed minutes (spend, expectation, tokens, cost², who spent it): the detection windows;
 * - a noise model: spend in a window is a compound Poisson sum of call costs, so its variance is
 *   q·E[spend] with q = E[c²]/E[c] (the cost-weighted mean call cost, learned from cost² per minute), times an
 *   over-dispersion factor φ learned from standardised minute residuals outside spikes.
 *
 * The expected rate for an hour, by how much history the scope has (docs/decisions/0012-detector.md):
 *   ≥ 7 days   hour of week: median of the same hour ±1 in each of the last (up to) 4 weeks;
 *   ≥ 2 days   hour of day:  median of the same hour ±1 on each of the last 7 days;
 *   ≥ 1 hour   flat:         median of the complete hours so far (at most 48);
 *   less       none:         no spike alerts yet (budgets still apply).
 * The seasonal tiers are scaled by the recent level: clean spend over the last 24 h divided by what the profile
 * expected for those hours (growth, a new service onboarded), clamped to [0.2, 5].
 *
 * A window W (1, 3, 5, 15, 60 min) fires when, over its minutes, all three gates hold:
 *   relative  observed ≥ ratio × expected                  (warning 2×, critical 5×)
 *   absolute  (observed − expected) ≥ $X/h × max(W, 3)/60   (warning $25/h, critical $250/h)
 *   noise     observed − expected ≥ k σ_W, σ_W² = φ·q·expected_W (k = 5·(1 + 0.6/√W): 8σ at 1 min),
 *             and ≥ the largest single call seen lately + 3σ_W, and ≥ 4 q
 * The relative gate keeps big teams' normal swings quiet, the absolute gate keeps small teams from paging anyone,
 * the noise gate keeps sparse, lumpy spend (few expensive calls) from looking like a spike.
 */
import type { AlertSeverity, Contributor } from '../../schemas/alert/types';
import { HOUR_MS, MINUTE_MS } from './types';
import type { MinuteTotals, ScopeMinute, ScopeRef, SpikeDecision } from './types';

export interface SpikeLevel {
  /** observed ≥ ratio × expected */
  readonly ratio: number;
  /** observed − expected ≥ this many USD per hour, over the window (counted as at least 3 minutes) */
  readonly excessUsdPerHour: number;
}

export interface SpikeSettings {
  /** detection windows in minutes, each ≤ 60 */
  readonly windowsMinutes: readonly number[];
  readonly warning: SpikeLevel;
  readonly critical: SpikeLevel;
  /** the noise gate: excess ≥ sigmas × σ of the window (scaled up for short windows: 8σ at 1 min) */
  readonly sigmas: number;
  /**
   * ... and ≥ this many "typical expensive calls" (q, the cost-weighted mean call cost): a scope that spends
   * a few calls an hour is a Poisson process far from Gaussian, where one call above the mean is not a spike.
   */
  readonly minExcessCalls: number;
  /** minutes of data a scope needs before it can alert */
  readonly minHistoryMinutes: number;
  /** an episode ends after this many quiet minutes */
  readonly resolveAfterMinutes: number;
  /** "quiet": no window of ≤ 5 min at or above this ratio (and half the warning's absolute excess) */
  readonly resolveRatio: number;
  /**
   * after a spike resolves, no new episode for the scope for this long, and no window reaching back into the
   * episode or the cooldown fires afterwards
   */
  readonly cooldownMinutes: number;
  /** an episode longer than this is accepted as the scope's new level (resolved, then learned) */
  readonly maxEpisodeMinutes: number;
}

export const DEFAULT_SPIKE_SETTINGS: SpikeSettings = {
  windowsMinutes: [1, 3, 5, 15, 60],
  warning: { ratio: 2, excessUsdPerHour: 25 },
  critical: { ratio: 5, excessUsdPerHour: 250 },
  sigmas: 5,
  minExcessCalls: 4,
  minHistoryMinutes: 60,
  resolveAfterMinutes: 5,
  resolveRatio: 1.5,
  cooldownMinutes: 30,
  maxEpisodeMinutes: 12 * 60,
};

const NANO_PER_USD = 1e9;
const RING = 60;
const HISTORY_HOURS = 5 * 7 * 24;
const LEVEL_HOURS = 24;
const EMPTY_MAP: ReadonlyMap<string, number> = new Map();
/** per-minute decay of the largest single call: half-life 7 days */
const MAX_CALL_DECAY = 0.5 ** (1 / (7 * 1440));

export type BaselineTier = 'hour_of_week' | 'hour_of_day' | 'org_shape' | 'flat' | 'none';

/** The key of a scope in maps: team, or team and model. */
export function scopeKey(ref: Pick<ScopeRef, 'scope' | 'team_id' | 'model'>): string {
  return ref.scope === 'team' ? ref.team_id : `${ref.team_id}\u0000${ref.model ?? ''}`;
}

interface Episode {
  readonly start: number;
  readonly openedWith: AlertSeverity;
  severity: AlertSeverity;
  observed: number;
  expected: number;
  quiet: number;
}

interface WindowSums {
  readonly minutes: number;
  readonly start: number;
  readonly observed: number;
  readonly expected: number;
  readonly tokens: number;
  readonly sigma: number;
}

class ScopeState {
  readonly hourCost = new Float64Array(HISTORY_HOURS);
  /** hour index + 1 of the value in each slot; 0 = empty */
  readonly hourStamp = new Float64Array(HISTORY_HOURS);
  readonly minCost = new Float64Array(RING);
  readonly minExpected = new Float64Array(RING);
  readonly minTokens = new Float64Array(RING);
  /** minute index + 1 of each ring slot; 0 = empty */
  readonly minStamp = new Float64Array(RING);
  readonly minSpenders: ReadonlyMap<string, number>[] = Array.from({ length: RING }, () => EMPTY_MAP);
  firstMinute = Number.NaN;
  curHour = Number.NaN;
  curHourClean = 0;
  expectedHour = Number.NaN;
  /** expected nano-USD per minute for `expectedHour` */
  expectedPerMinute = 0;
  tier: BaselineTier = 'none';
  /** E[c²]/E[c], nano-USD: ewSq / ewCost (a ratio of averages; the average of per-minute ratios is biased low) */
  q = Number.NaN;
  ewSq = Number.NaN;
  ewCost = Number.NaN;
  /** the largest single call seen lately (decaying), nano-USD */
  maxCall = 0;
  /** over-dispersion: EWMA of squared standardised minute residuals, ≥ 1 */
  phi = 1;
  tokensPerNano = Number.NaN;
  episode: Episode | null = null;
  cooldownUntil = -Infinity;
  /** after an episode was accepted as the new level: learn actual spend, not the expectation */
  relearnUntil = -Infinity;
  lastActive = Number.NaN;

  constructor(public ref: ScopeRef) {}

  hourValue(h: number): number | undefined {
    const i = h % HISTORY_HOURS;
    return this.hourStamp[i] === h + 1 ? this.hourCost[i] : undefined;
  }
}

function median(values: number[]): number {
  values.sort((a, b) => a - b);
  const n = values.length;
  const mid = n >> 1;
  return n % 2 === 1 ? (values[mid] ?? 0) : ((values[mid - 1] ?? 0) + (values[mid] ?? 0)) / 2;
}

export class SpikeDetector {
  readonly settings: SpikeSettings;
  private readonly scopes = new Map<string, ScopeState>();
  /** every team of this detector summed: its daily and weekly shape is the fallback for new teams */
  private readonly org = new ScopeState({ scope: 'team', team_id: '', model: null, org_id: null });
  private lastMinute = Number.NaN;

  constructor(settings: Partial<SpikeSettings> = {}) {
    this.settings = { ...DEFAULT_SPIKE_SETTINGS, ...settings };
    for (const w of this.settings.windowsMinutes) {
      if (!Number.isInteger(w) || w < 1 || w > RING) {
        throw new RangeError(`spike window ${w} min: must be a whole number of minutes from 1 to ${RING}`);
      }
    }
  }

  /** Number of scopes with state. */
  get size(): number {
    return this.scopes.size;
  }

  /** The baseline tier a scope is on (for logs and tests). */
  tierOf(ref: Pick<ScopeRef, 'scope' | 'team_id' | 'model'>): BaselineTier {
    return this.scopes.get(scopeKey(ref))?.tier ?? 'none';
  }

  /**
   * Warm-up from the hour rollup: one complete past hour of a scope. `requests` gives the noise model a prior
   * (q ≈ 2 × the mean call cost) until live minutes refine it.
   */
  warmHour(ref: ScopeRef, hourStart: number, cost: number, tokens: number, requests: number): void {
    const s = this.stateOf(ref);
    const h = Math.floor(hourStart / HOUR_MS);
    const m = h * 60;
    if (!(s.firstMinute <= m)) s.firstMinute = m;
    // the rollup holds past spikes too: with enough history, an hour far above its seasonal expectation is
    // learned as the warning ratio times that expectation, as it would have been live (call in hour order)
    const tier = tierFor(s, h);
    let learned = cost;
    if (tier === 'hour_of_week' || tier === 'hour_of_day') {
      const p = this.profile(s, h, tier);
      if (p > 0) learned = Math.min(cost, this.settings.warning.ratio * p);
    }
    const i = h % HISTORY_HOURS;
    s.hourCost[i] = learned;
    s.hourStamp[i] = h + 1;
    if (Number.isNaN(s.q) && requests > 0 && cost > 0) s.q = (2 * cost) / requests;
    if (cost > 0 && tokens > 0) s.tokensPerNano = ewma(s.tokensPerNano, tokens / cost, 0.05);
    if (!(s.lastActive >= m)) s.lastActive = m;
    s.expectedHour = Number.NaN;
  }

  /**
   * Closes one event-time minute (start ms). `observed` holds the scopes that spent in it; every other known
   * scope spent nothing. Minutes must come in increasing order; a skipped minute is closed as empty first.
   */
  closeMinute(minuteStart: number, observed: ReadonlyMap<string, ScopeMinute>): SpikeDecision[] {
    const m = Math.floor(minuteStart / MINUTE_MS);
    if (m <= this.lastMinute) {
      throw new RangeError(`minute ${new Date(minuteStart).toISOString()} is not after the last closed one`);
    }
    const out: SpikeDecision[] = [];
    if (!Number.isNaN(this.lastMinute)) {
      // idle minutes between two closes: every scope spent nothing (bounded: at most an hour is replayed)
      for (let gap = Math.max(this.lastMinute + 1, m - RING); gap < m; gap++) this.step(gap, EMPTY, out);
    }
    for (const [key, sm] of observed) {
      const s = this.scopes.get(key);
      if (s === undefined) this.scopes.set(key, new ScopeState(sm.ref));
      // a scope warmed from the rollup does not know its organisation; the first live minute tells
      else if (s.ref.org_id === null && sm.ref.org_id !== null) s.ref = sm.ref;
    }
    this.step(m, observed, out);
    this.lastMinute = m;
    if (m % 60 === 0) this.prune(m);
    return out;
  }

  /** Scopes with an open episode (for the detector's restart bookkeeping). */
  openEpisodes(): { ref: ScopeRef; start: number; severity: AlertSeverity; openedWith: AlertSeverity }[] {
    const out: { ref: ScopeRef; start: number; severity: AlertSeverity; openedWith: AlertSeverity }[] = [];
    for (const s of this.scopes.values()) {
      if (s.episode !== null) {
        out.push({
          ref: s.ref,
          start: s.episode.start * MINUTE_MS,
          severity: s.episode.severity,
          openedWith: s.episode.openedWith,
        });
      }
    }
    return out;
  }

  /**
   * Resumes an episode an earlier run opened (its alert is in ClickHouse): no second alert for it, and a
   * spike_resolved when it ends.
   */
  adoptEpisode(ref: ScopeRef, start: number, openedWith: AlertSeverity, severity = openedWith): void {
    const s = this.stateOf(ref);
    const startMinute = Math.floor(start / MINUTE_MS);
    if (s.episode !== null && s.episode.start === startMinute) return;
    s.episode = { start: startMinute, openedWith, severity, observed: 0, expected: 0, quiet: 0 };
  }

  private stateOf(ref: ScopeRef): ScopeState {
    const key = scopeKey(ref);
    let s = this.scopes.get(key);
    if (s === undefined) {
      s = new ScopeState(ref);
      this.scopes.set(key, s);
    }
    return s;
  }

  private step(m: number, observed: ReadonlyMap<string, ScopeMinute>, out: SpikeDecision[]): void {
    // team scopes first: a team_model episode is not opened while its team has one (the team alert names it)
    const busyTeams = new Set<string>();
    let orgCost = 0;
    for (const sm of observed.values()) if (sm.ref.scope === 'team') orgCost += sm.totals.cost_nanousd;
    if (orgCost > 0 && Number.isNaN(this.org.firstMinute)) this.org.firstMinute = m;
    if (!Number.isNaN(this.org.firstMinute)) {
      this.rollHour(this.org, Math.floor(m / 60));
      this.org.curHourClean += orgCost;
    }
    for (const pass of ['team', 'team_model'] as const) {
      for (const [key, s] of this.scopes) {
        if (s.ref.scope !== pass) continue;
        const t = observed.get(key)?.totals;
        if (Number.isNaN(s.firstMinute)) {
          if (t === undefined || t.cost_nanousd <= 0) continue;
          s.firstMinute = m;
        }
        const suppressed = pass === 'team_model' && busyTeams.has(s.ref.team_id);
        this.stepScope(s, m, t, suppressed, out);
        if (pass === 'team' && s.episode !== null) busyTeams.add(s.ref.team_id);
      }
    }
  }

  private stepScope(
    s: ScopeState,
    m: number,
    t: MinuteTotals | undefined,
    suppressed: boolean,
    out: SpikeDecision[],
  ): void {
    const h = Math.floor(m / 60);
    this.rollHour(s, h);
    if (h !== s.expectedHour) this.refreshExpected(s, h);
    const cost = t?.cost_nanousd ?? 0;
    const expected = s.expectedPerMinute;
    if (cost > 0 || !Number.isNaN(s.ewCost)) {
      s.ewSq = ewma(s.ewSq, t?.cost_sq ?? 0, 0.005);
      s.ewCost = ewma(s.ewCost, cost, 0.005);
      if (s.ewCost > 0 && s.ewSq > 0) s.q = s.ewSq / s.ewCost;
    }
    s.maxCall = Math.max(s.maxCall * MAX_CALL_DECAY, t?.max_call_nanousd ?? 0);
    if (cost > 0) {
      s.lastActive = m;
      if ((t?.tokens ?? 0) > 0) s.tokensPerNano = ewma(s.tokensPerNano, (t?.tokens ?? 0) / cost, 0.02);
    }
    const r = m % RING;
    s.minCost[r] = cost;
    s.minExpected[r] = expected;
    s.minTokens[r] = t?.tokens ?? 0;
    // a minute without a baseline cannot be part of a window: its expectation is unknown, not zero
    s.minStamp[r] = s.tier === 'none' ? 0 : m + 1;
    s.minSpenders[r] = t?.byUserModel ?? EMPTY_MAP;

    if (s.tier === 'none' || !(s.q > 0)) {
      s.curHourClean += cost;
      return;
    }
    const sums = this.windowSums(s, m);
    if (m - s.firstMinute >= this.settings.minHistoryMinutes) this.detect(s, m, sums, cost, suppressed, out);
    // learn from this minute only if it is not part of a spike (decided just above)
    const learning = s.episode === null || m < s.relearnUntil;
    // inside an episode the hour learns at most the warning ratio times the expectation: a spike barely moves
    // the baseline, while a baseline that was simply too low still catches up. A young scope (no seasonal
    // baseline of its own yet) learns what it sees: it cannot tell its first business peak from a spike.
    const seasonal = s.tier === 'hour_of_week' || s.tier === 'hour_of_day';
    s.curHourClean += learning || !seasonal ? cost : Math.min(cost, this.settings.warning.ratio * expected);
    if (!learning) return;
    if (expected > 0) {
      // over-dispersion; capped at 3σ per minute so a baseline that is off for a while (not noise) cannot
      // make the noise gate deaf
      const z2 = (cost - expected) ** 2 / (s.q * expected);
      s.phi = Math.max(1, ewma(s.phi, Math.min(z2, 9), 0.02));
    }
  }

  private detect(
    s: ScopeState,
    m: number,
    sums: readonly WindowSums[],
    cost: number,
    suppressed: boolean,
    out: SpikeDecision[],
  ): void {
    const expected = s.expectedPerMinute;
    if (s.episode === null) {
      if (suppressed || m < s.cooldownUntil) return;
      const fired = this.firing(s, sums, 'critical') ?? this.firing(s, sums, 'warning');
      if (fired === undefined) return;
      const severity: AlertSeverity = this.passes(s, fired, this.settings.critical) ? 'critical' : 'warning';
      s.episode = {
        start: m - fired.minutes + 1,
        openedWith: severity,
        severity,
        observed: fired.observed,
        expected: fired.expected,
        quiet: 0,
      };
      out.push(this.decision(s, 'cost_spike', severity, fired, m));
      return;
    }
    const ep = s.episode;
    ep.observed += cost;
    ep.expected += expected;
    if (ep.severity === 'warning') {
      const crit = this.firing(s, sums, 'critical');
      if (crit !== undefined) {
        ep.severity = 'critical';
        out.push(this.decision(s, 'cost_spike', 'critical', crit, m));
      }
    }
    // still hot: a short window clearly above the expectation (ratio, half the warning's excess rate, and
    // beyond 3σ of noise: one lumpy minute of a noisy team must not keep a finished spike open)
    const hot = sums.some(
      (w) =>
        w.minutes <= 5 &&
        w.observed >= this.settings.resolveRatio * w.expected &&
        w.observed - w.expected >=
          Math.max((this.settings.warning.excessUsdPerHour * NANO_PER_USD * w.minutes) / 120, 3 * w.sigma),
    );
    ep.quiet = hot ? 0 : ep.quiet + 1;
    const tooLong = m - ep.start + 1 >= this.settings.maxEpisodeMinutes;
    if (ep.quiet >= this.settings.resolveAfterMinutes || tooLong) {
      const windowStart = ep.start * MINUTE_MS;
      const windowEnd = (m + 1) * MINUTE_MS;
      out.push({
        kind: 'spike_resolved',
        severity: 'info',
        ref: s.ref,
        episodeStart: windowStart,
        windowStart,
        windowEnd,
        observedCost: Math.round(ep.observed),
        expectedCost: Math.round(ep.expected),
        observedTokens: 0,
        expectedTokens: 0,
        score: ep.observed / Math.max(ep.expected, 1),
        rule: tooLong
          ? `episode longer than ${this.settings.maxEpisodeMinutes} min: accepted as the new level`
          : `${this.settings.resolveAfterMinutes} min with no window of ≤ 5 min at ${this.settings.resolveRatio}× expected`,
        contributors: [],
        episodeSeverity: ep.openedWith,
      });
      s.episode = null;
      s.cooldownUntil = m + 1 + this.settings.cooldownMinutes;
      if (s.ref.scope === 'team') {
        // the team's models share its cooldown: their windows hold the spike the team alert already named
        for (const other of this.scopes.values()) {
          if (other.ref.scope === 'team_model' && other.ref.team_id === s.ref.team_id) {
            other.cooldownUntil = Math.max(other.cooldownUntil, s.cooldownUntil);
          }
        }
      }
      if (tooLong) s.relearnUntil = m + 1 + LEVEL_HOURS * 60;
    }
  }

  /** Entering hour h: the finished hour goes into the history. */
  private rollHour(s: ScopeState, h: number): void {
    if (h === s.curHour) return;
    if (!Number.isNaN(s.curHour) && s.curHour * 60 >= s.firstMinute) {
      const i = s.curHour % HISTORY_HOURS;
      s.hourCost[i] = s.curHourClean;
      s.hourStamp[i] = s.curHour + 1;
    }
    s.curHour = h;
    s.curHourClean = 0;
  }

  private windowSums(s: ScopeState, m: number): WindowSums[] {
    const out: WindowSums[] = [];
    let observed = 0;
    let expected = 0;
    let tokens = 0;
    let covered = 0;
    const windows = this.settings.windowsMinutes;
    const longest = Math.max(...windows);
    const phiQ = Math.max(s.phi, 1) * s.q;
    for (let k = 0; k < longest; k++) {
      const mm = m - k;
      const r = ((mm % RING) + RING) % RING;
      if (s.minStamp[r] === mm + 1) {
        observed += s.minCost[r] ?? 0;
        expected += s.minExpected[r] ?? 0;
        tokens += s.minTokens[r] ?? 0;
        covered++;
      }
      if (windows.includes(k + 1) && covered === k + 1) {
        const sigma = Math.sqrt(phiQ * Math.max(expected, 0));
        out.push({ minutes: k + 1, start: mm * MINUTE_MS, observed, expected, tokens, sigma });
      }
    }
    return out;
  }

  private passes(s: ScopeState, w: WindowSums, level: SpikeLevel): boolean {
    const excess = w.observed - w.expected;
    // short windows hold fewer calls and are further from Gaussian: a stricter noise gate (8σ at 1 min)
    const k = this.settings.sigmas * (1 + 0.6 / Math.sqrt(w.minutes));
    return (
      w.observed >= level.ratio * w.expected &&
      excess >= (level.excessUsdPerHour * NANO_PER_USD * Math.max(w.minutes, 3)) / 60 &&
      excess >= k * w.sigma &&
      // the heaviest call lately explains that much of an excess; the rest must still stand out
      excess >= s.maxCall + 3 * w.sigma &&
      excess >= this.settings.minExcessCalls * s.q
    );
  }

  /** The longest window that passes the level's gates (the most complete picture of the spike). */
  private firing(
    s: ScopeState,
    sums: readonly WindowSums[],
    level: 'warning' | 'critical',
  ): WindowSums | undefined {
    let best: WindowSums | undefined;
    for (const w of sums) {
      // a window reaching back into the last episode or its cooldown would alert on spend already dealt with
      if (w.start < s.cooldownUntil * MINUTE_MS) continue;
      if (this.passes(s, w, this.settings[level]) && (best?.minutes ?? 0) < w.minutes) best = w;
    }
    return best;
  }

  private decision(
    s: ScopeState,
    kind: 'cost_spike',
    severity: AlertSeverity,
    w: WindowSums,
    m: number,
  ): SpikeDecision {
    const level = this.settings[severity === 'critical' ? 'critical' : 'warning'];
    const tpn = Number.isFinite(s.tokensPerNano) ? s.tokensPerNano : 0;
    return {
      kind,
      severity,
      ref: s.ref,
      episodeStart: (s.episode?.start ?? m) * MINUTE_MS,
      windowStart: w.start,
      windowEnd: (m + 1) * MINUTE_MS,
      observedCost: Math.round(w.observed),
      expectedCost: Math.round(w.expected),
      observedTokens: Math.round(w.tokens),
      expectedTokens: Math.round(w.expected * tpn),
      score: w.observed / Math.max(w.expected, 1),
      rule:
        `window ${w.minutes} min (${s.tier} baseline): observed ≥ ${level.ratio}× expected, ` +
        `≥ $${level.excessUsdPerHour}/h over expected, ≥ ${this.settings.sigmas}σ`,
      contributors: contributors(s, m, w.minutes, w.observed),
      episodeSeverity: s.episode?.openedWith ?? severity,
    };
  }

  private refreshExpected(s: ScopeState, h: number): void {
    s.expectedHour = h;
    let tier = tierFor(s, h);
    if (tier === 'none') {
      s.tier = tier;
      s.expectedPerMinute = 0;
      return;
    }
    // a young scope borrows the daily/weekly shape of all teams, scaled to its own spend so far
    const orgTier = tierFor(this.org, h);
    const borrow = tier === 'flat' && (orgTier === 'hour_of_week' || orgTier === 'hour_of_day');
    const shapeOf = borrow ? this.org : s;
    const shapeTier = borrow ? orgTier : tier;
    if (borrow) tier = 'org_shape';
    // a young scope needs one complete hour of its own (the org's shape is scaled to it)
    if ((tier === 'flat' || tier === 'org_shape') && !this.hasHistory(s, h)) tier = 'none';
    s.tier = tier;
    if (tier === 'none') {
      s.expectedPerMinute = 0;
      return;
    }
    const hourly = this.profile(shapeOf, h, shapeTier);
    let level = 1;
    if (borrow) {
      let actual = 0;
      let profiled = 0;
      for (let j = 1; j <= 48; j++) {
        const v = s.hourValue(h - j);
        if (v === undefined) continue;
        actual += v;
        profiled += this.profile(shapeOf, h - j, shapeTier);
      }
      if (profiled > 0) level = actual / profiled;
    } else if (tier !== 'flat') {
      // the median of the last day's hourly ratios: one past spike cannot drag the level (a ratio of sums can)
      const ratios: number[] = [];
      for (let j = 1; j <= LEVEL_HOURS; j++) {
        const v = s.hourValue(h - j);
        const p = v === undefined ? 0 : this.profile(s, h - j, tier);
        if (v !== undefined && p > 0) ratios.push(v / p);
      }
      if (ratios.length >= 6) level = Math.min(5, Math.max(0.2, median(ratios)));
    }
    s.expectedPerMinute = (hourly * level) / 60;
  }

  /** Whether a complete past hour (of the last 48) is known: a flat baseline needs one. */
  private hasHistory(s: ScopeState, h: number): boolean {
    for (let j = 1; j <= 48; j++) if (s.hourValue(h - j) !== undefined) return true;
    return false;
  }

  /**
   * Ends a warm-up from the hour rollup: hours in which a scope spent nothing have no rollup rows, but they are
   * hours of zero spend, not unknown ones (live operation stores them as 0); and the organisation's shape (the
   * fallback for new teams) is the sum of the teams' hours. `untilHourStart`: the first hour not warmed.
   */
  finishWarm(untilHourStart: number): void {
    const until = Math.floor(untilHourStart / HOUR_MS);
    const org = new Map<number, number>();
    for (const s of this.scopes.values()) {
      if (Number.isNaN(s.firstMinute)) continue;
      // a scope's first rollup hour is usually partial (it started mid-hour): live operation never learns a
      // partial first hour either, so it is forgotten rather than taken for a quiet hour
      const first = Math.floor(s.firstMinute / 60);
      if (s.hourValue(first) !== undefined) s.hourStamp[first % HISTORY_HOURS] = 0;
      s.firstMinute = (first + 1) * 60;
      for (let h = Math.max(Math.floor(s.firstMinute / 60), until - HISTORY_HOURS + 1); h < until; h++) {
        const i = h % HISTORY_HOURS;
        if (s.hourStamp[i] !== h + 1) {
          s.hourCost[i] = 0;
          s.hourStamp[i] = h + 1;
        }
        if (s.ref.scope === 'team') org.set(h, (org.get(h) ?? 0) + (s.hourCost[i] ?? 0));
      }
      s.expectedHour = Number.NaN;
    }
    for (const [h, cost] of org) {
      const i = h % HISTORY_HOURS;
      this.org.hourCost[i] = cost;
      this.org.hourStamp[i] = h + 1;
      if (!(this.org.firstMinute <= h * 60)) this.org.firstMinute = h * 60;
    }
  }

  /** The seasonal expectation for hour h (nano-USD per hour), before the level correction. */
  private profile(s: ScopeState, h: number, tier: BaselineTier): number {
    const samples: number[] = [];
    const add = (hh: number): void => {
      const v = s.hourValue(hh);
      if (v !== undefined) samples.push(v);
    };
    if (tier === 'hour_of_week') {
      for (let k = 1; k <= 4; k++) for (let d = -1; d <= 1; d++) add(h - 168 * k + d);
    } else if (tier === 'hour_of_day') {
      for (let k = 1; k <= 7; k++) for (let d = -1; d <= 1; d++) add(h - 24 * k + d);
    } else {
      for (let j = 1; j <= 48; j++) add(h - j);
    }
    return samples.length === 0 ? 0 : median(samples);
  }

  /** Forgets scopes that have spent nothing for 5 weeks (their baseline would be empty anyway). */
  private prune(m: number): void {
    for (const [key, s] of this.scopes) {
      if (s.episode === null && m - s.lastActive > HISTORY_HOURS * 60) this.scopes.delete(key);
    }
  }
}

const EMPTY: ReadonlyMap<string, ScopeMinute> = new Map();

function tierFor(s: ScopeState, h: number): BaselineTier {
  if (Number.isNaN(s.firstMinute)) return 'none';
  const hours = h - Math.floor(s.firstMinute / 60);
  if (hours >= 7 * 24) return 'hour_of_week';
  if (hours >= 2 * 24) return 'hour_of_day';
  if (hours >= 1) return 'flat';
  return 'none';
}

function ewma(prev: number, x: number, alpha: number): number {
  return Number.isNaN(prev) ? x : prev + alpha * (x - prev);
}

/** The top users and models behind a window's spend, largest first (at most 3 of each). */
function contributors(s: ScopeState, m: number, minutes: number, observed: number): Contributor[] {
  const byUser = new Map<string, number>();
  const byModel = new Map<string, number>();
  for (let k = 0; k < minutes; k++) {
    const r = (((m - k) % RING) + RING) % RING;
    if (s.minStamp[r] !== m - k + 1) continue;
    for (const [key, cost] of s.minSpenders[r] ?? EMPTY_MAP) {
      const cut = key.indexOf('\u0000');
      const user = cut < 0 ? key : key.slice(0, cut);
      const model = cut < 0 ? '' : key.slice(cut + 1);
      if (user !== '') byUser.set(user, (byUser.get(user) ?? 0) + cost);
      if (model !== '') byModel.set(model, (byModel.get(model) ?? 0) + cost);
    }
  }
  const top = (map: Map<string, number>, dimension: 'user' | 'model'): Contributor[] =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 3)
      .map(([value, cost]) => ({
        dimension,
        value,
        cost_nanousd: BigInt(Math.round(cost)),
        share: observed > 0 ? cost / observed : 0,
      }));
  return [...top(byUser, 'user'), ...top(byModel, 'model')];
}
