import { SpikeDetector, scopeKey } from '../../consumers/detect/spike';
import { gaussian as gauss, mulberry32 as prng, poisson } from '../../lib/random';
import type { ScopeMinute, ScopeRef, SpikeDecision } from '../../consumers/detect/types';

const MIN = 60_000;
const USD = 1e9;
/** Monday 2026-11-02 00:00 UTC */
const T0 = Date.UTC(2026, 10, 2);

const team = (team_id: string): ScopeRef => ({ scope: 'team', team_id, model: null, org_id: null });
const teamModel = (team_id: string, model: string): ScopeRef => ({
  scope: 'team_model',
  team_id,
  model,
  org_id: null,
});

/**
 * One minute of spend for `ref`: Poisson calls at `usdPerHour` whose costs are lognormal around `callUsd`
 * (sigma 1: lumpy, a few calls cost several times the mean).
 */
function minute(
  rand: () => number,
  ref: ScopeRef,
  usdPerHour: number,
  callUsd: number,
  who = 'svc-a\u0000model-x',
): ScopeMinute | undefined {
  const calls = poisson(rand, usdPerHour / 60 / callUsd);
  let cost = 0;
  let sq = 0;
  let max = 0;
  for (let i = 0; i < calls; i++) {
    const c = callUsd * USD * Math.exp(gauss(rand) - 0.5);
    cost += c;
    sq += c * c;
    max = Math.max(max, c);
  }
  if (calls === 0) return undefined;
  return {
    ref,
    totals: {
      cost_nanousd: Math.round(cost),
      cost_sq: sq,
      max_call_nanousd: max,
      tokens: calls * 1000,
      byUserModel: new Map([[who, cost]]),
    },
  };
}

interface Run {
  readonly decisions: (SpikeDecision & { minute: number })[];
}

/** Feeds minutes [from, to) of one or more scopes through the detector; `rate(ref, m)` gives $/h for minute m. */
function feed(
  d: SpikeDetector,
  refs: readonly ScopeRef[],
  from: number,
  to: number,
  rate: (ref: ScopeRef, m: number) => number,
  callUsd: number,
  rand: () => number,
  run: Run = { decisions: [] },
): Run {
  for (let m = from; m < to; m++) {
    const observed = new Map<string, ScopeMinute>();
    for (const ref of refs) {
      const sm = minute(rand, ref, rate(ref, m), callUsd);
      if (sm !== undefined) observed.set(scopeKey(ref), sm);
    }
    for (const dec of d.closeMinute(T0 + m * MIN, observed)) run.decisions.push({ ...dec, minute: m });
  }
  return run;
}

const DAY = 1440;

test('steady spend with noise: no alert in three days', () => {
  const d = new SpikeDetector();
  const run = feed(d, [team('steady')], 0, 3 * DAY, () => 100, 0.05, prng(1));
  expect(run.decisions).toEqual([]);
  expect(d.tierOf(team('steady'))).toBe('hour_of_day');
});

test('daily and weekly seasonality (night 10 %, weekend 30 %): no alert over three weeks', () => {
  const d = new SpikeDetector();
  const shape = (ref: ScopeRef, m: number): number => {
    const hour = (m / 60) % 24;
    const weekday = Math.floor(m / DAY) % 7; // 0 = Monday
    const daily = 0.1 + 0.9 * Math.max(0, Math.sin(((hour - 6) / 14) * Math.PI));
    // a newcomer joins on day 15 (a Monday, at midnight) with a third of the spend and the same rhythm
    if (ref.team_id === 'newcomer' && m < 14 * DAY) return 0;
    return (ref.team_id === 'newcomer' ? 150 : 400) * daily * (weekday >= 5 ? 0.3 : 1);
  };
  const run = feed(d, [team('seasonal'), team('newcomer')], 0, 21 * DAY, shape, 0.08, prng(2));
  // the first team had no history at all on day 1: its ramp to business hours is a 10x "spike" to a detector
  // that has never seen a morning, so only its decisions after the hour-of-day baseline exists are checked
  expect(run.decisions.filter((x) => x.ref.team_id === 'seasonal' && x.minute >= 2 * DAY)).toEqual([]);
  expect(d.tierOf(team('seasonal'))).toBe('hour_of_week');
  // the newcomer borrows the organisation's shape from its first hour on: no alert on its mornings
  expect(run.decisions.filter((x) => x.ref.team_id === 'newcomer')).toEqual([]);
  expect(d.tierOf(team('newcomer'))).toBe('hour_of_day');
});

test('a step to 6x: an alert in the first minute, critical within three, then spike_resolved when it ends', () => {
  const d = new SpikeDetector();
  const rand = prng(3);
  const start = 3 * DAY + 600;
  const rate = (_: ScopeRef, m: number): number => (m >= start && m < start + 30 ? 600 : 100);
  const run = feed(d, [team('search')], 0, start + 90, rate, 0.05, rand);
  const spikes = run.decisions.filter((x) => x.kind === 'cost_spike');
  // a warning as soon as a minute shows it; critical once $250/h over expected holds for 3 minutes' worth
  expect(spikes.map((x) => x.ref.team_id)).toEqual(spikes.map(() => 'search'));
  expect(spikes.map((x) => x.severity).slice(-1)).toEqual(['critical']);
  expect(spikes.length).toBeLessThanOrEqual(2);
  const first = spikes[0];
  expect(first?.minute).toBeGreaterThanOrEqual(start);
  expect(first?.minute).toBeLessThanOrEqual(start + 1);
  expect(spikes[spikes.length - 1]?.minute).toBeLessThanOrEqual(start + 3);
  expect(new Set(spikes.map((x) => x.episodeStart)).size).toBe(1);
  expect(first?.score).toBeGreaterThan(2);
  expect(spikes[spikes.length - 1]?.score).toBeGreaterThan(4);
  expect(first?.contributors[0]).toMatchObject({ dimension: 'user', value: 'svc-a' });
  const resolved = run.decisions.filter((x) => x.kind === 'spike_resolved');
  expect(resolved).toHaveLength(1);
  expect(resolved[0]?.episodeStart).toBe(first?.episodeStart);
  expect(resolved[0]?.episodeSeverity).toBe(first?.severity);
  expect(resolved[0]?.minute).toBeGreaterThanOrEqual(start + 30);
  expect(resolved[0]?.minute).toBeLessThanOrEqual(start + 30 + 10);
});

test('a 3x step of $100/h extra is a warning, not critical', () => {
  const d = new SpikeDetector();
  const start = 3 * DAY + 700;
  const rate = (_: ScopeRef, m: number): number => (m >= start && m < start + 60 ? 150 : 50);
  const run = feed(d, [team('mid')], 0, start + 60, rate, 0.02, prng(4));
  const spikes = run.decisions.filter((x) => x.kind === 'cost_spike');
  expect(spikes.map((x) => x.severity)).toEqual(['warning']);
  expect(spikes[0]?.minute).toBeLessThanOrEqual(start + 5);
});

test('a small team with lumpy, expensive calls: no alert (absolute and noise gates)', () => {
  const d = new SpikeDetector();
  // $2/h of $0.40 calls: most minutes spend nothing, some spend several dollars at once
  const run = feed(d, [team('tiny')], 0, 4 * DAY, () => 2, 0.4, prng(5));
  expect(run.decisions).toEqual([]);
});

test('a small team tripling its spend stays quiet: $4/h extra is under the absolute gate', () => {
  const d = new SpikeDetector();
  const start = 3 * DAY;
  const run = feed(d, [team('small')], 0, start + 240, (_, m) => (m >= start ? 6 : 2), 0.01, prng(6));
  expect(run.decisions).toEqual([]);
});

test('a permanent level shift of 1.5x (a new service) is not an incident', () => {
  const d = new SpikeDetector();
  const shift = 3 * DAY + 300;
  const run = feed(d, [team('growing')], 0, 5 * DAY, (_, m) => (m >= shift ? 300 : 200), 0.05, prng(7));
  expect(run.decisions).toEqual([]);
});

test('cooldown: a second burst right after a resolved spike does not alert; one after the cooldown does', () => {
  const d = new SpikeDetector({ cooldownMinutes: 30 });
  const a = 3 * DAY + 100;
  const bursts = [a, a + 25, a + 120];
  const rate = (_: ScopeRef, m: number): number => (bursts.some((b) => m >= b && m < b + 10) ? 1000 : 100);
  const run = feed(d, [team('bursty')], 0, a + 200, rate, 0.05, prng(8));
  const spikes = run.decisions.filter((x) => x.kind === 'cost_spike');
  expect(spikes.map((x) => Math.floor((x.minute - a) / 20))).toEqual([0, 6]);
  expect(run.decisions.filter((x) => x.kind === 'spike_resolved')).toHaveLength(2);
});

test('a new team has no baseline for its first hour: no alert however much it spends', () => {
  const d = new SpikeDetector();
  const run = feed(d, [team('new')], 0, 50, (_, m) => (m < 20 ? 10 : 2000), 0.05, prng(9));
  expect(run.decisions).toEqual([]);
  expect(d.tierOf(team('new'))).toBe('none');
});

test('team_model scope: its episode is suppressed while the team has one', () => {
  const d = new SpikeDetector();
  const refs = [team('t'), teamModel('t', 'opus')];
  const start = 3 * DAY + 400;
  const run = feed(d, refs, 0, start + 20, (_, m) => (m >= start ? 1500 : 100), 0.05, prng(10));
  const spikes = run.decisions.filter((x) => x.kind === 'cost_spike');
  expect(spikes.map((x) => x.ref.scope)).toEqual(['team']);
});

test('a restart that replays the same minutes decides the same episode start (so the same alert_id)', () => {
  const start = 3 * DAY + 500;
  const rate = (_: ScopeRef, m: number): number => (m >= start && m < start + 40 ? 900 : 100);
  const first = feed(new SpikeDetector(), [team('r')], 0, start + 10, rate, 0.05, prng(11));
  const replay = feed(new SpikeDetector(), [team('r')], 0, start + 10, rate, 0.05, prng(11));
  const spikes = (run: Run): number[] =>
    run.decisions.filter((x) => x.kind === 'cost_spike').map((x) => x.episodeStart);
  expect(spikes(first)).toHaveLength(1);
  expect(spikes(replay)).toEqual(spikes(first));
});

test('an adopted episode (its alert already sent before a restart) is not alerted again, and resolves', () => {
  const start = 3 * DAY + 500;
  const rate = (_: ScopeRef, m: number): number => (m >= start && m < start + 40 ? 900 : 100);
  const d = new SpikeDetector();
  const rand = prng(12);
  expect(feed(d, [team('r')], 0, start, rate, 0.05, rand).decisions).toEqual([]);
  d.adoptEpisode(team('r'), T0 + start * MIN, 'critical');
  expect(d.openEpisodes()).toEqual([
    { ref: team('r'), start: T0 + start * MIN, severity: 'critical', openedWith: 'critical' },
  ]);
  const rest = feed(d, [team('r')], start, start + 80, rate, 0.05, rand);
  expect(rest.decisions.map((x) => [x.kind, x.episodeStart, x.episodeSeverity])).toEqual([
    ['spike_resolved', T0 + start * MIN, 'critical'],
  ]);
  expect(rest.decisions[0]?.minute).toBeGreaterThanOrEqual(start + 40);
  expect(d.openEpisodes()).toEqual([]);
});

test('minutes must increase', () => {
  const d = new SpikeDetector();
  d.closeMinute(T0 + MIN, new Map());
  expect(() => d.closeMinute(T0, new Map())).toThrow(/not after the last closed one/);
});
