/**
 * `tokenledger ingest` and `tokenledger dlq tail` as a user runs them: health endpoints and Prometheus metrics,
 * a graceful SIGTERM (exit 0), dead letters shown with their reason, bad flags refused with exit 2.
 */
import path from 'node:path';
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { PROJECT_ROOT, clickhouseUrl, kafkaBrokers } from '../../../lib/config';
import { runCli } from '../../helpers/cli';
import { httpGet } from '../../helpers/http';
import { useTestDatabase } from '../../helpers/clickhouse';
import { freePort } from '../../helpers/env';
import { useTestKafka } from '../../helpers/kafka';
import { encodeEvents, makeEvent, produce } from '../../helpers/usage';

const k = useTestKafka();
const db = useTestDatabase();

test('ingest serves /healthz /readyz /metrics, writes events, sends poison to the DLQ that `dlq tail` shows, stops on SIGTERM with exit 0', async () => {
  const topic = await k.topic(2);
  const dlqTopic = await k.topic(1);
  const port = await freePort();
  const env = {
    ...process.env,
    KAFKA_BROKERS: kafkaBrokers(k.config).join(','),
    CLICKHOUSE_URL: clickhouseUrl(db.config),
    CLICKHOUSE_DATABASE: db.name,
    INGEST_TOPIC: topic,
    INGEST_DLQ_TOPIC: dlqTopic,
    INGEST_GROUP_ID: k.groupId(),
    INGEST_BATCH_MAX_WAIT_MS: '100',
    LOG_LEVEL: 'warn',
  };
  const events = Array.from({ length: 500 }, (_, i) => makeEvent(i, Date.now() - 3600_000, 'cli'));
  await produce(k.kafka, topic, [...encodeEvents(events), { key: 'team-x', value: Buffer.from('garbage') }]);

  const child = spawn(
    process.execPath,
    [path.join(PROJECT_ROOT, 'cli', 'bin.js'), 'ingest', '--http-port', String(port)],
    {
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    const deadline = Date.now() + 90_000;
    while (!(await httpGet(`http://127.0.0.1:${port}/metrics`)).body.includes('outcome="written"} 500')) {
      if (Date.now() > deadline)
        throw new Error(`ingest did not write 500 events within 90 s; stderr:\n${stderr}`);
      await sleep(250);
    }
    expect(await httpGet(`http://127.0.0.1:${port}/healthz`)).toEqual({ status: 200, body: 'ok\n' });
    expect((await httpGet(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
    const metrics = (await httpGet(`http://127.0.0.1:${port}/metrics`)).body;
    expect(metrics).toContain('tokenledger_ingest_dead_letters_total{reason="bad_magic"} 1');
    expect(metrics).toContain('tokenledger_ingest_insert_seconds_bucket');
    const rows = await (
      await db.client().query({ query: 'SELECT count() AS n FROM usage_events', format: 'JSONEachRow' })
    ).json<{ n: string }>();
    expect(rows[0]?.n).toBe('500');
    // the price catalog table was loaded at start
    const prices = await (
      await db
        .client()
        .query({ query: 'SELECT count() AS n FROM price_catalog FINAL', format: 'JSONEachRow' })
    ).json<{ n: string }>();
    expect(Number(prices[0]?.n)).toBeGreaterThan(50);
  } finally {
    child.kill('SIGTERM');
  }
  expect(await exited).toBe(0);

  const tail = await runCli(['dlq', 'tail', '-n', '5'], { ...env, INGEST_DLQ_TOPIC: dlqTopic });
  expect(tail.code).toBe(0);
  expect(tail.stdout).toMatch(
    new RegExp(
      `bad_magic\\s+${topic.replace(/\./g, '\\.')}\\[\\d\\]@\\d+\\s+not an Avro single-object message`,
    ),
  );
  expect(tail.stderr).toContain('1 dead letter(s) shown');
  const json = await runCli(['dlq', 'tail', '--json'], { ...env, INGEST_DLQ_TOPIC: dlqTopic });
  const line = JSON.parse(json.stdout.trim()) as {
    reason: string;
    value_hex: string;
    source: { topic: string };
  };
  expect(line).toMatchObject({
    reason: 'bad_magic',
    value_hex: Buffer.from('garbage').toString('hex'),
    source: { topic },
  });
});

test('bad flags and settings exit 2 naming the value', async () => {
  const bad = await runCli(['ingest', '--http-port', 'abc'], { ...process.env, LOG_LEVEL: 'warn' });
  expect(bad.code).toBe(2);
  expect(bad.stderr).toContain('--http-port must be a port number 0-65535, got "abc"');
  const rows = await runCli(['ingest'], { ...process.env, INGEST_BATCH_MAX_ROWS: '0' });
  expect(rows.code).toBe(2);
  expect(rows.stderr).toContain('INGEST_BATCH_MAX_ROWS="0"');
  const count = await runCli(['dlq', 'tail', '-n', 'x'], { ...process.env });
  expect(count.code).toBe(2);
  expect(count.stderr).toContain('--count must be a whole number ≥ 1, got "x"');
});
