/**
 * `tokenledger detect` as deployed: a child process with /healthz, /readyz and /metrics, a budget alert decided
 * from events on the topic, a graceful SIGTERM (exit 0), and a bad flag refused with exit 2.
 */
import path from 'node:path';
import { spawn } from 'node:child_process';
import { PROJECT_ROOT, clickhouseUrl, kafkaBrokers } from '../../../lib/config';
import { upsertBudgets } from '../../../consumers/detect/budget-store';
import { loadCatalog, priceEvent } from '../../../consumers/pricing';
import { waitUntil } from '../../../infra/process';
import { ensureSchema } from '../../../migrations/runner';
import { runCli } from '../../helpers/cli';
import { httpGet } from '../../helpers/http';
import { useTestDatabase } from '../../helpers/clickhouse';
import { freePort, testLogger } from '../../helpers/env';
import { useTestKafka } from '../../helpers/kafka';
import { encodeEvents, makeEvent, produce } from '../../helpers/usage';

const k = useTestKafka();
const db = useTestDatabase();

test('detect serves /healthz /readyz /metrics, publishes a budget alert for events on the topic, stops on SIGTERM with exit 0', async () => {
  const topic = await k.topic(2);
  const alertsTopic = await k.topic(1);
  const port = await freePort();
  await ensureSchema(db.client(), testLogger());
  // 40 calls of one team; its daily budget is 60 of them: the 30th crosses 50 %
  const events = Array.from({ length: 40 }, (_, i) => ({
    ...makeEvent(i * 17, Date.now() - 60_000, 'detect-cli'),
    occurred_at: Date.now() - 30_000 + i,
    team_id: 'team-cli',
    request_model: 'gpt-4.1',
    provider: 'openai',
  }));
  const catalog = loadCatalog();
  const cost = events.reduce((a, e) => a + priceEvent(catalog, e).cost_nanousd, 0n);
  await upsertBudgets(db.client(), [
    {
      budget_id: 'team:team-cli:day',
      scope: 'team',
      scope_id: 'team-cli',
      period: 'day',
      time_zone: 'UTC',
      unit: 'usd',
      amount: (cost * 60n) / 40n,
      thresholds: [50, 80, 100],
      description: 'detect CLI test',
    },
  ]);
  const env = {
    ...process.env,
    KAFKA_BROKERS: kafkaBrokers(k.config).join(','),
    CLICKHOUSE_URL: clickhouseUrl(db.config),
    CLICKHOUSE_DATABASE: db.name,
    DETECT_TOPIC: topic,
    DETECT_ALERTS_TOPIC: alertsTopic,
    DETECT_GROUP_ID: k.groupId(),
    LOG_LEVEL: 'warn',
  };
  const child = spawn(
    process.execPath,
    [path.join(PROJECT_ROOT, 'cli', 'bin.js'), 'detect', '--http-port', String(port)],
    { env, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    await waitUntil(
      `detect ready on :${port} (stderr: ${stderr})`,
      async () => (await httpGet(`http://127.0.0.1:${port}/readyz`)).status === 200,
      { timeoutMs: 90_000 },
    );
    expect((await httpGet(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    await produce(k.kafka, topic, encodeEvents(events), events.length);
    let last = '';
    await waitUntil(
      'a budget_threshold alert counted in /metrics',
      async () =>
        /tokenledger_detect_alerts_total\{kind="budget_threshold",severity="info"\} 1/.test(
          (last = (await httpGet(`http://127.0.0.1:${port}/metrics`)).body),
        ),
      { timeoutMs: 90_000 },
    ).catch((err: unknown) => {
      throw new Error(
        `${String(err)}\n${last
          .split('\n')
          .filter((l) => l.startsWith('tokenledger_detect'))
          .join('\n')}\n${stderr}`,
      );
    });
    const metrics = (await httpGet(`http://127.0.0.1:${port}/metrics`)).body;
    expect(metrics).toMatch(/tokenledger_detect_events_total\{outcome="counted"\} 40/);
    const tail = await runCli(['alerts', 'tail', '--topic', alertsTopic, '--json'], env);
    expect(tail.code).toBe(0);
    const alerts = tail.stdout
      .trim()
      .split('\n')
      .map(
        (l) =>
          JSON.parse(l) as { kind: string; team_id: string; budget: { threshold_percent: number } | null },
      );
    expect(alerts.map((a) => [a.kind, a.team_id, a.budget?.threshold_percent])).toContainEqual([
      'budget_threshold',
      'team-cli',
      50,
    ]);
  } finally {
    child.kill('SIGTERM');
  }
  expect(await exited).toBe(0);
  expect(stderr).toBe('');
});

test('detect: a bad --http-port exits 2 naming the value', async () => {
  const r = await runCli(['detect', '--http-port', 'nope'], { ...process.env });
  expect([r.code, r.stderr.trim()]).toEqual([
    2,
    'tokenledger: --http-port must be a port number 0-65535, got "nope"',
  ]);
});
