/**
 * `npm run bench:ingest`: the ingest consumer against ClickHouse's own Kafka engine, in one run, on a private
 * broker and a private ClickHouse endpoint:
 *  - drain: a topic pre-filled with N events (default 2,000,000) over 6 partitions, drained by `tokenledger
 *    ingest` (a child process, as deployed) into raw + minute/hour/day rollups; events/s and peak RSS;
 *  - baseline: the same events JSON-encoded on a twin topic, ingested by a Kafka engine table + materialized view
 *    into a table with usage_events' columns (bench/kafka-engine.ts), events/s;
 *  - freshness: the emitter records a steady 20,000 events/s for 30 s while ingest runs; probe events (one per
 *    50 ms) are timed from record() until they are visible in the minute rollup; p50/p99; RSS.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient } from '@clickhouse/client';
import type { ClickHouseClient } from '@clickhouse/client';
import { CompressionTypes, Kafka, logLevel, Partitioners } from 'kafkajs';
import { localClickHouse } from '../infra/clickhouse/control';
import { localBroker } from '../infra/kafka/broker';
import { PROJECT_ROOT } from '../lib/config';
import { createLogger } from '../lib/logger';
import { createEmitter } from '../producers/emitter';
import { usageEventRegistry } from '../schemas/usage-event/schema';
import type { UsageEvent } from '../schemas/usage-event/types';
import { freePort, freePortPair } from '../tests/helpers/env';
import { makeEvent } from '../tests/helpers/usage';
import { ensureSchema } from '../migrations/runner';
import { produceJsonTwin, runKafkaEngineBaseline } from './kafka-engine';

function arg(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(`--${name}`);
  const v = i >= 0 ? Number(args[i + 1]) : fallback;
  if (!Number.isFinite(v) || v <= 0)
    throw new Error(`--${name} must be a positive number, got ${String(args[i + 1])}`);
  return v;
}

/** What infra/docker-compose.yml runs ingest with (NODE_OPTIONS): the bench measures that too. */
export const DEPLOYED_NODE_OPTIONS = '--max-old-space-size=256';

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

interface Drain {
  seconds: number;
  eventsPerSecond: number;
  steadyEventsPerSecond: number;
  firstRowSeconds: number;
  peakRssMb: number;
  minuteRollupRequests: number;
  nodeOptions: string;
}

const quantile = (sorted: readonly number[], q: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;

/** Resident set size of a process, MB (VmRSS), or NaN when it is gone. */
function rssMb(pid: number | undefined): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m?.[1] === undefined ? NaN : Number(m[1]) / 1024;
  } catch {
    return NaN;
  }
}

/**
 * The backlog: recent traffic at 3,000 calls/s (DESIGN's reference load), so 2,000,000 events span ~11 minutes of
 * occurred_at — the density the rollups see in production, not one event per minute-row.
 */
function* events(n: number, base: number): Generator<UsageEvent> {
  for (let i = 0; i < n; i++) yield { ...makeEvent(i, base, 'bench'), occurred_at: base + Math.floor(i / 3) };
}

async function count(ch: ClickHouseClient, sql: string): Promise<number> {
  try {
    const rows = await (await ch.query({ query: sql, format: 'JSONEachRow' })).json<{ n: string }>();
    return Number(rows[0]?.n ?? 0);
  } catch {
    return 0;
  }
}

export async function ingestBench(args: string[]): Promise<void> {
  const total = arg(args, 'events', 2_000_000);
  const freshnessSeconds = arg(args, 'freshness-seconds', 30);
  const rate = arg(args, 'rate', 20_000);
  const partitions = 6;
  const log = (s: string): void => void process.stderr.write(`bench ingest: ${s}\n`);
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenledger-bench-ingest-'));
  const kafkaPort = await freePortPair();
  const chPort = await freePort();
  const broker = localBroker({
    home,
    port: kafkaPort,
    controllerPort: kafkaPort + 1,
    heapMb: 1024,
    javaHome: process.env.JAVA_HOME,
    startTimeoutMs: 120_000,
  });
  const clickhouse = localClickHouse({ home, port: chPort, startTimeoutMs: 120_000 });
  const brokers = `127.0.0.1:${kafkaPort}`;
  const kafka = new Kafka({ clientId: 'bench-ingest', brokers: [brokers], logLevel: logLevel.NOTHING });
  const chUrl = `http://127.0.0.1:${chPort}`;
  const admin = kafka.admin();
  const clients: ClickHouseClient[] = [];
  const client = (database?: string): ClickHouseClient => {
    const c = createClient({
      url: chUrl,
      ...(database === undefined ? {} : { database }),
      request_timeout: 300_000,
      clickhouse_settings: { output_format_json_quote_64bit_integers: 1 },
    });
    clients.push(c);
    return c;
  };
  let ingest: ChildProcess | undefined;
  const children: ChildProcess[] = [];
  const out: Record<string, unknown> = { events: total, partitions, cores: os.cpus().length };
  try {
    log(`starting a private broker (:${kafkaPort}) and ClickHouse endpoint (:${chPort}) in ${home} ...`);
    await broker.start();
    await clickhouse.start();
    await admin.connect();
    await admin.createTopics({
      waitForLeaders: true,
      topics: ['bench.usage', 'bench.usage.json', 'bench.dlq'].map((topic) => ({
        topic,
        numPartitions: partitions,
      })),
    });
    const root = client();
    for (const db of ['bench_kafka_engine', 'bench_kafka_engine_rollups'])
      await root.command({ query: `CREATE DATABASE ${db}` });
    const base = Date.now() - Math.ceil(total / 3) - 60_000;

    // ---- pre-fill: Avro (what the emitter writes: gzip batches) and the JSON twin ----------------------
    log(`pre-filling bench.usage with ${total} Avro events ...`);
    {
      const registry = usageEventRegistry();
      const producer = kafka.producer({
        createPartitioner: Partitioners.DefaultPartitioner,
        allowAutoTopicCreation: false,
      });
      await producer.connect();
      const chunk = 5000;
      const inFlight: Promise<unknown>[] = [];
      let batch: UsageEvent[] = [];
      const flush = (): void => {
        const values = registry.encodeMany(batch);
        inFlight.push(
          producer.send({
            topic: 'bench.usage',
            acks: -1,
            compression: CompressionTypes.GZIP,
            messages: batch.map((e, i) => ({ key: e.team_id, value: values[i] ?? Buffer.alloc(0) })),
          }),
        );
        batch = [];
      };
      for (const e of events(total, base)) {
        batch.push(e);
        if (batch.length >= chunk) {
          flush();
          if (inFlight.length >= 4) await Promise.all(inFlight.splice(0));
        }
      }
      if (batch.length > 0) flush();
      await Promise.all(inFlight);
      await producer.disconnect();
    }
    log(`pre-filling bench.usage.json with the same ${total} events as JSON ...`);
    await produceJsonTwin({ kafka, topic: 'bench.usage.json', events: events(total, base) });

    // ---- baseline: ClickHouse's Kafka engine + MV ------------------------------------------------------
    log('baseline: Kafka engine + materialized view draining the JSON twin ...');
    await ensureSchema(client('bench_kafka_engine'), createLogger({ level: 'error' }));
    const ke = await runKafkaEngineBaseline({
      clickhouse: client('bench_kafka_engine'),
      database: 'bench_kafka_engine',
      brokers,
      topic: 'bench.usage.json',
      expected: total,
      groupId: 'bench-kafka-engine',
      timeoutMs: 900_000,
      onProgress: (p) => log(`  kafka engine: ${p.rows} rows after ${p.seconds.toFixed(1)} s`),
    });
    out.kafkaEngine = ke;
    log(`  kafka engine: ${Math.round(ke.eventsPerSecond)} events/s`);
    log('baseline: Kafka engine + MV into usage_events with the same rollups as ingest ...');
    const keRollupsDb = client('bench_kafka_engine_rollups');
    await ensureSchema(keRollupsDb, createLogger({ level: 'error' }));
    const keRollups = await runKafkaEngineBaseline({
      clickhouse: keRollupsDb,
      database: 'bench_kafka_engine_rollups',
      brokers,
      topic: 'bench.usage.json',
      expected: total,
      groupId: 'bench-kafka-engine-rollups',
      timeoutMs: 900_000,
      targetTable: 'usage_events',
      onProgress: (p) => log(`  kafka engine + rollups: ${p.rows} rows after ${p.seconds.toFixed(1)} s`),
    });
    out.kafkaEngineRollups = keRollups;
    log(`  kafka engine + rollups: ${Math.round(keRollups.eventsPerSecond)} events/s`);

    // ---- ours: tokenledger ingest draining the Avro topic ----------------------------------------------
    /** Spawns `tokenledger ingest` (as deployed) into `database` and times its drain of the whole topic. */
    const drainWith = async (
      database: string,
      groupId: string,
      nodeOptions: string | undefined,
    ): Promise<{ child: ChildProcess; drain: Drain }> => {
      await root.command({ query: `CREATE DATABASE IF NOT EXISTS ${database}` });
      const ch = client(database);
      // Start from a quiet engine: the merges of the previous phase's tables would otherwise run during this drain.
      for (let i = 0; i < 240 && (await count(root, 'SELECT count() AS n FROM system.merges')) > 0; i++)
        await sleep(250);
      const t0 = Date.now();
      const child = spawn(process.execPath, [path.join(PROJECT_ROOT, 'cli', 'bin.js'), 'ingest'], {
        env: {
          ...process.env,
          KAFKA_BROKERS: brokers,
          CLICKHOUSE_URL: chUrl,
          CLICKHOUSE_DATABASE: database,
          INGEST_TOPIC: 'bench.usage',
          INGEST_DLQ_TOPIC: 'bench.dlq',
          INGEST_GROUP_ID: groupId,
          INGEST_HTTP_PORT: '0',
          LOG_LEVEL: process.env.BENCH_VERBOSE === '1' ? 'info' : 'warn',
          ...(nodeOptions === undefined ? {} : { NODE_OPTIONS: nodeOptions }),
        },
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      children.push(child);
      let peakRss = 0;
      let firstAt: number | undefined;
      let firstRows = 0;
      let rows = 0;
      let lastLog = 0;
      while (rows < total) {
        if (child.exitCode !== null) throw new Error(`ingest exited with ${child.exitCode} during the drain`);
        await sleep(250);
        peakRss = Math.max(peakRss, rssMb(child.pid) || 0);
        rows = await count(ch, 'SELECT count() AS n FROM usage_events');
        if (rows > 0 && firstAt === undefined) {
          firstAt = Date.now();
          firstRows = rows;
        }
        if (Date.now() - lastLog > 5000) {
          lastLog = Date.now();
          log(
            `  ingest: ${rows} rows after ${((Date.now() - t0) / 1000).toFixed(1)} s, RSS ${peakRss.toFixed(0)} MB peak`,
          );
        }
        if (Date.now() - t0 > 900_000) throw new Error(`ingest drained only ${rows} of ${total} in 15 min`);
      }
      const t1 = Date.now();
      // The raw part is visible a moment before the views' parts of the same insert: let the last one land.
      let rollup = 0;
      for (
        let i = 0;
        i < 120 && (rollup = await count(ch, 'SELECT sum(requests) AS n FROM usage_minute')) < total;
        i++
      )
        await sleep(250);
      const drain = {
        seconds: (t1 - t0) / 1000,
        eventsPerSecond: total / ((t1 - t0) / 1000),
        steadyEventsPerSecond: (total - firstRows) / ((t1 - (firstAt ?? t0)) / 1000),
        firstRowSeconds: ((firstAt ?? t1) - t0) / 1000,
        peakRssMb: peakRss,
        minuteRollupRequests: rollup,
        nodeOptions: nodeOptions ?? '',
      };
      log(
        `  ingest: ${Math.round(drain.eventsPerSecond)} events/s (${Math.round(drain.steadyEventsPerSecond)} after the first rows), RSS ${Math.round(peakRss)} MB`,
      );
      if (rollup !== total) throw new Error(`minute rollup holds ${rollup} requests, expected ${total}`);
      return { child, drain };
    };
    log(`ingest, V8 heap capped as infra/docker-compose.yml deploys it (${DEPLOYED_NODE_OPTIONS}) ...`);
    const capped = await drainWith('bench_ingest_capped', 'bench-ingest-capped', DEPLOYED_NODE_OPTIONS);
    await stopChild(capped.child);
    out.drainCapped = capped.drain;
    log('ingest, Node defaults: tokenledger ingest draining bench.usage ...');
    const ch = client('bench_ingest');
    const plain = await drainWith('bench_ingest', 'bench-ingest', process.env.BENCH_INGEST_NODE_OPTIONS);
    ingest = plain.child;
    const drain = plain.drain;
    out.drain = drain;

    // ---- freshness: record() → visible in the minute rollup, at a steady rate ----------------------------
    log(`freshness: ${rate} events/s through the emitter for ${freshnessSeconds} s ...`);
    {
      const emitter = createEmitter({
        kafka,
        topic: 'bench.usage',
        logger: createLogger({ level: 'error' }),
        spool: false,
      });
      const probes = new Map<string, number>();
      const seen = new Map<string, number>();
      const state = { polling: true, stopAt: Number.POSITIVE_INFINITY, freshRss: 0 };
      const ingestPid = ingest.pid;
      const poller = (async () => {
        while (state.polling || seen.size < probes.size) {
          const rs = await ch.query({
            query: "SELECT DISTINCT user_id FROM usage_minute WHERE team_id = 'freshness-probe'",
            format: 'JSONEachRow',
          });
          const now = Date.now();
          for (const r of await rs.json<{ user_id: string }>())
            if (!seen.has(r.user_id)) seen.set(r.user_id, now);
          state.freshRss = Math.max(state.freshRss, rssMb(ingestPid) || 0);
          if (!state.polling && Date.now() - state.stopAt > 30_000) break;
          await sleep(50);
        }
      })();
      const started = Date.now();
      let recorded = 0;
      let k = 0;
      for (let tick = 0; Date.now() - started < freshnessSeconds * 1000; tick++) {
        // 10 ms ticks: catch up to the target rate
        const due = Math.floor(((Date.now() - started) / 1000) * rate);
        for (; recorded < due; recorded++) {
          emitter.record({
            team_id: `team-${recorded % 40}`,
            user_id: `user-${recorded % 900}`,
            provider: 'openai',
            request_model: 'gpt-4.1',
            input_tokens: 1000 + (recorded % 9000),
            output_tokens: 100 + (recorded % 900),
          });
        }
        if (tick % 5 === 0) {
          const id = `probe-${k++}`;
          probes.set(id, Date.now());
          emitter.record({
            team_id: 'freshness-probe',
            user_id: id,
            provider: 'openai',
            request_model: 'gpt-4.1',
          });
        }
        await sleep(10);
      }
      state.stopAt = Date.now();
      state.polling = false;
      await emitter.close({ timeoutMs: 30_000 });
      await poller;
      const latencies = [...probes].flatMap(([id, at]) => {
        const v = seen.get(id);
        return v === undefined ? [] : [v - at];
      });
      latencies.sort((a, b) => a - b);
      const achieved = recorded / ((state.stopAt - started) / 1000);
      out.freshness = {
        targetRate: rate,
        achievedRate: achieved,
        probes: probes.size,
        visible: latencies.length,
        p50Ms: quantile(latencies, 0.5),
        p99Ms: quantile(latencies, 0.99),
        maxMs: latencies.at(-1),
        peakRssMb: state.freshRss,
      };
      log(
        `  freshness: p50 ${quantile(latencies, 0.5)} ms, p99 ${quantile(latencies, 0.99)} ms over ${latencies.length}/${probes.size} probes at ${Math.round(achieved)} events/s`,
      );
    }

    // ---- the table -----------------------------------------------------------------------------------------
    const d = drain;
    const dc = capped.drain;
    const f = out.freshness as {
      p50Ms: number;
      p99Ms: number;
      achievedRate: number;
      probes: number;
      visible: number;
      peakRssMb: number;
    };
    const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
    const steady = (r: { rows: number; seconds: number; firstRowSeconds: number }): number =>
      r.rows / (r.seconds - r.firstRowSeconds);
    const table = [
      `Command: \`npm run bench:ingest${args.length > 0 ? ` -- ${args.join(' ')}` : ''}\` (${os.cpus().length} cores, ${total.toLocaleString('en-US')} events, ${partitions} partitions)`,
      '',
      '| measure | tokenledger ingest | Kafka engine + MV, same rollups | ratio | Kafka engine + MV, raw table only | ratio |',
      '|---|---:|---:|---:|---:|---:|',
      `| drain rate, events/s (start → last row) | ${fmt(d.eventsPerSecond)} | ${fmt(keRollups.eventsPerSecond)} | ${(d.eventsPerSecond / keRollups.eventsPerSecond).toFixed(2)}× | ${fmt(ke.eventsPerSecond)} | ${(d.eventsPerSecond / ke.eventsPerSecond).toFixed(2)}× |`,
      `| drain rate after the first rows, events/s | ${fmt(d.steadyEventsPerSecond)} | ${fmt(steady(keRollups))} | ${(d.steadyEventsPerSecond / steady(keRollups)).toFixed(2)}× | ${fmt(steady(ke))} | ${(d.steadyEventsPerSecond / steady(ke)).toFixed(2)}× |`,
      `| drain rate, V8 heap capped as deployed (\`${DEPLOYED_NODE_OPTIONS}\`), events/s | ${fmt(dc.eventsPerSecond)} (${fmt(dc.steadyEventsPerSecond)} after the first rows) | | ${(dc.eventsPerSecond / keRollups.eventsPerSecond).toFixed(2)}× | | ${(dc.eventsPerSecond / ke.eventsPerSecond).toFixed(2)}× |`,
      `| rows written twice | 0 (exactly once) | ${keRollups.duplicates} | | ${ke.duplicates} | |`,
      `| consumer RSS peak, MB (drain / freshness) | ${fmt(d.peakRssMb)} / ${fmt(f.peakRssMb)}; heap capped as deployed: ${fmt(dc.peakRssMb)} (drain) | inside ClickHouse | | inside ClickHouse | |`,
      `| freshness record() → minute rollup, p50 / p99 ms | ${fmt(f.p50Ms)} / ${fmt(f.p99Ms)} at ${fmt(f.achievedRate)} events/s (${f.visible}/${f.probes} probes) | | | | |`,
      '',
      'Work per event — ingest: decode Avro (any writer version), validate, drop repeats, price, RowBinary insert into usage_events → minute → hour → day, offsets committed after ClickHouse acknowledged. Kafka engine: parse JSON, no validation, no pricing (cost 0), at-least-once.',
    ].join('\n');
    process.stdout.write(`${table}\n`);
    const dir = path.join(PROJECT_ROOT, '.tokenledger', 'bench');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'ingest.json'), `${JSON.stringify(out, null, 2)}\n`);
  } finally {
    for (const child of children) await stopChild(child);
    for (const c of clients) await c.close().catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
    await clickhouse.stop().catch(() => undefined);
    await broker.stop().catch(() => undefined);
    fs.rmSync(home, { recursive: true, force: true });
  }
}
