/**
 * The detector against the real broker and ClickHouse (in this process, next to a real ingest consumer): a cost
 * spike becomes an alert on the alerts topic and in the alerts table; a budget threshold is crossed by exactly
 * the event that crosses it; a restart mid-period neither fires again nor forgets what was spent.
 */
import { Registry } from 'prom-client';
import { createDetect } from '../../../consumers/detect';
import type { Detect } from '../../../consumers/detect';
import { upsertBudgets } from '../../../consumers/detect/budget-store';
import { createIngest } from '../../../consumers/ingest';
import type { Ingest } from '../../../consumers/ingest';
import { loadCatalog, priceEvent } from '../../../consumers/pricing';
import { waitUntil } from '../../../infra/process';
import { ensureSchema } from '../../../migrations/runner';
import { decodeAlert } from '../../../schemas/alert/schema';
import type { Alert } from '../../../schemas/alert/types';
import type { UsageEvent } from '../../../schemas/usage-event/types';
import { uuidv7 } from '../../../producers/emitter/uuid';
import { useTestDatabase } from '../../helpers/clickhouse';
import { testLogger } from '../../helpers/env';
import { consumeAll, useTestKafka } from '../../helpers/kafka';
import { encodeEvents, produce } from '../../helpers/usage';

const k = useTestKafka();
const db = useTestDatabase();
const WAIT = { timeoutMs: 90_000 };
const catalog = loadCatalog();

beforeAll(async () => {
  await ensureSchema(db.client(), testLogger());
});

let seq = 0;
/** One claude-sonnet-4-5 call of `input` input and `output` output tokens by `user`, at `at`. */
function call(team: string, at: number, input: number, output: number, user = 'svc-a'): UsageEvent {
  seq++;
  return {
    event_id: uuidv7(at + seq),
    occurred_at: at,
    org_id: 'acme',
    team_id: team,
    user_id: user,
    project_id: null,
    application: 'tests',
    environment: 'test',
    provider: 'anthropic',
    operation: 'chat',
    request_model: 'claude-sonnet-4-5',
    response_model: null,
    streaming: false,
    service_tier: null,
    status: 'ok',
    error_type: null,
    duration_ms: 900,
    time_to_first_token_ms: null,
    input_tokens: input,
    cache_read_input_tokens: 0,
    cache_creation_input_tokens: 0,
    output_tokens: output,
    reasoning_output_tokens: 0,
    client_cost_nanousd: null,
    tags: {},
    sdk: 'tokenledger-tests/1',
  };
}

function startIngest(topic: string, groupId: string): Ingest {
  return createIngest({
    kafka: k.kafka,
    clickhouse: db.client(),
    logger: testLogger(),
    catalog,
    topic,
    groupId,
    dlqTopic: `${topic}.dlq`,
    batchMaxWaitMs: 100,
  });
}

function startDetect(topic: string, alertsTopic: string, groupId: string): Detect {
  return createDetect({
    kafka: k.kafka,
    clickhouse: db.client(),
    logger: testLogger(),
    catalog,
    topic,
    groupId,
    alertsTopic,
    allowedLatenessMs: 1000,
    idleAdvanceMs: 2000,
    budgetReloadMs: 2000,
    metricsRegistry: new Registry(),
  });
}

async function alertsOn(topic: string): Promise<Alert[]> {
  const messages = await consumeAll({
    kafka: k.kafka,
    config: k.config,
    topic,
    groupId: k.groupId(),
    timeoutMs: 30_000,
  });
  return messages.map((m) => {
    if (m.message.value === null) throw new Error('alert without a value');
    return decodeAlert(m.message.value).value;
  });
}

/** The alerts of a kind recorded in ClickHouse for a team, oldest first. */
async function recorded(
  team: string,
  kind: string,
): Promise<{ alert_id: string; kind: string; threshold_percent: number | null }[]> {
  const rs = await db.client().query({
    query: `SELECT alert_id, kind, threshold_percent FROM alerts WHERE team_id = {team:String} AND kind = {kind:String}
            ORDER BY fired_at LIMIT 1 BY alert_id`,
    query_params: { team, kind },
    format: 'JSONEachRow',
  });
  return rs.json();
}

async function ingested(ingest: Ingest, n: number): Promise<void> {
  await waitUntil(
    `${n} events ingested`,
    async () => {
      const s = await ingest.metrics.snapshot();
      return (s.written ?? 0) >= n;
    },
    WAIT,
  );
}

test('a runaway loop on top of a steady baseline: a cost_spike alert on the topic and in ClickHouse, once across a restart', async () => {
  const topic = await k.topic(2);
  const alertsTopic = await k.topic(1);
  const team = 'team-spiky';
  const now = Date.now();
  // three hours of steady spend, ~40 calls a minute of ~$0.04 (≈ $100/h), ending two minutes ago
  const baseline: UsageEvent[] = [];
  for (let m = 180; m >= 2; m--) {
    for (let i = 0; i < 40; i++)
      baseline.push(call(team, now - m * 60_000 + i * 1400, 9000 + (i % 7) * 500, 600));
  }
  await produce(k.kafka, topic, encodeEvents(baseline), 2000);
  const ingest = startIngest(topic, k.groupId());
  await ingest.start();
  let detect: Detect | undefined;
  try {
    await ingested(ingest, baseline.length);
    const group = k.groupId();
    detect = startDetect(topic, alertsTopic, group);
    await detect.start();
    // the loop: 1,500 calls in the last minute (≈ $60 in a minute: ~35x the usual rate), by one service account
    const loop = Array.from({ length: 1500 }, (_, i) =>
      call(team, Date.now() - 60_000 + i * 40, 9000, 600, 'svc-runaway'),
    );
    await produce(k.kafka, topic, encodeEvents(loop), 2000);
    await waitUntil(
      'the spike alert is recorded',
      async () => (await recorded(team, 'cost_spike')).length > 0,
      WAIT,
    );
    await waitUntil(
      'the spike is critical',
      async () =>
        (await alertsOn(alertsTopic)).some((a) => a.kind === 'cost_spike' && a.severity === 'critical'),
      WAIT,
    );
    // one episode: it opens (warning or straight to critical) and may escalate once, naming the opening alert
    const spikes = (await alertsOn(alertsTopic)).filter((a) => a.kind === 'cost_spike');
    expect(spikes.length).toBeGreaterThanOrEqual(1);
    expect(spikes.length).toBeLessThanOrEqual(2);
    const opening = spikes[0];
    const spike = spikes[spikes.length - 1];
    if (spikes.length === 2) expect(spike?.related_alert_id).toBe(opening?.alert_id);
    process.stdout.write(
      `[detect spike] ${spikes.map((a) => `${a.severity}: ${a.message}\n  rule: ${a.rule}`).join('\n')}\n`,
    );
    expect(spike).toMatchObject({ team_id: team, scope: 'team', severity: 'critical' });
    expect(spike?.message).toContain('svc-runaway');
    expect(Number(spike?.observed_cost_nanousd)).toBeGreaterThan(5 * Number(spike?.expected_cost_nanousd));
    expect(spike?.top_contributors[0]).toMatchObject({ dimension: 'user', value: 'svc-runaway' });

    // restart: the new detector warms from ClickHouse (ingest has the loop by now) and does not fire again
    await ingested(ingest, baseline.length + loop.length);
    await detect.stop();
    detect = startDetect(topic, alertsTopic, group);
    await detect.start();
    // a few more ordinary calls, so the restarted detector has batches to warm on and minutes to close
    await produce(
      k.kafka,
      topic,
      encodeEvents([call(team, Date.now(), 9000, 600), call(team, Date.now(), 9000, 600)]),
      10,
    );
    await waitUntil(
      'the restarted detector counted the new calls',
      async () => ((await detect?.metrics.snapshot())?.counted ?? 0) >= 2,
      WAIT,
    );
    await new Promise((r) => setTimeout(r, 4000)); // a few idle-clock ticks: minutes close, nothing fires
    const after = (await alertsOn(alertsTopic)).filter((a) => a.kind === 'cost_spike');
    expect(after.map((a) => a.alert_id)).toEqual(spikes.map((a) => a.alert_id));
  } finally {
    await detect?.stop();
    await ingest.stop();
  }
});

test('budget thresholds: fired by exactly the crossing event, once each, and a restart mid-period neither re-fires nor forgets', async () => {
  const topic = await k.topic(2);
  const alertsTopic = await k.topic(1);
  const team = 'team-budget';
  // every call costs the same; the daily budget is 100 calls' worth
  const unit = call(team, Date.now(), 20_000, 1000);
  const cost = priceEvent(catalog, unit).cost_nanousd;
  expect(cost).toBeGreaterThan(0n);
  await upsertBudgets(db.client(), [
    {
      budget_id: 'budget-test-daily',
      scope: 'team',
      scope_id: team,
      period: 'day',
      time_zone: 'UTC',
      unit: 'usd',
      amount: cost * 100n,
      thresholds: [50, 80, 100],
      description: 'integration test',
    },
  ]);
  const ingest = startIngest(topic, k.groupId());
  await ingest.start();
  const group = k.groupId();
  let detect: Detect | undefined = startDetect(topic, alertsTopic, group);
  await detect.start();
  try {
    // 60 calls: the 50th crosses 50 %
    const first = Array.from({ length: 60 }, () => call(team, Date.now(), 20_000, 1000));
    await produce(k.kafka, topic, encodeEvents(first), first.length); // one send: partition order = array order
    await waitUntil(
      'the 50 % alert',
      async () => (await recorded(team, 'budget_threshold')).length >= 1,
      WAIT,
    );
    const fifty = (await alertsOn(alertsTopic)).filter((a) => a.kind === 'budget_threshold');
    expect(fifty.map((a) => a.budget?.threshold_percent)).toEqual([50]);
    expect(fifty[0]?.rule).toContain(first[49]?.event_id.toLowerCase());
    expect(fifty[0]?.budget?.spent).toBe(cost * 50n);

    // restart mid-period, once ingest has the 60 calls: spend so far comes from ClickHouse
    await ingested(ingest, 60);
    await detect.stop();
    detect = startDetect(topic, alertsTopic, group);
    await detect.start();
    // 30 more: the 80th call overall crosses 80 %, the 90th is below 100 %
    const second = Array.from({ length: 30 }, () => call(team, Date.now(), 20_000, 1000));
    await produce(k.kafka, topic, encodeEvents(second), second.length);
    await waitUntil(
      'the 80 % alert',
      async () => (await recorded(team, 'budget_threshold')).length >= 2,
      WAIT,
    );
    await new Promise((r) => setTimeout(r, 3000)); // anything else would have fired by now
    const all = (await alertsOn(alertsTopic)).filter((a) => a.kind === 'budget_threshold');
    process.stdout.write(
      `[detect budget] ${all.map((a) => `${a.budget?.threshold_percent ?? '?'}%: ${a.message}`).join('\n  ')}\n`,
    );
    expect(all.map((a) => a.budget?.threshold_percent)).toEqual([50, 80]);
    expect(all[1]?.rule).toContain(second[19]?.event_id.toLowerCase());
    expect(all[1]?.budget?.spent).toBe(cost * 80n);
    expect((await recorded(team, 'budget_threshold')).map((r) => r.threshold_percent)).toEqual([50, 80]);
    // every alert on the topic is distinct (a restart fired nothing twice); other kinds are printed
    const everything = await alertsOn(alertsTopic);
    process.stdout.write(
      `[detect budget] all alerts: ${everything.map((a) => `${a.kind}/${a.severity}: ${a.message}`).join('\n  ')}\n`,
    );
    expect(new Set(everything.map((a) => a.alert_id)).size).toBe(everything.length);
  } finally {
    await detect.stop();
    await ingest.stop();
  }
});
