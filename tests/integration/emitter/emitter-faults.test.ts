/**
 * The emitter under faults, on a private broker (own home and ports) that these tests stop and start:
 *  - the broker is down for 20 s while 50,000 events are recorded: afterwards every event is in the topic,
 *    duplicates only as repeats of the same event_id (counted and printed);
 *  - a process killed with SIGKILL after spooling: the next process on the same spool sends its events.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { localBroker } from '../../../infra/kafka/broker';
import { waitUntil } from '../../../infra/process';
import { createKafka } from '../../../lib/kafka';
import { PROJECT_ROOT } from '../../../lib/config';
import { createEmitter } from '../../../producers/emitter';
import { usageEventRegistry } from '../../../schemas/usage-event/schema';
import { consumeAll } from '../../helpers/kafka';
import { freePort, freePortPair, testConfig, testLogger } from '../../helpers/env';
import type { LocalService } from '../../../infra/service';

let home: string;
let broker: LocalService;
let port: number;

beforeAll(async () => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenledger-emitter-faults-'));
  port = await freePortPair();
  broker = localBroker({
    home,
    port,
    controllerPort: port + 1,
    heapMb: 512,
    javaHome: process.env.JAVA_HOME,
    startTimeoutMs: 120_000,
  });
  await broker.start();
});
afterAll(async () => {
  await broker.stop();
  fs.rmSync(home, { recursive: true, force: true });
});

async function createTopic(
  kafka: ReturnType<typeof createKafka>,
  topic: string,
  partitions: number,
): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: partitions }] });
  } finally {
    await admin.disconnect();
  }
}

test('broker down for 20 s while 50,000 events are recorded: every event arrives, repeats only of the same event_id', async () => {
  const config = testConfig({ KAFKA_BROKERS: `127.0.0.1:${port}` });
  const kafka = createKafka({
    config,
    logger: testLogger(),
    overrides: { retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 1000 }, connectionTimeout: 1000 },
  });
  const topic = 'faults.outage';
  await createTopic(kafka, topic, 3);
  const spoolDir = path.join(home, 'spool-outage');
  const emitter = createEmitter({
    kafka,
    topic,
    logger: testLogger(),
    spool: { dir: spoolDir },
    retryIntervalMs: 500,
  });

  // The outage: down from 2 s to 22 s into the recording.
  const outage = (async () => {
    await sleep(2000);
    await broker.stop();
    await sleep(20_000);
    await broker.start();
  })();
  const total = 50_000;
  const ticks = 250; // 200 events every 100 ms: 25 s of steady traffic
  for (let t = 0; t < ticks; t++) {
    for (let i = 0; i < total / ticks; i++) {
      emitter.record({
        team_id: `team-${i % 13}`,
        provider: 'anthropic',
        request_model: 'claude-sonnet-4-5',
        input_tokens: t,
        tags: { seq: String(t * (total / ticks) + i) },
      });
    }
    await sleep(100);
  }
  await outage;
  await waitUntil(
    'spool drained after the broker came back',
    () => {
      const m = emitter.metrics();
      return Promise.resolve(m.spoolBytes === 0 && m.queueDepth === 0 && m.inFlight === 0 && m.sent >= total);
    },
    { timeoutMs: 120_000, intervalMs: 100 },
  );
  const m = emitter.metrics();
  await emitter.close();

  const all = await consumeAll({ kafka, config, topic, groupId: 'g-outage', timeoutMs: 120_000 });
  const registry = usageEventRegistry();
  const ids = all.map((c) => registry.decode(c.message.value as Buffer).value.event_id);
  const distinct = new Set(ids);
  const seqs = new Set(all.map((c) => registry.decode(c.message.value as Buffer).value.tags.seq));
  process.stdout.write(
    `[emitter outage] recorded=${m.recorded} spooled=${m.spooled} replayed=${m.replayed} sent=${m.sent} sendErrors=${m.sendErrors} ` +
      `in topic=${ids.length} distinct event_ids=${distinct.size} repeats=${ids.length - distinct.size} dropped=${JSON.stringify(m.dropped)}\n`,
  );
  expect(m.recorded).toBe(total);
  expect(Object.values(m.dropped).reduce((a, b) => a + b, 0)).toBe(0);
  expect(m.spooled).toBeGreaterThan(0); // the outage was real: events went through the spool
  expect(distinct.size).toBe(total);
  expect(seqs.size).toBe(total);
  // every extra message is a repeat of an event_id that is also there once
  expect(ids.length - distinct.size).toBe(ids.length - total);
});

function runFixture(env: Record<string, string>): {
  lines: AsyncIterator<string>;
  exited: Promise<number | null>;
  signal: Promise<NodeJS.Signals | null>;
  pid: number;
} {
  const child = spawn(
    process.execPath,
    ['--require', require.resolve('tsx/cjs'), path.join(PROJECT_ROOT, 'tests/fixtures/emitter-process.ts')],
    {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  return {
    lines: readline.createInterface({ input: child.stdout })[Symbol.asyncIterator](),
    exited: new Promise((resolve) => child.on('exit', (code) => resolve(code))),
    signal: new Promise((resolve) => child.on('exit', (_code, signal) => resolve(signal))),
    pid: child.pid ?? -1,
  };
}

test('a process killed with SIGKILL after spooling: the next process sends its events', async () => {
  const topic = 'faults.sigkill';
  const config = testConfig({ KAFKA_BROKERS: `127.0.0.1:${port}` });
  const kafka = createKafka({ config, logger: testLogger() });
  await createTopic(kafka, topic, 2);
  const spoolDir = path.join(home, 'spool-sigkill');
  const count = 5000;
  const deadPort = await freePort(); // nothing listens there: Kafka is unreachable for the first process

  const first = runFixture({
    EMIT_BROKERS: `127.0.0.1:${deadPort}`,
    EMIT_TOPIC: topic,
    EMIT_SPOOL_DIR: spoolDir,
    EMIT_COUNT: String(count),
    EMIT_MODE: 'spool',
    EMIT_RUN: 'r1',
  });
  expect((await first.lines.next()).value).toBe(`spooled ${count}`);
  process.kill(first.pid, 'SIGKILL');
  expect(await first.exited).toBeNull(); // killed, not exited
  expect(fs.readdirSync(spoolDir).some((f) => f.endsWith('.spool'))).toBe(true);

  const second = runFixture({
    EMIT_BROKERS: `127.0.0.1:${port}`,
    EMIT_TOPIC: topic,
    EMIT_SPOOL_DIR: spoolDir,
    EMIT_COUNT: '0',
    EMIT_MODE: 'send',
    EMIT_RUN: 'r2',
  });
  const line = (await second.lines.next()).value as string;
  expect(await second.exited).toBe(0);
  expect(line).toMatch(new RegExp(`^delivered ${count} ${count} adopted [1-9]\\d*$`));

  const all = await consumeAll({ kafka, config, topic, groupId: 'g-sigkill', timeoutMs: 60_000 });
  const registry = usageEventRegistry();
  const seqs = new Set(all.map((c) => registry.decode(c.message.value as Buffer).value.tags.seq));
  expect(seqs.size).toBe(count);
  expect(all.every((c) => registry.decode(c.message.value as Buffer).value.tags.run === 'r1')).toBe(true);
  // the spool is empty afterwards
  expect(fs.readdirSync(spoolDir).filter((f) => f.endsWith('.spool'))).toEqual([]);
});

test('exit hooks: SIGTERM flushes what is recorded before the process ends', async () => {
  const topic = 'faults.sigterm';
  const config = testConfig({ KAFKA_BROKERS: `127.0.0.1:${port}` });
  const kafka = createKafka({ config, logger: testLogger() });
  await createTopic(kafka, topic, 2);
  const count = 3000;
  const p = runFixture({
    EMIT_BROKERS: `127.0.0.1:${port}`,
    EMIT_TOPIC: topic,
    EMIT_SPOOL_DIR: path.join(home, 'spool-sigterm'),
    EMIT_COUNT: String(count),
    EMIT_MODE: 'exit-hooks',
    EMIT_RUN: 'term',
  });
  // recorded, and (long linger) nothing sent yet
  expect((await p.lines.next()).value).toBe(`recorded ${count} sent 0`);
  process.kill(p.pid, 'SIGTERM');
  expect(await p.signal).toBe('SIGTERM'); // the hook re-raised the signal after closing
  const all = await consumeAll({ kafka, config, topic, groupId: 'g-sigterm', timeoutMs: 60_000 });
  const registry = usageEventRegistry();
  expect(new Set(all.map((c) => registry.decode(c.message.value as Buffer).value.tags.seq)).size).toBe(count);
});
