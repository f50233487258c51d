/**
 * bench:detect's scoring (bench/detect-score.ts) on tiny hand-made cases. Times are minutes after the start of
 * the scored period; the scored period is one week, two teams, 30 s of allowed lateness.
 */
import { MATCH_GRACE_MS, median, quantile, scoreDetections } from '../../bench/detect-score';
import type { LabelledSpike, ScoreOptions, ScoredAlert } from '../../bench/detect-score';

const T0 = Date.UTC(2026, 0, 19);
const MIN = 60_000;
const at = (minute: number): number => T0 + minute * MIN;
const opts: ScoreOptions = { scoredFrom: T0, scoredTo: T0 + 7 * 1440 * MIN, teams: 2, latenessMs: 30_000 };

function spike(
  id: number,
  team: string,
  start: number,
  end: number,
  qualifying: boolean,
  shape = 'burst',
): LabelledSpike {
  return { id, team, shape, start: at(start), end: at(end), qualifying };
}
const alert = (team: string, minute: number): ScoredAlert => ({ team, windowEnd: at(minute) });

describe('scoreDetections', () => {
  it('counts an alert inside a qualifying spike as a true positive and measures its delay with the lateness', () => {
    const s = scoreDetections([alert('a', 602)], [spike(1, 'a', 600, 620, true)], opts);
    expect(s.verdicts).toEqual(['tp']);
    expect([s.tp, s.fp]).toEqual([1, 0]);
    expect(s.precision).toBe(1);
    expect(s.recall).toBe(1);
    expect(s.f1).toBe(1);
    // windowEnd 2 min after the start, + 30 s before the minute is closed
    expect(s.delays.get(1)).toBe(2.5);
    expect(s.delayMedianMin).toBe(2.5);
  });

  it('counts an alert with no spike as a false positive, per team per week', () => {
    const s = scoreDetections([alert('a', 602), alert('b', 300)], [spike(1, 'a', 600, 620, true)], opts);
    expect(s.verdicts).toEqual(['tp', 'fp']);
    expect(s.precision).toBe(0.5);
    // one false alert over 2 teams × 1 week
    expect(s.falseAlertsPerTeamWeek).toBe(0.5);
    expect(s.alertsPerTeamWeek).toBe(1);
  });

  it('does not match an alert on another team, even inside the spike', () => {
    const s = scoreDetections([alert('b', 605)], [spike(1, 'a', 600, 620, true)], opts);
    expect(s.verdicts).toEqual(['fp']);
    expect(s.recall).toBe(0);
    expect(s.missed).toEqual([1]);
  });

  it('reports a qualifying spike without alerts as a miss', () => {
    const spikes = [spike(1, 'a', 600, 620, true), spike(2, 'b', 720, 780, true, 'ramp')];
    const s = scoreDetections([alert('a', 601)], spikes, opts);
    expect(s.recall).toBe(0.5);
    expect(s.missed).toEqual([2]);
    expect(s.precision).toBe(1);
    expect(s.f1).toBeCloseTo(2 / 3, 12);
    expect(s.byShape.burst).toMatchObject({ qualifying: 1, detected: 1, recall: 1 });
    expect(s.byShape.ramp).toMatchObject({ qualifying: 1, detected: 0, recall: 0 });
  });

  it('ignores alerts on a minor spike: neither TP nor FP', () => {
    const spikes = [spike(1, 'a', 600, 620, true), spike(2, 'a', 840, 900, false, 'loop')];
    const s = scoreDetections([alert('a', 601), alert('a', 850)], spikes, opts);
    expect(s.verdicts).toEqual(['tp', 'minor']);
    expect([s.tp, s.fp, s.ignoredMinor]).toEqual([1, 0, 1]);
    expect(s.precision).toBe(1);
    expect(s.qualifying).toBe(1);
    expect(s.minor).toBe(1);
    expect(s.minorAlerted).toBe(1);
    // ignored alerts still count in the alert rate
    expect(s.alertsPerTeamWeek).toBe(1);
  });

  it('matches from the spike start to 15 min after its end, inclusive, and no further', () => {
    expect(MATCH_GRACE_MS).toBe(15 * MIN);
    const spikes = [spike(1, 'a', 600, 620, true)];
    const s = scoreDetections(
      [alert('a', 599), alert('a', 600), alert('a', 635), alert('a', 636)],
      spikes,
      opts,
    );
    expect(s.verdicts).toEqual(['fp', 'tp', 'tp', 'fp']);
    // the delay comes from the first matching alert
    expect(s.delays.get(1)).toBe(0.5);
  });

  it('counts a warning and its critical escalation as two alerts, the delay from the first', () => {
    const s = scoreDetections([alert('a', 604), alert('a', 611)], [spike(1, 'a', 600, 620, true)], opts);
    expect(s.tp).toBe(2);
    expect(s.alerts).toBe(2);
    expect(s.detected).toBe(1);
    expect(s.delays.get(1)).toBe(4.5);
  });

  it('leaves out the warm-up: spikes starting before the scored period and alerts before it', () => {
    const spikes = [spike(1, 'a', -30, 20, true), spike(2, 'b', 600, 620, true)];
    const alerts = [alert('a', -20), alert('a', 10), alert('b', -600), alert('b', 601)];
    const s = scoreDetections(alerts, spikes, opts);
    expect(s.verdicts).toEqual([null, 'warmup_spike', null, 'tp']);
    expect(s.alerts).toBe(2);
    expect([s.tp, s.fp, s.ignoredWarmupSpike]).toEqual([1, 0, 1]);
    expect(s.qualifying).toBe(1);
    expect(s.recall).toBe(1);
  });

  it('gives NaN precision without alerts and NaN recall without qualifying spikes, F1 0', () => {
    const s = scoreDetections([], [spike(1, 'a', 600, 620, false)], opts);
    expect(s.precision).toBeNaN();
    expect(s.recall).toBeNaN();
    expect(s.f1).toBe(0);
    expect(s.delayMedianMin).toBeNaN();
  });

  it('takes the median and the nearest-rank p95 of the delays', () => {
    const spikes = [0, 1, 2, 3].map((k) => spike(k, 'a', 1000 * k, 1000 * k + 60, true));
    const alerts = [1, 2, 3, 10].map((d, k) => alert('a', 1000 * k + d));
    const s = scoreDetections(alerts, spikes, opts);
    expect([...s.delays.values()]).toEqual([1.5, 2.5, 3.5, 10.5]);
    expect(s.delayMedianMin).toBe(3);
    expect(s.delayP95Min).toBe(10.5);
  });
});

describe('median and quantile', () => {
  it('median: the middle value, or the mean of the two middle ones', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
  });

  it('quantile: nearest rank', () => {
    const v = Array.from({ length: 20 }, (_, i) => 20 - i);
    expect(quantile(v, 0.95)).toBe(19);
    expect(quantile(v, 1)).toBe(20);
    expect(quantile(v, 0)).toBe(1);
    expect(quantile([7], 0.95)).toBe(7);
  });
});
