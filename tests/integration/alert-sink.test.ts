/**
 * The alert sink against the real broker and the real ClickHouse engine: alerts are published (key team_id,
 * alert_id header, Avro single-object) and recorded once per alert_id, money exact above 2^53; delivering the
 * same alerts again repeats them on the topic but not in the table; the detector's read-backs
 * (recordedAlertIds, openSpikes) answer from the table.
 */
import type { Producer } from 'kafkajs';
import { createClickHouse } from '../../lib/clickhouse';
import { ALERT_ID_HEADER, createAlertSink, openSpikes, recordedAlertIds } from '../../consumers/alerts';
import { ensureSchema } from '../../migrations/runner';
import { decodeAlert } from '../../schemas/alert/schema';
import type { Alert } from '../../schemas/alert/types';
import { useTestDatabase } from '../helpers/clickhouse';
import { testLogger, uniqueName } from '../helpers/env';
import { consumeN, useTestKafka } from '../helpers/kafka';

const k = useTestKafka();
const db = useTestDatabase();
let producer: Producer;

beforeAll(async () => {
  await ensureSchema(db.client(), testLogger());
  producer = k.kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
  await producer.connect();
});
afterAll(async () => {
  await producer.disconnect();
});

const BIG = 10n ** 17n; // $100M in nano-USD, above 2^53
const T0 = Date.UTC(2026, 10, 29, 12, 0);

function spike(id: string, team: string, firedAt: number, extra: Partial<Alert> = {}): Alert {
  return {
    alert_id: id,
    kind: 'cost_spike',
    severity: 'critical',
    fired_at: firedAt,
    org_id: 'acme',
    team_id: team,
    scope: 'team_model',
    model: 'claude-opus-4-1',
    user_id: null,
    project_id: null,
    window_start: firedAt - 16 * 60_000,
    window_end: firedAt - 60_000,
    observed_cost_nanousd: BIG + 1n,
    expected_cost_nanousd: 44_200_000_000n,
    observed_tokens: 2n ** 60n,
    expected_tokens: 1_000n,
    score: 9.3,
    rule: 'window 15m: observed >= 3x expected',
    budget: null,
    top_contributors: [
      { dimension: 'user', value: 'svc-indexer', cost_nanousd: BIG - 7n, share: 0.81 },
      { dimension: 'model', value: 'claude-opus-4-1', cost_nanousd: 12n, share: 0.19 },
    ],
    message: `${team} spent a lot`,
    related_alert_id: null,
    detector: 'tokenledger-detect/test',
    ...extra,
  };
}

function budget(id: string, team: string, firedAt: number): Alert {
  return {
    ...spike(id, team, firedAt),
    kind: 'budget_threshold',
    severity: 'warning',
    scope: 'project',
    model: null,
    project_id: 'search',
    org_id: null,
    expected_cost_nanousd: 0n,
    expected_tokens: 0n,
    top_contributors: [],
    budget: {
      budget_id: 'project:search:month',
      period: 'month',
      period_start: Date.UTC(2026, 10, 1),
      period_end: Date.UTC(2026, 11, 1),
      time_zone: 'Europe/Berlin',
      unit: 'usd',
      limit: BIG * 3n,
      spent: BIG * 2n + 5n,
      threshold_percent: 80,
      burn_rate: null,
      burn_window: null,
      forecast_exhausted_at: Date.UTC(2026, 10, 30, 6, 30, 0, 250),
    },
  };
}

async function rows<T>(query: string): Promise<T[]> {
  return (await db.client().query({ query, format: 'JSONEachRow' })).json<T>();
}

test('deliver publishes each alert (key team_id, alert_id header) and records it once, money exact', async () => {
  const topic = await k.topic(3);
  const sink = createAlertSink({ producer, clickhouse: db.client(), topic, logger: testLogger() });
  const alerts = [
    spike(uniqueName('s'), 'team-a', T0),
    budget(uniqueName('b'), 'team-b', T0 + 1000),
    spike(uniqueName('r'), 'team-a', T0 + 2000, { kind: 'spike_resolved', severity: 'info' }),
  ];
  await sink.deliver(alerts);

  const got = await consumeN({ ...k, topic, groupId: k.groupId(), count: 3, timeoutMs: 30_000 });
  const byId = new Map(got.map((c) => [c.message.headers?.[ALERT_ID_HEADER]?.toString() ?? '', c.message]));
  for (const a of alerts) {
    const m = byId.get(a.alert_id);
    expect(m?.key?.toString()).toBe(a.team_id);
    expect(decodeAlert(m?.value ?? Buffer.alloc(0)).value).toEqual(a);
  }

  const ids = alerts.map((a) => `'${a.alert_id}'`).join(',');
  const recorded = await rows<Record<string, unknown>>(
    `SELECT alert_id, kind, team_id, model, org_id, project_id, related_alert_id,
            toUnixTimestamp64Milli(fired_at) AS fired_at, toUnixTimestamp64Milli(window_start) AS window_start,
            observed_cost_nanousd, expected_cost_nanousd, observed_tokens,
            budget_id, budget_limit, budget_spent, threshold_percent,
            toUnixTimestamp64Milli(budget_period_start) AS budget_period_start,
            toUnixTimestamp64Milli(forecast_exhausted_at) AS forecast_exhausted_at, burn_rate,
            top_contributors
     FROM alerts WHERE alert_id IN (${ids}) ORDER BY fired_at`,
  );
  const [s, b] = alerts;
  expect(recorded).toEqual([
    {
      alert_id: s?.alert_id,
      kind: 'cost_spike',
      team_id: 'team-a',
      model: 'claude-opus-4-1',
      org_id: 'acme',
      project_id: '',
      related_alert_id: '',
      fired_at: String(T0),
      window_start: String(T0 - 16 * 60_000),
      observed_cost_nanousd: (BIG + 1n).toString(),
      expected_cost_nanousd: '44200000000',
      observed_tokens: (2n ** 60n).toString(),
      budget_id: '',
      budget_limit: '0',
      budget_spent: '0',
      threshold_percent: null,
      budget_period_start: null,
      forecast_exhausted_at: null,
      burn_rate: null,
      top_contributors: [
        { dimension: 'user', value: 'svc-indexer', cost_nanousd: (BIG - 7n).toString(), share: 0.81 },
        { dimension: 'model', value: 'claude-opus-4-1', cost_nanousd: '12', share: 0.19 },
      ],
    },
    expect.objectContaining({
      alert_id: b?.alert_id,
      kind: 'budget_threshold',
      org_id: '',
      model: '',
      project_id: 'search',
      budget_id: 'project:search:month',
      budget_limit: (BIG * 3n).toString(),
      budget_spent: (BIG * 2n + 5n).toString(),
      threshold_percent: 80,
      budget_period_start: String(Date.UTC(2026, 10, 1)),
      forecast_exhausted_at: String(Date.UTC(2026, 10, 30, 6, 30, 0, 250)),
      top_contributors: [],
    }),
    expect.objectContaining({ kind: 'spike_resolved', fired_at: String(T0 + 2000) }),
  ]);

  // The same alerts again (a detector restart after a crash between publishing and recording): repeated on the
  // topic, with the same alert_id, but not in the table — not even before any merge (no FINAL here).
  await sink.deliver(alerts);
  const all = await consumeN({ ...k, topic, groupId: k.groupId(), count: 6, timeoutMs: 30_000 });
  const counts = new Map<string, number>();
  for (const c of all) {
    const id = c.message.headers?.[ALERT_ID_HEADER]?.toString() ?? '';
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  expect([...counts.values()]).toEqual([2, 2, 2]);
  const n = await rows<{ n: string }>(`SELECT count() AS n FROM alerts WHERE alert_id IN (${ids})`);
  expect(n[0]?.n).toBe('3');
});

test('recordedAlertIds and openSpikes answer the detector from the table', async () => {
  const topic = await k.topic(1);
  const sink = createAlertSink({ producer, clickhouse: db.client(), topic, logger: testLogger() });
  const since = Date.UTC(2027, 0, 10);
  const old = spike(uniqueName('old'), 'team-o', since - 3_600_000);
  const resolvedSpike = spike(uniqueName('res'), 'team-o', since + 60_000);
  const resolution = spike(uniqueName('end'), 'team-o', since + 600_000, {
    kind: 'spike_resolved',
    severity: 'info',
    related_alert_id: resolvedSpike.alert_id,
  });
  const open1 = spike(uniqueName('open1'), 'team-p', since + 120_000, { model: null, scope: 'team' });
  const open2 = spike(uniqueName('open2'), 'team-o', since + 30_000, { severity: 'warning' });
  // escalations (warning → critical) name the alert that opened their episode
  const escalated = spike(uniqueName('esc2'), 'team-o', since + 90_000, { related_alert_id: open2.alert_id });
  const escalatedResolved = spike(uniqueName('escr'), 'team-o', since + 70_000, {
    related_alert_id: resolvedSpike.alert_id,
  });
  const budgetAlert = budget(uniqueName('bud'), 'team-p', since + 5000);
  await sink.deliver([
    old,
    resolvedSpike,
    resolution,
    open1,
    open2,
    escalated,
    escalatedResolved,
    budgetAlert,
  ]);

  expect(await recordedAlertIds(db.client(), { since })).toEqual(
    new Set(
      [resolvedSpike, resolution, open1, open2, escalated, escalatedResolved, budgetAlert].map(
        (a) => a.alert_id,
      ),
    ),
  );
  expect(await recordedAlertIds(db.client(), { since, teams: ['team-p'] })).toEqual(
    new Set([open1.alert_id, budgetAlert.alert_id]),
  );
  expect(await recordedAlertIds(db.client(), { since, teams: [] })).toEqual(new Set());

  // episodes, oldest window first: the resolved one (and its escalation) and the one before `since` are not
  // open; open2's escalation makes its episode critical, but is not an episode of its own
  expect(await openSpikes(db.client(), since)).toEqual([
    {
      alert_id: open2.alert_id,
      team_id: 'team-o',
      org_id: 'acme',
      scope: 'team_model',
      model: 'claude-opus-4-1',
      severity: 'critical',
      opened_with: 'warning',
      window_start: open2.window_start,
      window_end: open2.window_end,
      fired_at: open2.fired_at,
    },
    {
      alert_id: open1.alert_id,
      team_id: 'team-p',
      org_id: 'acme',
      scope: 'team',
      model: null,
      severity: 'critical',
      opened_with: 'critical',
      window_start: open1.window_start,
      window_end: open1.window_end,
      fired_at: open1.fired_at,
    },
  ]);
});

test('a table that cannot take the alert: deliver rejects naming the alert, after publishing it', async () => {
  const topic = await k.topic(1);
  const missing = createClickHouse({
    config: { ...db.config, clickhouse: { ...db.config.clickhouse, database: uniqueName('no_such_db') } },
    logger: testLogger(),
  });
  try {
    const sink = createAlertSink({ producer, clickhouse: missing, topic, logger: testLogger() });
    const a = spike(uniqueName('x'), 'team-x', T0);
    await expect(sink.deliver([a])).rejects.toMatchObject({
      code: 'CLICKHOUSE_QUERY_FAILED',
      retriable: false,
      message: expect.stringContaining(`recording alert ${a.alert_id} in alerts failed`) as string,
    });
    const got = await consumeN({ ...k, topic, groupId: k.groupId(), count: 1, timeoutMs: 30_000 });
    expect(got[0]?.message.headers?.[ALERT_ID_HEADER]?.toString()).toBe(a.alert_id);
  } finally {
    await missing.close();
  }
});
