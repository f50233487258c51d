/**
 * The budget ledger: pure, event time only, no I/O. The detector feeds it every usage event (`add`, which
 * returns the threshold alerts that event triggered) and calls `evaluate` once per closed minute (burn-rate and
 * forecast alerts). Warm-up after a restart: `setBudgets`, `markFired` (alert ids already recorded), `seed`
 * (spend to date per partition from ClickHouse). docs/budgets.md explains the rules and the defaults.
 *
 * Money and token totals are bigint (a $10M monthly budget is 1e16 nano-USD). The per-minute history used by
 * the burn-rate and forecast windows is kept as float64 per minute: those decide ratios, not sums anyone is
 * billed for, and stay exact far beyond any one minute's spend.
 *
 * Spend is kept per (budget, period, partition) so that a revoked partition's share can be dropped
 * (`dropPartition`); every alert uses the sum over the partitions this process owns.
 */
import { TokenledgerError } from '../../lib/errors';
import type { Alert, AlertKind, AlertSeverity, BudgetPeriod, BudgetUnit } from '../../schemas/alert/types';
import { alertId, formatDuration, formatUsd } from './alerts';
import {
  assertTimeZone,
  localDateString,
  localTimeString,
  periodAdjective,
  periodBounds,
  periodLabel,
} from './periods';
import { HOUR_MS, MINUTE_MS } from './types';

export const BUDGET_SCOPES = ['team', 'project', 'user'] as const;
export type BudgetScope = (typeof BUDGET_SCOPES)[number];

export interface Budget {
  budget_id: string;
  scope: BudgetScope;
  scope_id: string;
  period: BudgetPeriod;
  /** IANA zone the calendar period follows */
  time_zone: string;
  unit: BudgetUnit;
  /** per period: nano-USD (unit usd) or tokens (unit tokens, input + output) */
  amount: bigint;
  /** percent of amount, ascending */
  thresholds: number[];
  description: string;
}

export interface BudgetEvent {
  event_id: string;
  /** ms since the epoch (UTC) */
  occurred_at: number;
  org_id: string | null;
  team_id: string;
  project_id: string | null;
  user_id: string | null;
  cost_nanousd: bigint;
  /** input_tokens + output_tokens (input includes cache reads and writes, output includes reasoning) */
  tokens: bigint;
}

/** One tier of the multiwindow, multi-burn-rate alert (Google SRE workbook, "Alerting on SLOs"). */
export interface BurnRateTier {
  /** part of the alert id and the rule: "fast", "slow" */
  readonly name: string;
  /** the long window as a fraction of the period (the workbook's 1 h of 30 days = 1/720) */
  readonly longWindowFraction: number;
  /** the short window is the long one divided by this (the workbook: 12) */
  readonly shortWindowDivisor: number;
  /** both windows must burn at least this many times the sustainable rate */
  readonly factor: number;
  readonly severity: AlertSeverity;
}

export interface BudgetSettings {
  readonly burnTiers: readonly BurnRateTier[];
  /** windows are whole minutes; the long one at least this long */
  readonly minLongWindowMinutes: number;
  /** the short one at least this long */
  readonly minShortWindowMinutes: number;
  /** a forecast needs min(period × this, forecastMinElapsedCapMs) of the period behind it */
  readonly forecastMinElapsedFraction: number;
  readonly forecastMinElapsedCapMs: number;
  /** the pace is measured over the trailing min(elapsed, this) */
  readonly forecastTrailingMs: number;
}

export const DEFAULT_BUDGET_SETTINGS: BudgetSettings = {
  burnTiers: [
    // 1 h of a 30-day period at 14.4×: 2 % of the budget gone in that hour.
    { name: 'fast', longWindowFraction: 1 / 720, shortWindowDivisor: 12, factor: 14.4, severity: 'critical' },
    // 6 h of a 30-day period at 6×: 5 % of the budget gone in those six hours.
    { name: 'slow', longWindowFraction: 1 / 120, shortWindowDivisor: 12, factor: 6, severity: 'warning' },
  ],
  minLongWindowMinutes: 5,
  minShortWindowMinutes: 1,
  forecastMinElapsedFraction: 0.1,
  forecastMinElapsedCapMs: 24 * HOUR_MS,
  forecastTrailingMs: 24 * HOUR_MS,
};

/** The longest each period can be (a month of 31 days plus a DST hour): sizes the minute history. */
const LONGEST_PERIOD_MS: Readonly<Record<BudgetPeriod, number>> = {
  day: 25 * HOUR_MS,
  week: 169 * HOUR_MS,
  month: 745 * HOUR_MS,
};

/** Alert ids are remembered this long (event time) after they fire: past the previous period of any budget. */
const FIRED_RETENTION_MS = 64 * 24 * HOUR_MS;

/** A tier's windows for a period of `periodMs`, whole minutes (ms). */
export function burnWindows(
  tier: BurnRateTier,
  periodMs: number,
  settings: Pick<BudgetSettings, 'minLongWindowMinutes' | 'minShortWindowMinutes'> = DEFAULT_BUDGET_SETTINGS,
): { longMs: number; shortMs: number } {
  const longMin = Math.max(
    settings.minLongWindowMinutes,
    Math.round((periodMs * tier.longWindowFraction) / MINUTE_MS),
  );
  const shortMin = Math.max(settings.minShortWindowMinutes, Math.round(longMin / tier.shortWindowDivisor));
  return { longMs: longMin * MINUTE_MS, shortMs: Math.min(shortMin, longMin) * MINUTE_MS };
}

function settingsProblems(s: BudgetSettings): string[] {
  const problems: string[] = [];
  const names = new Set<string>();
  s.burnTiers.forEach((t, i) => {
    const at = `burnTiers[${i}]`;
    if (!/^[a-z0-9_-]+$/.test(t.name) || names.has(t.name)) {
      problems.push(`${at}.name: must be a unique lower-case word, got ${JSON.stringify(t.name)}`);
    }
    names.add(t.name);
    if (!(t.longWindowFraction > 0 && t.longWindowFraction <= 1)) {
      problems.push(`${at}.longWindowFraction: must be in (0, 1], got ${t.longWindowFraction}`);
    }
    if (!(t.shortWindowDivisor >= 1)) {
      problems.push(`${at}.shortWindowDivisor: must be at least 1, got ${t.shortWindowDivisor}`);
    }
    if (!(t.factor > 0 && Number.isFinite(t.factor))) {
      problems.push(`${at}.factor: must be a positive number, got ${t.factor}`);
    }
  });
  const wholeMinutes = (name: string, v: number): void => {
    if (!Number.isInteger(v) || v < 1) problems.push(`${name}: must be a whole number ≥ 1, got ${v}`);
  };
  wholeMinutes('minLongWindowMinutes', s.minLongWindowMinutes);
  wholeMinutes('minShortWindowMinutes', s.minShortWindowMinutes);
  if (!(s.forecastMinElapsedFraction > 0 && s.forecastMinElapsedFraction <= 1)) {
    problems.push(`forecastMinElapsedFraction: must be in (0, 1], got ${s.forecastMinElapsedFraction}`);
  }
  for (const k of ['forecastMinElapsedCapMs', 'forecastTrailingMs'] as const) {
    if (!Number.isInteger(s[k] / MINUTE_MS) || s[k] <= 0) {
      problems.push(`${k}: must be a positive whole number of minutes in ms, got ${s[k]}`);
    }
  }
  return problems;
}

/** Checks a budget the ledger is given; throws CONFIG_INVALID naming the budget, field and value. */
function checkBudget(b: Budget): Budget {
  const problems: string[] = [];
  if (!BUDGET_SCOPES.includes(b.scope)) problems.push(`scope ${JSON.stringify(b.scope)}`);
  if (b.scope_id === '') problems.push('scope_id ""');
  if (b.amount <= 0n) problems.push(`amount ${b.amount} (must be positive)`);
  if (!b.thresholds.every((t) => Number.isInteger(t) && t >= 1 && t <= 1000)) {
    problems.push(`thresholds ${JSON.stringify(b.thresholds)} (whole percents from 1 to 1000)`);
  }
  if (problems.length > 0) {
    throw new TokenledgerError('CONFIG_INVALID', `budget ${b.budget_id}: invalid ${problems.join(', ')}`, {
      context: { budget_id: b.budget_id },
    });
  }
  let time_zone: string;
  try {
    time_zone = assertTimeZone(b.time_zone);
  } catch (err) {
    throw new TokenledgerError('CONFIG_INVALID', `budget ${b.budget_id}: ${(err as Error).message}`, {
      cause: err,
      context: { budget_id: b.budget_id },
    });
  }
  return { ...b, time_zone, thresholds: [...new Set(b.thresholds)].sort((x, y) => x - y) };
}

/** Per-minute amounts of one partition for one budget: a ring of the last `size` minutes. */
class MinuteRing {
  private readonly minutes: Float64Array;
  private readonly values: Float64Array;

  constructor(readonly size: number) {
    this.minutes = new Float64Array(size).fill(-1);
    this.values = new Float64Array(size);
  }

  /** `minute`: minute index (ms / 60 000). `replace`: set instead of add. Too old for the ring: ignored. */
  put(minute: number, amount: number, replace: boolean): void {
    const slot = minute % this.size;
    const held = this.minutes[slot] ?? -1;
    if (held > minute) return;
    if (held < minute) {
      this.minutes[slot] = minute;
      this.values[slot] = 0;
    }
    this.values[slot] = (replace ? 0 : (this.values[slot] ?? 0)) + amount;
  }

  get(minute: number): number {
    const slot = minute % this.size;
    return this.minutes[slot] === minute ? (this.values[slot] ?? 0) : 0;
  }
}

interface PeriodState {
  readonly start: number;
  readonly end: number;
  /** sum over owned partitions */
  total: bigint;
  readonly byPartition: Map<number, bigint>;
  /**
   * The next event checks every threshold already reached, not only the ones it crosses: set when spend came
   * in without events (seed) or the amount or thresholds changed, so a threshold reached then is not lost.
   */
  catchUp: boolean;
}

interface TierState {
  /** minute index of the last evaluated window end */
  lastEnd: number | null;
  /** ms: start of the minute the open episode began in; null: no open episode */
  episodeStart: number | null;
  /** minute index of the last window end the condition held at */
  lastTrue: number;
}

interface BudgetState {
  def: Budget;
  /** what spend depends on: a change of any of these starts the budget over */
  readonly spendKey: string;
  /** minutes of per-minute history kept: the burn windows three times over, and the forecast's window */
  readonly historyMinutes: number;
  /** current and previous period, oldest first */
  periods: PeriodState[];
  readonly rings: Map<number, MinuteRing>;
  readonly tiers: Map<string, TierState>;
  lastTeam: string | null;
  lastOrg: string | null;
}

const spendKeyOf = (b: Budget): string => [b.scope, b.scope_id, b.period, b.time_zone, b.unit].join('\u0000');
const indexKey = (scope: BudgetScope, id: string): string => `${scope}\u0000${id}`;
const minuteOf = (ms: number): number => Math.floor(ms / MINUTE_MS);

export interface BudgetLedgerDeps {
  readonly settings?: Partial<BudgetSettings>;
  /** goes into Alert.detector */
  readonly detector: string;
}

export class BudgetLedger {
  private readonly settings: BudgetSettings;
  private readonly detector: string;
  private budgets = new Map<string, BudgetState>();
  private index = new Map<string, BudgetState[]>();
  /** alert id → event time (ms) after which it may be forgotten; null: marked, clock not started yet */
  private readonly fired = new Map<string, number | null>();
  private lastPrune = -Infinity;
  /** events older than the previous period of a budget they match: counted, then ignored */
  tooLate = 0;

  constructor({ settings, detector }: BudgetLedgerDeps) {
    this.settings = { ...DEFAULT_BUDGET_SETTINGS, ...settings };
    this.detector = detector;
    const problems = settingsProblems(this.settings);
    if (problems.length > 0) {
      throw new TokenledgerError('CONFIG_INVALID', `invalid budget settings:\n  ${problems.join('\n  ')}`);
    }
  }

  /**
   * Replaces the set of budgets. A budget whose scope, period, zone and unit are unchanged keeps its spend and
   * alert state (a new amount or thresholds re-check the thresholds already reached at the next event).
   * Returns the ids of the budgets that are new or start over: seed those.
   */
  setBudgets(budgets: Budget[]): string[] {
    const next = new Map<string, BudgetState>();
    const fresh: string[] = [];
    for (const raw of budgets) {
      const b = checkBudget(raw);
      const old = this.budgets.get(b.budget_id);
      if (old !== undefined && old.spendKey === spendKeyOf(b)) {
        if (old.def.amount !== b.amount || old.def.thresholds.join() !== b.thresholds.join()) {
          for (const p of old.periods) p.catchUp = true;
        }
        old.def = b;
        next.set(b.budget_id, old);
        continue;
      }
      next.set(b.budget_id, this.newState(b));
      if (!fresh.includes(b.budget_id)) fresh.push(b.budget_id);
    }
    this.budgets = next;
    this.index = new Map();
    for (const st of next.values()) {
      const key = indexKey(st.def.scope, st.def.scope_id);
      this.index.set(key, [...(this.index.get(key) ?? []), st]);
    }
    return fresh;
  }

  /** The budgets in force, as checked (canonical zone, sorted thresholds). */
  list(): Budget[] {
    return [...this.budgets.values()].map((s) => s.def);
  }

  /** How far back (ms before the current minute) `seed` should supply per-minute amounts for this budget. */
  historyMs(budget_id: string): number {
    return (this.budgets.get(budget_id)?.historyMinutes ?? 0) * MINUTE_MS;
  }

  /**
   * Warm-up from ClickHouse: sets (replaces, so seeding twice is harmless) this partition's spend in the
   * period containing `periodStart`, and its per-minute amounts for the given minutes. Unknown budgets and
   * periods older than the budget's previous one are ignored.
   */
  seed(
    partition: number,
    budget_id: string,
    periodStart: number,
    spent: bigint,
    minutes: ReadonlyArray<readonly [minuteStartMs: number, amount: bigint]>,
  ): void {
    const st = this.budgets.get(budget_id);
    if (st === undefined) return;
    const p = this.periodFor(st, periodStart);
    if (p !== undefined) {
      p.total += spent - (p.byPartition.get(partition) ?? 0n);
      p.byPartition.set(partition, spent);
      p.catchUp = true;
    }
    const ring = this.ring(st, partition);
    for (const [m, amount] of minutes) ring.put(minuteOf(m), Number(amount), true);
    // Burn-rate episodes are re-derived from the history at the next evaluate: the same episode start, so
    // the same alert id as before a restart.
    st.tiers.clear();
  }

  /** Alert ids already recorded (the alerts table): never fired again. */
  markFired(alertIds: Iterable<string>): void {
    for (const id of alertIds) if (!this.fired.has(id)) this.fired.set(id, null);
  }

  /** The threshold alerts triggered by exactly this event (none when it crosses nothing). */
  add(partition: number, ev: BudgetEvent, nowMs: number): Alert[] {
    const alerts: Alert[] = [];
    const lists = [
      this.index.get(indexKey('team', ev.team_id)),
      ev.project_id === null ? undefined : this.index.get(indexKey('project', ev.project_id)),
      ev.user_id === null ? undefined : this.index.get(indexKey('user', ev.user_id)),
    ];
    for (const st of lists.flatMap((l) => l ?? [])) {
      st.lastTeam = ev.team_id;
      st.lastOrg = ev.org_id;
      const p = this.periodFor(st, ev.occurred_at);
      if (p === undefined) {
        this.tooLate++;
        continue;
      }
      const amount = st.def.unit === 'usd' ? ev.cost_nanousd : ev.tokens;
      const before = p.total;
      p.byPartition.set(partition, (p.byPartition.get(partition) ?? 0n) + amount);
      p.total += amount;
      this.ring(st, partition).put(minuteOf(ev.occurred_at), Number(amount), false);
      alerts.push(...this.thresholds(st, p, before, ev, nowMs));
    }
    return alerts;
  }

  /**
   * Burn-rate and forecast alerts, once per closed minute. `eventTimeMs`: the event-time watermark, the
   * (exclusive) end of the minute just closed; windows end there.
   */
  evaluate(eventTimeMs: number, nowMs: number): Alert[] {
    const end = minuteOf(eventTimeMs);
    const endMs = end * MINUTE_MS;
    this.pruneFired(endMs);
    const alerts: Alert[] = [];
    for (const st of this.budgets.values()) {
      const p = this.periodFor(st, endMs - 1);
      if (p === undefined) continue;
      const prefix = this.prefixSums(st, end);
      alerts.push(...this.burnRate(st, p, end, prefix, nowMs));
      const forecast = this.forecast(st, p, end, prefix, nowMs);
      if (forecast !== undefined) alerts.push(forecast);
    }
    return alerts;
  }

  /** Partition revoked: forget what its events contributed. */
  dropPartition(partition: number): void {
    for (const st of this.budgets.values()) {
      for (const p of st.periods) {
        p.total -= p.byPartition.get(partition) ?? 0n;
        p.byPartition.delete(partition);
      }
      if (st.rings.delete(partition)) st.tiers.clear();
    }
  }

  /** Spend in the period containing `atMs`, over all owned partitions (0 when none is known). */
  spent(budget_id: string, atMs: number): bigint {
    const st = this.budgets.get(budget_id);
    return st?.periods.find((p) => p.start <= atMs && atMs < p.end)?.total ?? 0n;
  }

  private newState(def: Budget): BudgetState {
    const longest = LONGEST_PERIOD_MS[def.period];
    const longMinutes = Math.max(
      0,
      ...this.settings.burnTiers.map((t) => burnWindows(t, longest, this.settings).longMs / MINUTE_MS),
    );
    const forecastMinutes =
      longest > this.settings.forecastTrailingMs ? this.settings.forecastTrailingMs / MINUTE_MS : 0;
    return {
      def,
      spendKey: spendKeyOf(def),
      historyMinutes: Math.max(3 * longMinutes, forecastMinutes, 1),
      periods: [],
      rings: new Map(),
      tiers: new Map(),
      lastTeam: def.scope === 'team' ? def.scope_id : null,
      lastOrg: null,
    };
  }

  private ring(st: BudgetState, partition: number): MinuteRing {
    let r = st.rings.get(partition);
    if (r === undefined) {
      r = new MinuteRing(st.historyMinutes);
      st.rings.set(partition, r);
    }
    return r;
  }

  /**
   * The period containing `atMs`, created when needed. Keeps the newest period and the one before it;
   * undefined for an instant older than that.
   */
  private periodFor(st: BudgetState, atMs: number): PeriodState | undefined {
    const known = st.periods.find((p) => p.start <= atMs && atMs < p.end);
    if (known !== undefined) return known;
    const { def } = st;
    const b = periodBounds(atMs, def.period, def.time_zone);
    const newest = st.periods[st.periods.length - 1];
    const newestStart = Math.max(b.start, newest?.start ?? -Infinity);
    const keepFrom = periodBounds(newestStart - 1, def.period, def.time_zone).start;
    if (b.start < keepFrom) return undefined;
    const p: PeriodState = { start: b.start, end: b.end, total: 0n, byPartition: new Map(), catchUp: false };
    st.periods = [...st.periods.filter((q) => q.start >= keepFrom), p].sort((x, y) => x.start - y.start);
    return p;
  }

  private isFired(id: string): boolean {
    return this.fired.has(id);
  }

  private recordFired(id: string, eventTimeMs: number): void {
    this.fired.set(id, eventTimeMs + FIRED_RETENTION_MS);
  }

  /** Forgets ids past their retention; starts the clock of marked ones. At most once per event-time hour. */
  private pruneFired(eventTimeMs: number): void {
    if (eventTimeMs - this.lastPrune < HOUR_MS) return;
    this.lastPrune = eventTimeMs;
    for (const [id, until] of this.fired) {
      if (until === null) this.fired.set(id, eventTimeMs + FIRED_RETENTION_MS);
      else if (until < eventTimeMs) this.fired.delete(id);
    }
  }

  private thresholds(
    st: BudgetState,
    p: PeriodState,
    before: bigint,
    ev: BudgetEvent,
    nowMs: number,
  ): Alert[] {
    const { def } = st;
    const catchUp = p.catchUp;
    p.catchUp = false;
    const alerts: Alert[] = [];
    for (const t of def.thresholds) {
      const line = def.amount * BigInt(t);
      if (p.total * 100n < line || (before * 100n >= line && !catchUp)) continue;
      const id = alertId('budget_threshold', [def.budget_id, p.start, t]);
      if (this.isFired(id)) continue;
      this.recordFired(id, ev.occurred_at);
      const adj = periodAdjective(def.period);
      const how = catchUp && before * 100n >= line ? 'reached before this event' : 'crossed';
      alerts.push(
        this.alert(st, p, {
          alert_id: id,
          kind: 'budget_threshold',
          severity: t < 80 ? 'info' : t < 100 ? 'warning' : 'critical',
          fired_at: nowMs,
          org_id: ev.org_id,
          team_id: ev.team_id,
          window_start: p.start,
          window_end: ev.occurred_at + 1,
          observed: p.total,
          expected: 0n,
          score: ratio(p.total, def.amount),
          rule: `spent >= ${t}% of the ${adj} budget (${how} by event ${ev.event_id})`,
          message: `${who(def)} has ${def.unit === 'usd' ? 'spent' : 'used'} ${amountText(def, p.total)} (${percent(p.total, def.amount)}%) of its ${budgetText(def)} for ${periodLabel(p.start, def.period, def.time_zone)} (${def.time_zone})`,
          threshold_percent: t,
        }),
      );
    }
    return alerts;
  }

  /** Prefix sums of the budget's per-minute amounts over [end - history, end): index i = minutes before i. */
  private prefixSums(st: BudgetState, end: number): Float64Array {
    const n = st.historyMinutes;
    const base = end - n;
    const prefix = new Float64Array(n + 1);
    for (let i = 0; i < n; i++) {
      let v = 0;
      for (const ring of st.rings.values()) v += ring.get(base + i);
      prefix[i + 1] = (prefix[i] ?? 0) + v;
    }
    return prefix;
  }

  private burnRate(
    st: BudgetState,
    p: PeriodState,
    end: number,
    prefix: Float64Array,
    nowMs: number,
  ): Alert[] {
    const { def } = st;
    const n = st.historyMinutes;
    const periodMs = p.end - p.start;
    const amount = Number(def.amount);
    /** spend over the `w` minutes before window end `e` (minute index) */
    const sum = (e: number, w: number): number => {
      const hi = Math.max(0, Math.min(n, e - (end - n)));
      const lo = Math.max(0, hi - w);
      return (prefix[hi] ?? 0) - (prefix[lo] ?? 0);
    };
    const burn = (e: number, w: number): number => (sum(e, w) * periodMs) / (w * MINUTE_MS * amount);
    const alerts: Alert[] = [];
    for (const tier of this.settings.burnTiers) {
      const { longMs, shortMs } = burnWindows(tier, periodMs, this.settings);
      const long = longMs / MINUTE_MS;
      const short = shortMs / MINUTE_MS;
      let ts = st.tiers.get(tier.name);
      if (ts === undefined) {
        ts = { lastEnd: null, episodeStart: null, lastTrue: -Infinity };
        st.tiers.set(tier.name, ts);
      }
      if (ts.lastEnd !== null && end <= ts.lastEnd) continue;
      // Replay the window ends not evaluated yet (all of the kept history after a restart), so an episode has
      // the same start minute, and so the same alert id, however the minutes were fed.
      const earliest = end - (n - long);
      const from = ts.lastEnd === null ? earliest : Math.max(ts.lastEnd + 1, earliest);
      let now = false;
      for (let e = from; e <= end; e++) {
        now = burn(e, long) >= tier.factor && burn(e, short) >= tier.factor;
        if (now) {
          ts.episodeStart ??= (e - 1) * MINUTE_MS;
          ts.lastTrue = e;
        } else if (ts.episodeStart !== null && e - ts.lastTrue >= long) {
          ts.episodeStart = null; // quiet for a long window: the episode is over
        }
      }
      ts.lastEnd = end;
      if (!now || ts.episodeStart === null) continue;
      const id = alertId('budget_burn_rate', [def.budget_id, p.start, tier.name, ts.episodeStart]);
      if (this.isFired(id)) continue;
      this.recordFired(id, end * MINUTE_MS);
      const rate = burn(end, long);
      const rateShort = burn(end, short);
      const inLong = BigInt(Math.round(sum(end, long)));
      const inShort = BigInt(Math.round(sum(end, short)));
      const window = `${formatDuration(longMs)} / ${formatDuration(shortMs)}`;
      alerts.push(
        this.alert(st, p, {
          alert_id: id,
          kind: 'budget_burn_rate',
          severity: tier.severity,
          fired_at: nowMs,
          org_id: st.lastOrg,
          team_id: st.lastTeam ?? '',
          window_start: end * MINUTE_MS - longMs,
          window_end: end * MINUTE_MS,
          observed: inLong,
          expected: (def.amount * BigInt(longMs)) / BigInt(periodMs),
          score: rate,
          rule: `${tier.name} burn rate >= ${tier.factor} over ${formatDuration(longMs)} (${rate.toFixed(1)}) and ${formatDuration(shortMs)} (${rateShort.toFixed(1)})`,
          message: `${who(def)} is spending ${rate.toFixed(1)}× the sustainable pace of its ${budgetText(def)} (${amountText(def, inLong)} in the last ${formatDuration(longMs)}, ${amountText(def, inShort)} in the last ${formatDuration(shortMs)}): at this pace the whole budget lasts ${formatDuration(periodMs / rate)}; ${percent(p.total, def.amount)}% spent so far in ${periodLabel(p.start, def.period, def.time_zone)}`,
          burn_rate: rate,
          burn_window: window,
        }),
      );
    }
    return alerts;
  }

  private forecast(
    st: BudgetState,
    p: PeriodState,
    end: number,
    prefix: Float64Array,
    nowMs: number,
  ): Alert | undefined {
    const { def } = st;
    const s = this.settings;
    const endMs = end * MINUTE_MS;
    const periodMs = p.end - p.start;
    const elapsed = endMs - p.start;
    if (elapsed < Math.min(periodMs * s.forecastMinElapsedFraction, s.forecastMinElapsedCapMs)) return;
    if (p.total >= def.amount) return;
    const id = alertId('budget_forecast', [def.budget_id, p.start]);
    if (this.isFired(id)) return;
    const trailingMs = Math.min(elapsed, s.forecastTrailingMs);
    // The whole period so far: the exact total. A trailing part of it: the per-minute history.
    let trailing = p.total;
    if (trailingMs < elapsed) {
      const minutes = Math.min(trailingMs / MINUTE_MS, st.historyMinutes);
      const n = st.historyMinutes;
      trailing = BigInt(Math.round((prefix[n] ?? 0) - (prefix[n - minutes] ?? 0)));
    }
    if (trailing <= 0n) return;
    const left = def.amount - p.total;
    const exhaustedAt = endMs + Number((left * BigInt(trailingMs) + trailing - 1n) / trailing);
    if (exhaustedAt >= p.end) return;
    this.recordFired(id, endMs);
    const projected = p.total + (trailing * BigInt(p.end - endMs)) / BigInt(trailingMs);
    const zone = def.time_zone;
    const when =
      def.period === 'day'
        ? `at ${localTimeString(exhaustedAt, zone)} (${zone})`
        : `on ${localDateString(exhaustedAt, zone)}`;
    const label = periodLabel(p.start, def.period, zone);
    return this.alert(st, p, {
      alert_id: id,
      kind: 'budget_forecast',
      severity: 'warning',
      fired_at: nowMs,
      org_id: st.lastOrg,
      team_id: st.lastTeam ?? '',
      window_start: endMs - trailingMs,
      window_end: endMs,
      observed: trailing,
      expected: (def.amount * BigInt(trailingMs)) / BigInt(periodMs),
      score: ratio(projected, def.amount),
      rule: `projected spend by the end of the period >= 100% of the ${periodAdjective(def.period)} budget, at the pace of the last ${formatDuration(trailingMs)}`,
      message: `${who(def)} is on pace to exhaust its ${budgetText(def)} ${when} (projected ${amountText(def, projected)} by the end of ${def.period === 'week' ? 'the ' : ''}${label}); ${amountText(def, p.total)} (${percent(p.total, def.amount)}%) spent so far`,
      forecast_exhausted_at: exhaustedAt,
    });
  }

  private alert(st: BudgetState, p: PeriodState, a: AlertParts): Alert {
    const { def } = st;
    const usd = def.unit === 'usd';
    return {
      alert_id: a.alert_id,
      kind: a.kind,
      severity: a.severity,
      fired_at: a.fired_at,
      org_id: a.org_id,
      team_id: a.team_id,
      scope: def.scope,
      model: null,
      user_id: def.scope === 'user' ? def.scope_id : null,
      project_id: def.scope === 'project' ? def.scope_id : null,
      window_start: a.window_start,
      window_end: a.window_end,
      observed_cost_nanousd: usd ? a.observed : 0n,
      expected_cost_nanousd: usd ? a.expected : 0n,
      observed_tokens: usd ? 0n : a.observed,
      expected_tokens: usd ? 0n : a.expected,
      score: a.score,
      rule: a.rule,
      budget: {
        budget_id: def.budget_id,
        period: def.period,
        period_start: p.start,
        period_end: p.end,
        time_zone: def.time_zone,
        unit: def.unit,
        limit: def.amount,
        spent: p.total,
        threshold_percent: a.threshold_percent ?? null,
        burn_rate: a.burn_rate ?? null,
        burn_window: a.burn_window ?? null,
        forecast_exhausted_at: a.forecast_exhausted_at ?? null,
      },
      top_contributors: [],
      message: a.message,
      related_alert_id: null,
      detector: this.detector,
    };
  }
}

interface AlertParts {
  alert_id: string;
  kind: AlertKind;
  severity: AlertSeverity;
  fired_at: number;
  org_id: string | null;
  team_id: string;
  window_start: number;
  window_end: number;
  /** in the budget's unit */
  observed: bigint;
  expected: bigint;
  score: number;
  rule: string;
  message: string;
  threshold_percent?: number;
  burn_rate?: number;
  burn_window?: string;
  forecast_exhausted_at?: number;
}

const ratio = (a: bigint, b: bigint): number => Number((a * 1_000_000n) / b) / 1_000_000;
/** Whole percent, rounded down: never shows 80 % before 80 % is reached. */
const percent = (a: bigint, b: bigint): string => ((a * 100n) / b).toString();
const groupDigits = (n: bigint): string => n.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');

/** "team search", or the id alone when it already says what it is ("team-search"). */
function who(def: Budget): string {
  return def.scope_id.toLowerCase().startsWith(def.scope) ? def.scope_id : `${def.scope} ${def.scope_id}`;
}

function amountText(def: Budget, v: bigint): string {
  return def.unit === 'usd' ? formatUsd(v) : `${groupDigits(v)} tokens`;
}

/** "$5,000 monthly budget", "2,000,000-token weekly budget". */
function budgetText(def: Budget): string {
  const amount = def.unit === 'usd' ? formatUsd(def.amount) : `${groupDigits(def.amount)}-token`;
  return `${amount} ${periodAdjective(def.period)} budget`;
}
