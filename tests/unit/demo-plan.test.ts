// The demo's runaway loop must be reported whatever minute of the hour the demo ends (with three hours of event
// time it was missed when the plan ended in the first quarter of an hour; --hours is now at least 4).
import { demoMinutes, demoPlan, pricingOf } from '../../cli/demo/org';
import { spikeAlert } from '../../consumers/detect/alerts';
import { MinuteBuckets } from '../../consumers/detect/minutes';
import { SpikeDetector } from '../../consumers/detect/spike';
import { loadCatalog, priceEvent } from '../../consumers/pricing';
import { demoBucketEvent } from '../helpers/demo';

const catalog = loadCatalog();

function loopReported(endMs: number, hours: number): boolean {
  const plan = demoPlan(endMs, hours);
  const detector = new SpikeDetector();
  let reported = false;
  for (const { minute, calls } of demoMinutes(plan)) {
    const buckets = new MinuteBuckets();
    for (const c of calls) {
      const price = priceEvent(catalog, pricingOf(c, minute));
      buckets.add(demoBucketEvent(c, c.occurred_at ?? minute, price.cost_nanousd));
    }
    for (const d of detector.closeMinute(minute, buckets.take(minute / 60_000))) {
      const a = spikeAlert(d, d.windowEnd, 'test');
      if (a.kind === 'cost_spike' && a.team_id === plan.loop.team) reported = true;
    }
  }
  return reported;
}

test('the loop is reported for a demo ending at any minute of the hour (4 hours, the shortest allowed)', () => {
  const hour = Date.UTC(2026, 10, 29, 15);
  // every minute of the first twenty (where three hours failed), then every fifth
  const minutes = Array.from({ length: 60 }, (_, m) => m).filter((m) => m < 20 || m % 5 === 0);
  const missed = minutes.filter((m) => !loopReported(hour + m * 60_000 + 30_000, 4));
  expect(missed).toEqual([]);
}, 120_000);
