import { alertId } from '../../consumers/detect/alerts';
import { parseBudgetsYaml, parseTokens, parseUsd, usdDecimal } from '../../consumers/detect/budget-store';
import { BudgetLedger, DEFAULT_BUDGET_SETTINGS, burnWindows } from '../../consumers/detect/budgets';
import type { Budget, BudgetEvent } from '../../consumers/detect/budgets';
import type { Alert } from '../../schemas/alert/types';

const MIN = 60_000;
const H = 3_600_000;
const DAY = 24 * H;
const USD = 1_000_000_000n;
/** Sunday 2026-11-01 00:00 UTC: the start of November in UTC. */
const NOV = Date.UTC(2026, 10, 1);
const NOW = Date.UTC(2027, 0, 1); // fired_at: wall clock, unrelated to event time

function budget(over: Partial<Budget> = {}): Budget {
  return {
    budget_id: 'b1',
    scope: 'team',
    scope_id: 'search',
    period: 'month',
    time_zone: 'UTC',
    unit: 'usd',
    amount: 1000n * USD,
    thresholds: [50, 80, 100],
    description: '',
    ...over,
  };
}

let seq = 0;
function ev(occurred_at: number, cost: bigint, over: Partial<BudgetEvent> = {}): BudgetEvent {
  seq++;
  return {
    event_id: `ev-${seq}`,
    occurred_at,
    org_id: 'acme',
    team_id: 'search',
    project_id: null,
    user_id: null,
    cost_nanousd: cost,
    tokens: 0n,
    ...over,
  };
}

function ledger(...budgets: Budget[]): BudgetLedger {
  const l = new BudgetLedger({ detector: 'test' });
  l.setBudgets(budgets.length > 0 ? budgets : [budget()]);
  return l;
}

const thresholdId = (id: string, start: number, t: number): string =>
  alertId('budget_threshold', [id, start, t]);
const kinds = (alerts: Alert[]): string[] =>
  alerts.map((a) => `${a.kind}:${a.budget?.threshold_percent ?? ''}`);

describe('threshold alerts', () => {
  test('fire on exactly the event that crosses: not before, not after', () => {
    const l = ledger();
    expect(l.add(0, ev(NOV + H, 400n * USD), NOW)).toEqual([]);
    const crossing = ev(NOV + 2 * H, 200n * USD);
    const alerts = l.add(0, crossing, NOW);
    expect(alerts).toHaveLength(1);
    const a = alerts[0] as Alert;
    expect(a).toMatchObject({
      alert_id: thresholdId('b1', NOV, 50),
      kind: 'budget_threshold',
      severity: 'info',
      fired_at: NOW,
      org_id: 'acme',
      team_id: 'search',
      scope: 'team',
      user_id: null,
      project_id: null,
      window_start: NOV,
      window_end: NOV + 2 * H + 1,
      observed_cost_nanousd: 600n * USD,
      expected_cost_nanousd: 0n,
      observed_tokens: 0n,
      score: 0.6,
      detector: 'test',
      top_contributors: [],
      budget: {
        budget_id: 'b1',
        period: 'month',
        period_start: NOV,
        period_end: Date.UTC(2026, 11, 1),
        time_zone: 'UTC',
        unit: 'usd',
        limit: 1000n * USD,
        spent: 600n * USD,
        threshold_percent: 50,
        burn_rate: null,
        burn_window: null,
        forecast_exhausted_at: null,
      },
    });
    expect(a.rule).toBe(`spent >= 50% of the monthly budget (crossed by event ${crossing.event_id})`);
    expect(a.message).toBe(
      'team search has spent $600 (60%) of its $1,000 monthly budget for November 2026 (UTC)',
    );
    expect(l.add(0, ev(NOV + 3 * H, 100n * USD), NOW)).toEqual([]);
    expect(l.spent('b1', NOV + 3 * H)).toBe(700n * USD);
  });

  test('an event that crosses two thresholds fires both, each with its severity', () => {
    const l = ledger();
    const alerts = l.add(0, ev(NOV + H, 850n * USD), NOW);
    expect(alerts.map((a) => [a.budget?.threshold_percent, a.severity])).toEqual([
      [50, 'info'],
      [80, 'warning'],
    ]);
    const over = l.add(0, ev(NOV + 2 * H, 150n * USD), NOW);
    expect(over.map((a) => [a.budget?.threshold_percent, a.severity])).toEqual([[100, 'critical']]);
  });

  test('exactly at the threshold counts as reached', () => {
    const l = ledger();
    expect(kinds(l.add(0, ev(NOV + H, 500n * USD - 1n), NOW))).toEqual([]);
    expect(kinds(l.add(0, ev(NOV + H, 1n), NOW))).toEqual(['budget_threshold:50']);
  });

  test('markFired suppresses an alert already recorded (a restart)', () => {
    const l = ledger();
    l.markFired([thresholdId('b1', NOV, 50)]);
    expect(l.add(0, ev(NOV + H, 600n * USD), NOW)).toEqual([]);
    expect(kinds(l.add(0, ev(NOV + H, 200n * USD), NOW))).toEqual(['budget_threshold:80']);
  });

  test('restart mid-period: seeded spend neither re-fires 50 % nor forgets it; 80 % fires when crossed', () => {
    const before = ledger();
    const fired = [
      ...before.add(0, ev(NOV + H, 300n * USD), NOW),
      ...before.add(0, ev(NOV + 2 * H, 300n * USD), NOW),
    ];
    expect(kinds(fired)).toEqual(['budget_threshold:50']);

    const after = ledger();
    after.markFired(fired.map((a) => a.alert_id));
    after.seed(0, 'b1', NOV, 600n * USD, [
      [NOV + H, 300n * USD],
      [NOV + 2 * H, 300n * USD],
    ]);
    expect(after.spent('b1', NOV + 3 * H)).toBe(600n * USD);
    expect(after.add(0, ev(NOV + 3 * H, 10n * USD), NOW)).toEqual([]);
    const crossing = after.add(0, ev(NOV + 4 * H, 200n * USD), NOW);
    expect(kinds(crossing)).toEqual(['budget_threshold:80']);
    expect(crossing[0]?.budget?.spent).toBe(810n * USD);
  });

  test('a threshold reached while the detector was down fires at the next event (catch-up)', () => {
    const l = ledger();
    l.seed(0, 'b1', NOV, 600n * USD, []);
    const alerts = l.add(0, ev(NOV + 3 * H, 1n * USD), NOW);
    expect(kinds(alerts)).toEqual(['budget_threshold:50']);
    expect(alerts[0]?.rule).toContain('reached before this event');
    expect(l.add(0, ev(NOV + 4 * H, 1n * USD), NOW)).toEqual([]);
  });

  test('seeding twice replaces, it does not add', () => {
    const l = ledger();
    l.seed(0, 'b1', NOV, 300n * USD, []);
    l.seed(0, 'b1', NOV, 300n * USD, []);
    l.seed(1, 'b1', NOV + 5 * DAY, 100n * USD, []); // any instant of the period names it
    expect(l.spent('b1', NOV)).toBe(400n * USD);
  });

  test('tokens budgets count tokens, not dollars', () => {
    const l = ledger(budget({ unit: 'tokens', amount: 1_000_000n, period: 'week' }));
    expect(l.add(0, ev(NOV + H, 999n * USD, { tokens: 400_000n }), NOW)).toEqual([]);
    const alerts = l.add(0, ev(NOV + 2 * H, 0n, { tokens: 100_000n }), NOW);
    expect(kinds(alerts)).toEqual(['budget_threshold:50']);
    expect(alerts[0]).toMatchObject({ observed_tokens: 500_000n, observed_cost_nanousd: 0n });
    // 2026-11-01 is a Sunday: its week began on Monday 26 October.
    expect(alerts[0]?.message).toBe(
      'team search has used 500,000 tokens (50%) of its 1,000,000-token weekly budget for week of 2026-10-26 (UTC)',
    );
  });

  test('project and user budgets match by project_id and user_id, across teams', () => {
    const l = ledger(
      budget({ budget_id: 'p', scope: 'project', scope_id: 'checkout', amount: 100n * USD }),
      budget({ budget_id: 'u', scope: 'user', scope_id: 'alice@example.com', amount: 100n * USD }),
      budget({ budget_id: 't', scope: 'team', scope_id: 'ads', amount: 100n * USD }),
    );
    expect(l.add(0, ev(NOV + H, 30n * USD, { team_id: 'search', project_id: 'checkout' }), NOW)).toEqual([]);
    const p = l.add(1, ev(NOV + H, 30n * USD, { team_id: 'payments', project_id: 'checkout' }), NOW);
    expect(p.map((a) => [a.budget?.budget_id, a.scope, a.project_id, a.user_id, a.team_id])).toEqual([
      ['p', 'project', 'checkout', null, 'payments'],
    ]);
    expect(p[0]?.message).toBe(
      'project checkout has spent $60.00 (60%) of its $100 monthly budget for November 2026 (UTC)',
    );
    const u = l.add(0, ev(NOV + H, 70n * USD, { team_id: 'search', user_id: 'alice@example.com' }), NOW);
    expect(u.map((a) => [a.budget?.budget_id, a.scope, a.user_id, a.budget?.threshold_percent])).toEqual([
      ['u', 'user', 'alice@example.com', 50],
    ]);
    expect(l.spent('p', NOV)).toBe(60n * USD);
    expect(l.spent('u', NOV)).toBe(70n * USD);
    expect(l.spent('t', NOV)).toBe(0n);
  });

  test('a late event counts toward its own (previous) period; one older than that is ignored', () => {
    const l = ledger();
    const DEC = Date.UTC(2026, 11, 1);
    l.add(0, ev(NOV + H, 400n * USD), NOW);
    l.add(0, ev(DEC + H, 100n * USD), NOW);
    const late = l.add(0, ev(DEC - MIN, 200n * USD), NOW);
    expect(late.map((a) => [a.budget?.period_start, a.budget?.threshold_percent, a.budget?.spent])).toEqual([
      [NOV, 50, 600n * USD],
    ]);
    expect(late[0]?.alert_id).toBe(thresholdId('b1', NOV, 50));
    expect(l.spent('b1', NOV)).toBe(600n * USD);
    expect(l.spent('b1', DEC)).toBe(100n * USD);
    expect(l.add(0, ev(Date.UTC(2026, 9, 31), 900n * USD), NOW)).toEqual([]);
    expect(l.tooLate).toBe(1);
  });

  test('a new amount keeps the spend and checks the thresholds it now passes at the next event', () => {
    const l = ledger();
    l.add(0, ev(NOV + H, 600n * USD), NOW); // 50 % of $1,000
    expect(l.setBudgets([budget({ amount: 700n * USD })])).toEqual([]);
    expect(l.spent('b1', NOV)).toBe(600n * USD);
    expect(kinds(l.add(0, ev(NOV + 2 * H, 1n * USD), NOW))).toEqual(['budget_threshold:80']);
    // Another zone changes what the period is: the budget starts over and needs seeding.
    expect(l.setBudgets([budget({ amount: 700n * USD, time_zone: 'Europe/Berlin' })])).toEqual(['b1']);
    expect(l.spent('b1', NOV + 2 * H)).toBe(0n);
  });

  test('dropPartition forgets that partition’s share', () => {
    const l = ledger();
    l.add(0, ev(NOV + H, 300n * USD), NOW);
    expect(kinds(l.add(1, ev(NOV + H, 300n * USD), NOW))).toEqual(['budget_threshold:50']);
    l.dropPartition(1);
    expect(l.spent('b1', NOV)).toBe(300n * USD);
    expect(l.add(0, ev(NOV + 2 * H, 400n * USD), NOW)).toEqual([]); // 70 %: 50 % already fired
    expect(kinds(l.add(0, ev(NOV + 3 * H, 100n * USD), NOW))).toEqual(['budget_threshold:80']);
  });

  test('a day budget across the 25 h Berlin day collects all 25 hours', () => {
    const l = ledger(budget({ period: 'day', time_zone: 'Europe/Berlin', amount: 100n * USD }));
    const first = Date.UTC(2026, 9, 24, 22); // 00:00 CEST on Sunday 2026-10-25
    l.add(0, ev(first, 10n * USD), NOW);
    l.add(0, ev(first + 24 * H + 30 * MIN, 10n * USD), NOW); // 23:30 CET, the 25th hour
    l.add(0, ev(first + 25 * H, 10n * USD), NOW); // 00:00 CET on Monday: the next day
    expect(l.spent('b1', first)).toBe(20n * USD);
    expect(l.spent('b1', first + 25 * H)).toBe(10n * USD);
    const alerts = l.add(0, ev(first + 12 * H, 30n * USD), NOW);
    expect(alerts[0]?.message).toBe(
      'team search has spent $50.00 (50%) of its $100 daily budget for 2026-10-25 (Europe/Berlin)',
    );
    expect([alerts[0]?.budget?.period_start, alerts[0]?.budget?.period_end]).toEqual([first, first + 25 * H]);
  });

  test('invalid budgets are refused, naming the budget and the value', () => {
    const l = new BudgetLedger({ detector: 'test' });
    expect(() => l.setBudgets([budget({ time_zone: 'Mars/Base' })])).toThrow('"Mars/Base"');
    expect(() => l.setBudgets([budget({ amount: 0n })])).toThrow('budget b1: invalid amount 0');
  });
});

describe('burn-rate alerts', () => {
  test('the windows scale with the period like the workbook’s 30-day numbers', () => {
    const [fast, slow] = DEFAULT_BUDGET_SETTINGS.burnTiers;
    if (fast === undefined || slow === undefined) throw new Error('two tiers expected');
    expect(burnWindows(fast, 30 * DAY)).toEqual({ longMs: 60 * MIN, shortMs: 5 * MIN });
    expect(burnWindows(slow, 30 * DAY)).toEqual({ longMs: 360 * MIN, shortMs: 30 * MIN });
    expect(burnWindows(fast, DAY)).toEqual({ longMs: 5 * MIN, shortMs: 1 * MIN });
    expect(burnWindows(slow, DAY)).toEqual({ longMs: 12 * MIN, shortMs: 1 * MIN });
    expect(burnWindows(slow, 7 * DAY)).toEqual({ longMs: 84 * MIN, shortMs: 7 * MIN });
  });

  // November has 30 days; $43,200 a month is $1 a minute.
  const B = budget({ amount: 43_200n * USD, thresholds: [] });
  const START = NOV + 10 * DAY;

  /** Feeds one minute of spend per entry (dollars, to the nano-dollar; 0 = quiet), evaluating after each. */
  function run(l: BudgetLedger, from: number, dollars: readonly number[]): Alert[] {
    const out: Alert[] = [];
    dollars.forEach((d, i) => {
      const m = from + i * MIN;
      if (d > 0) out.push(...l.add(0, ev(m + 30_000, BigInt(Math.round(d * 1e9))), NOW));
      out.push(...l.evaluate(m + MIN, NOW));
    });
    return out;
  }
  const fastBurns = (alerts: Alert[]): Alert[] =>
    alerts.filter((a) => a.kind === 'budget_burn_rate' && a.rule.startsWith('fast'));
  const repeat = (n: number, d: number): number[] => Array<number>(n).fill(d);

  test('the fast tier fires once per episode and only again after a quiet long window', () => {
    const l = ledger(B);
    // 2 h on pace, then 60 min at 20×: the 60-minute window holds 60 + 19k dollars after k minutes, at or
    // above 14.4 × 60 = 864 from k = 43 on (the 5-minute window is at 20× from the first minutes).
    expect(run(l, START - 120 * MIN, repeat(120, 1))).toEqual([]);
    const burst1 = fastBurns(run(l, START, repeat(60, 20)));
    expect(burst1).toHaveLength(1);
    const a = burst1[0] as Alert;
    expect(a.window_end).toBe(START + 43 * MIN);
    expect(a.alert_id).toBe(alertId('budget_burn_rate', ['b1', NOV, 'fast', START + 42 * MIN]));
    expect(a).toMatchObject({
      severity: 'critical',
      window_start: START - 17 * MIN,
      observed_cost_nanousd: (17n + 43n * 20n) * USD,
      expected_cost_nanousd: 60n * USD,
    });
    expect(a.budget?.burn_window).toBe('1 h / 5 min');
    expect(a.budget?.burn_rate).toBeCloseTo(877 / 60, 6);
    expect(a.message).toBe(
      'team search is spending 14.6× the sustainable pace of its $43,200 monthly budget ($877 in the last 1 h, $100 in the last 5 min): at this pace the whole budget lasts 2.1 d; 2% spent so far in November 2026',
    );
    // 20 quiet minutes, then 10 minutes at 100×: the condition holds again within the cooldown.
    expect(fastBurns(run(l, START + 60 * MIN, [...repeat(20, 0), ...repeat(10, 100)]))).toEqual([]);
    // Quiet for 2 h (more than the 60-minute window), then another burst: a new episode.
    const burst3 = fastBurns(run(l, START + 90 * MIN, [...repeat(120, 0), ...repeat(10, 100)]));
    expect(burst3).toHaveLength(1);
    expect(burst3[0]?.alert_id).not.toBe(a.alert_id);
  });

  test('after a restart the episode replayed from seeded minutes has the same alert id', () => {
    const minutes = [...repeat(120, 1), ...repeat(50, 20)];
    const from = START - 120 * MIN;
    const before = fastBurns(run(ledger(B), from, minutes));
    expect(before).toHaveLength(1);

    const after = ledger(B);
    after.seed(
      0,
      'b1',
      NOV,
      BigInt(minutes.reduce((s, d) => s + d, 0)) * USD,
      minutes.map((d, i) => [from + i * MIN, BigInt(d) * USD] as const),
    );
    const replayed = fastBurns(after.evaluate(from + minutes.length * MIN, NOW));
    expect(replayed.map((a) => a.alert_id)).toEqual(before.map((a) => a.alert_id));
    // Marked as recorded: nothing.
    const marked = ledger(B);
    marked.markFired(before.map((a) => a.alert_id));
    marked.seed(
      0,
      'b1',
      NOV,
      0n,
      minutes.map((d, i) => [from + i * MIN, BigInt(d) * USD] as const),
    );
    expect(fastBurns(marked.evaluate(from + minutes.length * MIN, NOW))).toEqual([]);
  });

  test('no burn-rate alert at a steady pace below the budget', () => {
    const l = ledger(B);
    // 3 days at 90 % of the sustainable pace, minute by minute.
    expect(run(l, NOV, repeat(3 * 24 * 60, 0.9))).toEqual([]);
    expect(l.spent('b1', NOV)).toBe(3n * 24n * 60n * 900_000_000n);
  });
});

describe('forecast alerts', () => {
  test('fires once with the projected date when the pace exhausts the budget before the period ends', () => {
    // $30,000 for November, spent at $100 an hour ($2,400 a day).
    const l = ledger(budget({ amount: 30_000n * USD, thresholds: [] }));
    const alerts: Alert[] = [];
    for (let h = 0; h < 72; h++) {
      alerts.push(...l.add(0, ev(NOV + h * H + 30 * MIN, 100n * USD), NOW));
      alerts.push(...l.evaluate(NOV + (h + 1) * H, NOW));
    }
    expect(alerts.map((a) => a.kind)).toEqual(['budget_forecast']);
    const a = alerts[0] as Alert;
    // Not before a day of the month has passed (min(10 % of 30 days, 24 h)).
    expect(a.window_end).toBe(NOV + DAY);
    expect(a.alert_id).toBe(alertId('budget_forecast', ['b1', NOV]));
    // $27,600 left at $2,400 a day: 11.5 days after 2 November 00:00.
    expect(a.budget?.forecast_exhausted_at).toBe(Date.UTC(2026, 10, 13, 12));
    expect(a).toMatchObject({
      severity: 'warning',
      window_start: NOV,
      observed_cost_nanousd: 2_400n * USD,
      expected_cost_nanousd: 1_000n * USD,
      score: 2.4,
    });
    expect(a.message).toBe(
      'team search is on pace to exhaust its $30,000 monthly budget on 2026-11-13 (projected $72,000 by the end of November 2026); $2,400 (8%) spent so far',
    );
  });

  test('after the first day the pace is the trailing 24 h', () => {
    // A week budget of $7,000 (Monday 23 November): two days at $25/h, then $100/h.
    const WEEK = Date.UTC(2026, 10, 23);
    const l = ledger(budget({ period: 'week', amount: 7_000n * USD, thresholds: [] }));
    const alerts: Alert[] = [];
    for (let h = 0; h < 72; h++) {
      const dollars = h < 48 ? 25n : 100n;
      alerts.push(...l.add(0, ev(WEEK + h * H + 30 * MIN, dollars * USD), NOW));
      alerts.push(...l.evaluate(WEEK + (h + 1) * H, NOW));
    }
    expect(alerts.map((a) => a.kind)).toEqual(['budget_forecast']);
    const a = alerts[0] as Alert;
    // At 07:00 on day 3 the last 24 h hold 17 × $25 + 7 × $100 = $1,125; $5,100 are left: 108.8 h.
    expect(a.window_end).toBe(WEEK + 55 * H);
    expect(a.window_start).toBe(WEEK + 31 * H);
    expect(a.observed_cost_nanousd).toBe(1_125n * USD);
    expect(a.budget?.forecast_exhausted_at).toBe(WEEK + 55 * H + 391_680_000);
    expect(a.message).toMatch(/ on 2026-11-29 \(projected \$\d[\d,]* by the end of the week of 2026-11-23\)/);
  });

  test('no forecast while the pace fits the budget, and none once it is spent', () => {
    const l = ledger(budget({ amount: 30_000n * USD, thresholds: [] }));
    const alerts: Alert[] = [];
    for (let h = 0; h < 72; h++) {
      alerts.push(...l.add(0, ev(NOV + h * H + 30 * MIN, 40n * USD), NOW)); // $960 a day
      alerts.push(...l.evaluate(NOV + (h + 1) * H, NOW));
    }
    expect(alerts).toEqual([]);
    const spent = ledger(budget({ amount: 100n * USD, thresholds: [] }));
    spent.add(0, ev(NOV + H, 100n * USD), NOW);
    expect(spent.evaluate(NOV + 2 * DAY, NOW)).toEqual([]);
  });
});

describe('budget input', () => {
  test('USD amounts are exact nano-USD, from strings and YAML numbers alike', () => {
    expect(parseUsd('0.1')).toBe(100_000_000n);
    expect(parseUsd(0.1)).toBe(100_000_000n);
    expect(parseUsd('5000')).toBe(5_000n * USD);
    expect(parseUsd(1200.5)).toBe(1_200_500_000_000n);
    expect(parseUsd('0.000000001')).toBe(1n);
    expect(parseUsd('9223372036.854775807')).toBe(9_223_372_036_854_775_807n);
    for (const bad of ['0', '-1', '1.0000000001', '1e3', '5,000', '$5', '', '9223372036.854775808', NaN]) {
      expect(parseUsd(bad)).toBeUndefined();
    }
    expect(usdDecimal(100_000_000n)).toBe('0.1');
    expect(usdDecimal(5_000n * USD)).toBe('5000');
    expect(parseTokens(2_000_000)).toBe(2_000_000n);
    expect(parseTokens('12345678901234567890')).toBeUndefined(); // above Int64
    expect(parseTokens(2 ** 60)).toBeUndefined(); // a YAML number past 2^53 is not exact: quote it
    expect(parseTokens('1152921504606846976')).toBe(2n ** 60n);
  });

  test('a YAML file: defaults, a file-wide zone, default ids', () => {
    const budgets = parseBudgetsYaml(
      [
        'time_zone: Europe/Berlin',
        'budgets:',
        '  - { team: search, period: month, amount_usd: "5000" }',
        '  - { id: x, project: checkout, period: week, tokens: 1000, thresholds: [100, 80, 80], time_zone: UTC }',
      ].join('\n'),
      'b.yaml',
    );
    expect(budgets).toEqual([
      {
        budget_id: 'team:search:month',
        scope: 'team',
        scope_id: 'search',
        period: 'month',
        time_zone: 'Europe/Berlin',
        unit: 'usd',
        amount: 5_000n * USD,
        thresholds: [50, 80, 100],
        description: '',
      },
      {
        budget_id: 'x',
        scope: 'project',
        scope_id: 'checkout',
        period: 'week',
        time_zone: 'UTC',
        unit: 'tokens',
        amount: 1000n,
        thresholds: [80, 100],
        description: '',
      },
    ]);
  });

  test('every problem of a file at once, each naming the field path and the value', () => {
    const yaml = [
      'budgets:',
      '  - { team: a, period: month, amount_usd: "1" }',
      '  - { team: a, user: b, period: quarter, amount_usd: "1", tokens: 5 }',
      '  - { project: p, period: day, amount_usd: "-3", colour: red }',
      '  - { team: a, period: month, tokens: 9 }',
    ].join('\n');
    expect(() => parseBudgetsYaml(yaml, 'b.yaml')).toThrow(
      [
        'invalid budgets file b.yaml (6 problems):',
        '  budgets[1].period: "quarter" is not one of day, week, month',
        '  budgets[1]: needs exactly one of team, project, user, got team and user',
        '  budgets[1]: needs exactly one of amount_usd, tokens, got amount_usd and tokens',
        '  budgets[2].amount_usd: "-3" is not a positive amount of USD (a decimal with at most 9 decimals, like "5000" or "12.50")',
        '  budgets[2].colour: unknown field (value "red")',
        '  budgets[3]: id "team:a:month" is also the id of budgets[0]',
      ].join('\n'),
    );
    expect(() => parseBudgetsYaml('budgets: []', 'e.yaml')).toThrow('budgets: the list is empty');
    expect(() => parseBudgetsYaml('- team: a', 'l.yaml')).toThrow('is not a mapping with a "budgets:" list');
  });
});
