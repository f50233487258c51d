/**
 * The delivery invariant under faults (DESIGN.md), with `tokenledger ingest` as real child processes, the shared
 * test broker, and a private ClickHouse endpoint that these tests stop and start:
 *  - kill -9 of ingest at random points during a 200,000-event load, restarted each time, five times;
 *  - a 30 s ClickHouse outage during load: no offset committed for unwritten data;
 *  - a rebalance from one to three consumers and back during load.
 * Each ends with the raw table holding exactly the distinct events and every rollup equal to the expected sum,
 * and prints the counts it compared.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient } from '@clickhouse/client';
import type { ClickHouseClient } from '@clickhouse/client';
import { localClickHouse } from '../../../infra/clickhouse/control';
import type { LocalService } from '../../../infra/service';
import { PROJECT_ROOT, kafkaBrokers } from '../../../lib/config';
import { freePort, uniqueName } from '../../helpers/env';
import { useTestKafka } from '../../helpers/kafka';
import {
  actualTotals,
  describeTotals,
  encodeEvents,
  expectedTotals,
  makeEvent,
  produce,
} from '../../helpers/usage';
import type { UsageEvent } from '../../../schemas/usage-event/types';

const k = useTestKafka();
let home: string;
let chPort: number;
let clickhouse: LocalService;
const clients: ClickHouseClient[] = [];

beforeAll(async () => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenledger-ingest-faults-'));
  chPort = await freePort();
  clickhouse = localClickHouse({ home, port: chPort, startTimeoutMs: 60_000 });
  await clickhouse.start();
});
afterAll(async () => {
  for (const c of clients) await c.close().catch(() => undefined);
  await clickhouse.stop();
  fs.rmSync(home, { recursive: true, force: true });
});

function chClient(database: string): ClickHouseClient {
  const c = createClient({
    url: `http://127.0.0.1:${chPort}`,
    database,
    clickhouse_settings: { output_format_json_quote_64bit_integers: 1 },
  });
  clients.push(c);
  return c;
}

interface Scenario {
  topic: string;
  dlqTopic: string;
  groupId: string;
  database: string;
  ch: ClickHouseClient;
}

async function scenario(partitions: number): Promise<Scenario> {
  const database = uniqueName('faults_db');
  const admin = createClient({ url: `http://127.0.0.1:${chPort}` });
  await admin.command({ query: `CREATE DATABASE ${database}` });
  await admin.close();
  return {
    topic: await k.topic(partitions),
    dlqTopic: await k.topic(1),
    groupId: k.groupId(),
    database,
    ch: chClient(database),
  };
}

function startIngest(s: Scenario): ChildProcess {
  const child = spawn(process.execPath, [path.join(PROJECT_ROOT, 'cli', 'bin.js'), 'ingest'], {
    env: {
      ...process.env,
      KAFKA_BROKERS: kafkaBrokers(k.config).join(','),
      CLICKHOUSE_URL: `http://127.0.0.1:${chPort}`,
      CLICKHOUSE_DATABASE: s.database,
      INGEST_TOPIC: s.topic,
      INGEST_DLQ_TOPIC: s.dlqTopic,
      INGEST_GROUP_ID: s.groupId,
      INGEST_HTTP_PORT: '0',
      INGEST_SESSION_TIMEOUT_MS: '6000',
      INGEST_BATCH_MAX_WAIT_MS: '200',
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr.on('data', (b: Buffer) => {
    if (process.env.TOKENLEDGER_TEST_VERBOSE === '1') process.stderr.write(b);
  });
  return child;
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

/** Produces `events` over roughly `seconds`, in slices, while the test does its damage. */
async function steadyLoad(s: Scenario, events: readonly UsageEvent[], seconds: number): Promise<void> {
  const messages = encodeEvents(events);
  const slices = Math.max(1, seconds * 4);
  const per = Math.ceil(messages.length / slices);
  for (let i = 0; i < messages.length; i += per) {
    await produce(k.kafka, s.topic, messages.slice(i, i + per), 5000);
    await sleep(250);
  }
}

async function rawCount(s: Scenario): Promise<number> {
  try {
    const rows = await (
      await s.ch.query({ query: 'SELECT count() AS n FROM usage_events', format: 'JSONEachRow' })
    ).json<{ n: string }>();
    return Number(rows[0]?.n ?? 0);
  } catch {
    return -1; // schema not there yet, or ClickHouse down
  }
}

async function untilCount(s: Scenario, n: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  let last = 0;
  while ((last = await rawCount(s)) < n) {
    if (Date.now() > deadline) throw new Error(`raw table has ${last} of ${n} events after ${ms / 1000} s`);
    await sleep(500);
  }
  await sleep(1500); // anything more (a duplicate) would show up now
}

async function expectExact(label: string, s: Scenario, events: readonly UsageEvent[]): Promise<void> {
  const want = expectedTotals(events);
  const t = await actualTotals(s.ch);
  process.stdout.write(
    `[${label}] distinct=${t.distinct}\n${describeTotals('  expected', want)}\n${describeTotals('  raw', t.raw)}\n` +
      `${describeTotals('  minute', t.minute)}\n${describeTotals('  hour', t.hour)}\n${describeTotals('  day', t.day)}\n`,
  );
  expect(t.raw).toEqual(want);
  expect(t.distinct).toBe(events.length);
  expect(t.minute).toEqual(want);
  expect(t.hour).toEqual(want);
  expect(t.day).toEqual(want);
}

test('kill -9 of ingest five times during a 200,000-event load: exactly the distinct events, exact rollups', async () => {
  const s = await scenario(6);
  const base = Date.now() - 3 * 3600_000;
  const events = Array.from({ length: 200_000 }, (_, i) => makeEvent(i, base, 'kill'));
  const load = steadyLoad(s, events, 30);
  let child = startIngest(s);
  const kills: number[] = [];
  for (let round = 0; round < 5; round++) {
    // Kill while it is writing: once this process has added rows, after a random moment.
    const before = Math.max(0, await rawCount(s));
    const deadline = Date.now() + 60_000;
    while ((await rawCount(s)) <= before && Date.now() < deadline) await sleep(100);
    await sleep(Math.floor(Math.random() * 800));
    child.kill('SIGKILL');
    await exited(child);
    kills.push(await rawCount(s));
    child = startIngest(s);
  }
  await load;
  try {
    await untilCount(s, events.length, 240_000);
  } finally {
    child.kill('SIGTERM');
    await exited(child);
  }
  process.stdout.write(`[ingest kill -9] raw rows at each kill: ${kills.join(', ')}\n`);
  await expectExact('ingest kill -9 ×5', s, events);
}, 420_000);

test('a 30 s ClickHouse outage during load: no offset committed for unwritten data, exact totals after', async () => {
  const s = await scenario(4);
  const base = Date.now() - 3 * 3600_000;
  const events = Array.from({ length: 60_000 }, (_, i) => makeEvent(i, base, 'outage'));
  const child = startIngest(s);
  const load = steadyLoad(s, events, 20);
  const admin = k.kafka.admin();
  await admin.connect();
  const committed = async (): Promise<Map<number, number>> => {
    const [t] = await admin.fetchOffsets({ groupId: s.groupId, topics: [s.topic] });
    return new Map((t?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
  };
  try {
    await sleep(4000);
    await clickhouse.stop();
    await sleep(2000); // a commit of the last range written before the stop may still be in flight
    const atStop = await committed();
    await sleep(28_000);
    const beforeRestart = await committed();
    await clickhouse.start();
    // nothing could be written while ClickHouse was down, so nothing was committed
    expect(beforeRestart).toEqual(atStop);
    await load;
    await untilCount(s, events.length, 180_000);
    // every committed offset is covered by what ClickHouse has
    const maxWritten = new Map(
      (
        await (
          await s.ch.query({
            query: 'SELECT kafka_partition AS p, max(kafka_offset) AS o FROM usage_events GROUP BY p',
            format: 'JSONEachRow',
          })
        ).json<{ p: number; o: string }>()
      ).map((r) => [r.p, Number(r.o)]),
    );
    for (const [p, offset] of await committed()) {
      if (offset >= 0) expect(offset - 1).toBeLessThanOrEqual(maxWritten.get(p) ?? -1);
    }
    process.stdout.write(
      `[ingest outage] committed at stop=${JSON.stringify([...atStop])} before restart=${JSON.stringify([...beforeRestart])}\n`,
    );
  } finally {
    await admin.disconnect();
    child.kill('SIGTERM');
    await exited(child);
  }
  await expectExact('ingest ClickHouse outage 30 s', s, events);
}, 300_000);

test('a rebalance from one consumer to three and back during load: exact totals', async () => {
  const s = await scenario(6);
  const base = Date.now() - 3 * 3600_000;
  const events = Array.from({ length: 90_000 }, (_, i) => makeEvent(i, base, 'rebalance'));
  const first = startIngest(s);
  const load = steadyLoad(s, events, 15);
  await sleep(3000);
  const more = [startIngest(s), startIngest(s)];
  await sleep(7000);
  for (const c of more) c.kill('SIGTERM');
  const codes = await Promise.all(more.map(exited));
  await load;
  try {
    await untilCount(s, events.length, 180_000);
  } finally {
    first.kill('SIGTERM');
    expect(await exited(first)).toBe(0);
  }
  expect(codes).toEqual([0, 0]); // a graceful stop: batches in progress written and committed, exit 0
  await expectExact('ingest rebalance 1→3→1', s, events);
}, 300_000);
