/**
 * The BI views of docs/sql.md reconcile EXACTLY with the raw events. A deterministic set of events (priced and
 * unpriced, over three days, plus events on each budget's period boundary) goes through Kafka and the real
 * ingest consumer into a private database; then every view is compared row by row with the same grouping
 * computed from usage_events, and its totals with what the events say in TypeScript (catalog pricing, no
 * ClickHouse). budget_status is checked against periods.ts and raw sums over its own period; alert_history
 * against the alerts table.
 */
import { createIngest } from '../../consumers/ingest';
import { alertRow } from '../../consumers/alerts/sink';
import { upsertBudgets, usdDecimal } from '../../consumers/detect/budget-store';
import type { Budget } from '../../consumers/detect/budgets';
import { periodBounds } from '../../consumers/detect/periods';
import { loadCatalog, priceEvent } from '../../consumers/pricing';
import { waitUntil } from '../../infra/process';
import { ensureSchema } from '../../migrations/runner';
import type { Alert } from '../../schemas/alert/types';
import type { UsageEvent } from '../../schemas/usage-event/types';
import { useTestDatabase } from '../helpers/clickhouse';
import { testLogger } from '../helpers/env';
import { useTestKafka } from '../helpers/kafka';
import { encodeEvents, expectedTotals, makeEvent, produce } from '../helpers/usage';

const k = useTestKafka();
const db = useTestDatabase();
const MIN = 60_000;
const DAY = 86_400_000;
const USD = 1_000_000_000n;
const NOW = Date.now();

type Row = Record<string, string>;
async function rows(query: string, params: Record<string, unknown> = {}): Promise<Row[]> {
  const rs = await db.client().query({ query, query_params: params, format: 'JSONEachRow' });
  return rs.json<Row>();
}

const BUDGETS: Budget[] = [
  {
    budget_id: 'team-1-daily',
    scope: 'team',
    scope_id: 'team-1',
    period: 'day',
    time_zone: 'America/New_York',
    unit: 'usd',
    amount: 1_000n, // $0.000001: every threshold crossed
    thresholds: [50, 80, 100],
    description: 'tiny',
  },
  {
    budget_id: 'search-weekly-tokens',
    scope: 'project',
    scope_id: 'search',
    period: 'week',
    time_zone: 'Asia/Kolkata',
    unit: 'tokens',
    amount: 10n ** 12n,
    thresholds: [50],
    description: '',
  },
  {
    budget_id: 'user-5-monthly',
    scope: 'user',
    scope_id: 'user-5',
    period: 'month',
    time_zone: 'Europe/Berlin',
    unit: 'usd',
    amount: 5000n * USD,
    thresholds: [50, 80, 100],
    description: '',
  },
  // zones with unusual offsets and rules: whole-period spend of the same team under other calendars
  ...(
    [
      ['team-2', 'day', 'America/Santiago'],
      ['team-2', 'week', 'Pacific/Chatham'],
      ['team-2', 'month', 'Australia/Lord_Howe'],
      ['team-2', 'day', 'Asia/Kathmandu'],
    ] as const
  ).map(([team, period, zone]): Budget => ({
    budget_id: `${team}-${period}-${zone}`,
    scope: 'team',
    scope_id: team,
    period,
    time_zone: zone,
    unit: 'usd',
    amount: 1n * USD,
    thresholds: [50, 80, 100],
    description: '',
  })),
  {
    budget_id: 'idle-team',
    scope: 'team',
    scope_id: 'nobody',
    period: 'month',
    time_zone: 'UTC',
    unit: 'usd',
    amount: 1n * USD,
    thresholds: [100],
    description: 'no usage at all',
  },
];

/** The budgets that get events on their period's boundary. */
const EDGED = new Set(['team-1-daily', 'search-weekly-tokens', 'user-5-monthly']);

/** Three days of events, then for each budget one at its period start, one 1 ms before it, one 2 min ago. */
function makeEvents(): UsageEvent[] {
  const base = NOW - 3 * DAY;
  const spread = Array.from({ length: 2500 }, (_, i) => ({
    ...makeEvent(i, base, 'bi'),
    occurred_at: base + ((i * 7919) % (3 * 86_400 - 600)) * 1000 + (i % 1000),
  }));
  const edges = BUDGETS.filter((b) => EDGED.has(b.budget_id)).flatMap((b, j) => {
    const { start } = periodBounds(NOW, b.period, b.time_zone);
    const scope =
      b.scope === 'team'
        ? { team_id: b.scope_id }
        : b.scope === 'project'
          ? { project_id: b.scope_id }
          : { user_id: b.scope_id };
    return [start, start - 1, NOW - 2 * MIN].map((at, n) => ({
      ...makeEvent(10_000 + j * 3 + n, base, 'edge'),
      ...scope,
      occurred_at: at,
    }));
  });
  return [...spread, ...edges];
}

const EVENTS = makeEvents();

beforeAll(async () => {
  await ensureSchema(db.client(), testLogger());
  const topic = await k.topic(2);
  const dlqTopic = await k.topic(1);
  await produce(k.kafka, topic, encodeEvents(EVENTS));
  const ingest = createIngest({
    kafka: k.kafka,
    clickhouse: db.client(),
    logger: testLogger(),
    catalog: loadCatalog(),
    topic,
    groupId: k.groupId(),
    dlqTopic,
    batchMaxWaitMs: 100,
    batchMaxRows: 1000,
  });
  await ingest.start();
  try {
    await waitUntil(
      'every event ingested',
      async () => {
        const s = await ingest.metrics.snapshot();
        return (s.written ?? 0) + (s.dead_letter ?? 0) >= EVENTS.length;
      },
      { timeoutMs: 90_000 },
    );
    expect((await ingest.metrics.snapshot()).written).toBe(EVENTS.length);
  } finally {
    await ingest.stop();
  }
  await upsertBudgets(db.client(), BUDGETS);
});

const sum = (rs: readonly Row[], col: string): bigint => rs.reduce((a, r) => a + BigInt(r[col] ?? '0'), 0n);

test('spend_by_team_day: every (day, team) row equals the raw events; totals equal the events priced in TS', async () => {
  const view = await rows(`
    SELECT toString(day) AS day, team_id, requests, errors, input_tokens, output_tokens, cost_nanousd,
           toString(cost_usd) AS cost_usd, unpriced_requests
    FROM spend_by_team_day ORDER BY day, team_id`);
  const raw = await rows(`
    SELECT toString(toDate(occurred_at)) AS day, team_id, count() AS requests, countIf(status = 'error') AS errors,
           sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens, sum(cost_nanousd) AS cost_nanousd,
           countIf(cost_status = 'unpriced') AS unpriced_requests
    FROM usage_events GROUP BY day, team_id ORDER BY day, team_id`);
  expect(view.map(({ cost_usd: _usd, ...r }) => r)).toEqual(raw);
  for (const r of view) expect(r.cost_usd).toBe(usdDecimal(BigInt(r.cost_nanousd ?? '')));
  expect(new Set(view.map((r) => r.day)).size).toBeGreaterThanOrEqual(3);

  const want = expectedTotals(EVENTS);
  process.stdout.write(
    `[bi-views] spend_by_team_day: ${view.length} rows, requests=${sum(view, 'requests')} cost_nanousd=${sum(view, 'cost_nanousd')} (events: ${want.events}, ${want.cost_nanousd})\n`,
  );
  expect(sum(view, 'requests')).toBe(BigInt(want.events));
  expect(sum(view, 'errors')).toBe(BigInt(want.errors));
  expect(sum(view, 'input_tokens')).toBe(want.input_tokens);
  expect(sum(view, 'output_tokens')).toBe(want.output_tokens);
  expect(sum(view, 'cost_nanousd')).toBe(want.cost_nanousd);
  expect(want.cost_nanousd).toBeGreaterThan(0n);
});

test('spend_by_model_day: every (day, provider, model) row, all token classes', async () => {
  const view = await rows(`
    SELECT toString(day) AS day, provider, model, requests, errors, input_tokens, cache_read_input_tokens,
           cache_creation_input_tokens, output_tokens, reasoning_output_tokens, cost_nanousd, unpriced_requests,
           toString(cost_usd) AS cost_usd
    FROM spend_by_model_day ORDER BY day, provider, model`);
  const raw = await rows(`
    SELECT toString(toDate(occurred_at)) AS day, provider, request_model AS model, count() AS requests,
           countIf(status = 'error') AS errors, sum(input_tokens) AS input_tokens,
           sum(cache_read_input_tokens) AS cache_read_input_tokens,
           sum(cache_creation_input_tokens) AS cache_creation_input_tokens, sum(output_tokens) AS output_tokens,
           sum(reasoning_output_tokens) AS reasoning_output_tokens, sum(cost_nanousd) AS cost_nanousd,
           countIf(cost_status = 'unpriced') AS unpriced_requests
    FROM usage_events GROUP BY day, provider, model ORDER BY day, provider, model`);
  expect(view.map(({ cost_usd: _usd, ...r }) => r)).toEqual(raw);
  for (const r of view) expect(r.cost_usd).toBe(usdDecimal(BigInt(r.cost_nanousd ?? '')));
  const want = expectedTotals(EVENTS);
  expect(sum(view, 'cache_read_input_tokens')).toBe(want.cache_read_input_tokens);
  expect(sum(view, 'cache_creation_input_tokens')).toBe(want.cache_creation_input_tokens);
  expect(sum(view, 'reasoning_output_tokens')).toBe(want.reasoning_output_tokens);
  expect(sum(view, 'cost_nanousd')).toBe(want.cost_nanousd);
});

test('spend_by_user_day: every (day, team, user) row', async () => {
  const view = await rows(`
    SELECT toString(day) AS day, team_id, user_id, requests, input_tokens, output_tokens, cost_nanousd,
           toString(cost_usd) AS cost_usd
    FROM spend_by_user_day ORDER BY day, team_id, user_id`);
  const raw = await rows(`
    SELECT toString(toDate(occurred_at)) AS day, team_id, user_id, count() AS requests,
           sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens, sum(cost_nanousd) AS cost_nanousd
    FROM usage_events GROUP BY day, team_id, user_id ORDER BY day, team_id, user_id`);
  expect(view.map(({ cost_usd: _usd, ...r }) => r)).toEqual(raw);
  for (const r of view) expect(r.cost_usd).toBe(usdDecimal(BigInt(r.cost_nanousd ?? '')));
  expect(sum(view, 'cost_nanousd')).toBe(expectedTotals(EVENTS).cost_nanousd);
});

test('unpriced_usage: the unpriced events by day, provider and model, and nothing else', async () => {
  const view = await rows(`
    SELECT toString(day) AS day, provider, model, requests, teams, input_tokens, cache_read_input_tokens,
           cache_creation_input_tokens, output_tokens, reasoning_output_tokens,
           toString(first_seen) AS first_seen, toString(last_seen) AS last_seen, arraySort(team_ids) AS team_ids
    FROM unpriced_usage ORDER BY day, provider, model`);
  const raw = await rows(`
    SELECT toString(toDate(occurred_at)) AS day, provider, request_model AS model, count() AS requests,
           uniqExact(team_id) AS teams, sum(input_tokens) AS input_tokens,
           sum(cache_read_input_tokens) AS cache_read_input_tokens,
           sum(cache_creation_input_tokens) AS cache_creation_input_tokens, sum(output_tokens) AS output_tokens,
           sum(reasoning_output_tokens) AS reasoning_output_tokens,
           toString(min(occurred_at)) AS first_seen, toString(max(occurred_at)) AS last_seen,
           arraySort(groupUniqArray(team_id)) AS team_ids
    FROM usage_events WHERE cost_status = 'unpriced' GROUP BY day, provider, model ORDER BY day, provider, model`);
  expect(view).toEqual(raw);
  const catalog = loadCatalog();
  const unpriced = EVENTS.filter((e) => priceEvent(catalog, e).cost_status === 'unpriced');
  expect(unpriced.length).toBeGreaterThan(0);
  expect(sum(view, 'requests')).toBe(BigInt(unpriced.length));
  expect(sum(view, 'input_tokens')).toBe(unpriced.reduce((a, e) => a + BigInt(e.input_tokens), 0n));
  expect(sum(view, 'output_tokens')).toBe(unpriced.reduce((a, e) => a + BigInt(e.output_tokens), 0n));
  // ... and the rollups' count of unpriced requests agrees
  const [byModel] = await rows('SELECT sum(unpriced_requests) AS n FROM spend_by_model_day');
  expect(byModel?.n).toBe(String(unpriced.length));
  expect(new Set(view.map((r) => `${r.provider}/${r.model}`))).toEqual(new Set(['acme/internal-model-x']));
});

const MEASURE: Readonly<Record<Budget['unit'], string>> = {
  usd: 'cost_nanousd',
  tokens: 'input_tokens + output_tokens',
};
const COLUMN: Readonly<Record<Budget['scope'], string>> = {
  team: 'team_id',
  project: 'project_id',
  user: 'user_id',
};

test('budget_status: the current period in each budget zone, spend equal to the raw events in it', async () => {
  const before = Date.now();
  const view = await rows(`
    SELECT budget_id, scope, scope_id, period, time_zone, unit, toString(period_first_day) AS period_first_day,
           toUnixTimestamp(period_start) * 1000 AS start_ms, toUnixTimestamp(period_end) * 1000 AS end_ms,
           amount, spent, remaining, spent_percent, toString(amount_usd) AS amount_usd,
           toString(spent_usd) AS spent_usd, toString(remaining_usd) AS remaining_usd, thresholds_crossed,
           elapsed_percent
    FROM budget_status ORDER BY budget_id`);
  const after = Date.now();
  expect(view.map((r) => r.budget_id)).toEqual(BUDGETS.map((b) => b.budget_id).sort());
  for (const b of BUDGETS) {
    const r = view.find((v) => v.budget_id === b.budget_id) as unknown as Record<string, unknown>;
    const start = Number(r.start_ms);
    const end = Number(r.end_ms);
    // The view's "now" is between before and after: its period is the one of either instant.
    const candidates = [
      periodBounds(before, b.period, b.time_zone),
      periodBounds(after, b.period, b.time_zone),
    ];
    expect(candidates).toContainEqual({ start, end });
    const [raw] = await rows(
      `SELECT sum(${MEASURE[b.unit]}) AS spent, count() AS n FROM usage_events
       WHERE ${COLUMN[b.scope]} = {id:String}
         AND occurred_at >= fromUnixTimestamp64Milli({start:Int64}, 'UTC')
         AND occurred_at < fromUnixTimestamp64Milli({end:Int64}, 'UTC')`,
      { id: b.scope_id, start, end },
    );
    const spent = BigInt(raw?.spent ?? '0');
    process.stdout.write(
      `[bi-views] budget_status ${b.budget_id}: ${new Date(start).toISOString()}..${new Date(end).toISOString()} spent=${String(r.spent)} raw=${spent} (${raw?.n} events)\n`,
    );
    expect(r).toMatchObject({
      scope: b.scope,
      scope_id: b.scope_id,
      period: b.period,
      time_zone: b.time_zone,
      unit: b.unit,
      amount: b.amount.toString(),
      spent: spent.toString(),
      remaining: (b.amount - spent).toString(),
      thresholds_crossed: b.thresholds.filter((t) => spent * 100n >= b.amount * BigInt(t)),
    });
    // In hundredths of a percent, as integers: the view rounds to two decimals, this truncates (at most 1 apart;
    // compared as floats the difference could be 0.010000000000000009).
    expect(
      Math.abs(Math.round(Number(r.spent_percent) * 100) - Number((spent * 10_000n) / b.amount)),
    ).toBeLessThanOrEqual(1);
    if (b.unit === 'usd') {
      expect(r).toMatchObject({
        amount_usd: usdDecimal(b.amount),
        spent_usd: usdDecimal(spent),
        remaining_usd: usdDecimal(b.amount - spent),
      });
    } else {
      expect(r).toMatchObject({ amount_usd: null, spent_usd: null, remaining_usd: null });
    }
    expect(Number(r.elapsed_percent)).toBeGreaterThanOrEqual(0);
    expect(Number(r.elapsed_percent)).toBeLessThanOrEqual(100);
    if (b.scope_id === 'nobody') expect(spent).toBe(0n);
    else if (EDGED.has(b.budget_id) && start === periodBounds(NOW, b.period, b.time_zone).start) {
      // the event at the period's first instant counts, the one 1 ms before it does not
      const [edge] = await rows(
        `SELECT countIf(occurred_at = fromUnixTimestamp64Milli({start:Int64}, 'UTC')) AS at_start,
                countIf(occurred_at = fromUnixTimestamp64Milli({before:Int64}, 'UTC')) AS just_before
         FROM usage_events WHERE ${COLUMN[b.scope]} = {id:String}`,
        { id: b.scope_id, start, before: start - 1 },
      );
      expect(edge).toEqual({ at_start: '1', just_before: '1' });
      expect(spent).toBeGreaterThan(0n);
    }
  }
  expect(view.find((r) => r.budget_id === 'team-1-daily')?.thresholds_crossed).toEqual([50, 80, 100]);
});

test('alert_history: one row per alert_id, its newest version; money exact', async () => {
  const t = NOW - DAY;
  const alert = (id: string, firedAt: number, cost: bigint, message: string): Alert => ({
    alert_id: id,
    kind: 'cost_spike',
    severity: 'critical',
    fired_at: firedAt,
    org_id: 'acme',
    team_id: 'team-1',
    scope: 'team',
    model: null,
    user_id: null,
    project_id: null,
    window_start: firedAt - 15 * MIN,
    window_end: firedAt,
    observed_cost_nanousd: cost,
    expected_cost_nanousd: 1n,
    observed_tokens: 1n,
    expected_tokens: 1n,
    score: 3,
    rule: 'r',
    budget: null,
    top_contributors: [],
    message,
    related_alert_id: null,
    detector: 'test',
  });
  const inserts = [
    [alert('a1', t, 10n ** 17n + 1n, 'first version'), alert('a2', t + MIN, 5n, 'a2')],
    [alert('a1', t + 2 * MIN, 10n ** 17n + 3n, 'newer version'), alert('a3', t + 3 * MIN, 7n, 'a3')],
  ];
  for (const values of inserts) {
    await db.client().insert({
      table: 'alerts',
      values: values.map(alertRow),
      format: 'JSONEachRow',
      clickhouse_settings: { async_insert: 0 },
    });
  }
  const view = await rows(
    'SELECT alert_id, message, observed_cost_nanousd, toString(observed_cost_usd) AS usd FROM alert_history ORDER BY alert_id',
  );
  const raw = await rows(`
    SELECT alert_id, argMax(message, fired_at) AS message, argMax(observed_cost_nanousd, fired_at) AS observed_cost_nanousd
    FROM alerts GROUP BY alert_id ORDER BY alert_id`);
  expect(view.map(({ usd: _usd, ...r }) => r)).toEqual(raw);
  expect(view.map((r) => r.message)).toEqual(['newer version', 'a2', 'a3']);
  expect(sum(view, 'observed_cost_nanousd')).toBe(10n ** 17n + 3n + 5n + 7n);
  expect(view[0]?.usd).toBe(usdDecimal(10n ** 17n + 3n));
  const [all] = await rows('SELECT count() AS n, uniqExact(alert_id) AS ids FROM alerts');
  expect(all).toEqual({ n: '4', ids: '3' });
});
