/**
 * The BASELINE of `bench:ingest`: what ClickHouse does on its own, with no tokenledger code in the path. Its Kafka
 * table engine reads JSON usage events from a topic and a materialized view writes them into a MergeTree table
 * with the columns of usage_events (migrations/0001_initial.sql). Measured in events/s: from the moment the MV is
 * attached (that is when the engine starts streaming) to the moment the table holds every expected message
 * (distinct partition/offset pairs: the engine is at-least-once).
 *
 * It runs on the local endpoint (infra/clickhouse/): the engine is chdb, a ClickHouse build that includes the
 * Kafka engine (USE_RDKAFKA = 1, `Kafka` in system.table_engines) and runs its consumers on the engine's own
 * background threads inside the endpoint process. Verified working on 26.7.2.1.
 *
 * What the baseline does NOT do, so the comparison is read fairly: no pricing (cost_nanousd = 0,
 * price_version = '', cost_status = 'unpriced'), no validation or dead-letter topic, no exactly-once (the
 * engine commits offsets after its insert; a crash in between duplicates a block), and JSON on the wire instead
 * of Avro (the engine's Avro format needs a schema registry or one fixed schema). `produceJsonTwin` writes
 * the same events, JSON-encoded, to a twin topic for it.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import type { Kafka } from 'kafkajs';
import { Partitioners } from 'kafkajs';
import { quoteIdentifier } from '../lib/clickhouse';
import type { UsageEvent } from '../schemas/usage-event/types';

export const KAFKA_ENGINE_TABLE = 'kafka_engine_events';
export const KAFKA_ENGINE_QUEUE = 'kafka_engine_queue';
export const KAFKA_ENGINE_MV = 'kafka_engine_mv';

/**
 * Kafka engine settings (ClickHouse docs, "Kafka table engine"). The defaults are the best found by a sweep on
 * the reference machine: 2 vCPUs shared by the broker, the endpoint and Node; 6 partitions; ~650-byte JSON
 * events; median of 2-3 runs each with no other load on the machine (events/s from MV attach to the last row):
 *
 *   consumers  thread/consumer  flush ms    200k      1M
 *   1          1                1000/3000   35k       43k
 *   2          1                1000        53-59k    70-72k   <- chosen
 *   2          1                3000        51k       59-80k (bimodal: the last block waits for the interval)
 *   2          0                3000        -         59-80k
 *   6          0                1000        -         32k (15 s before the first row: rebalance stall)
 *   3 or 6     1                1000        57-59k    71-75k   (only 2 ever consume, see below)
 *
 * The endpoint spent ~23 CPU-seconds per million events whatever the settings (1.6-1.8 of the 2 cores while
 * streaming): the engine is CPU-bound here; the settings only decide how well the two cores are kept busy.
 *
 *  - numConsumers (kafka_num_consumers): consumers per table, each owning some partitions. The docs cap it at the
 *    partition count and the physical cores; ClickHouse refuses more than max(cores, 16) unless
 *    kafka_disable_num_consumers_limit. 2 = the cores = the engine's streaming threads (next point). More are
 *    accepted but never consume: with 3 or 6, system.kafka_consumers showed exactly two consumers holding all
 *    six partitions and the others with no assignment for the whole run. 1 leaves a core idle.
 *  - threadPerConsumer (kafka_thread_per_consumer): 1 gives each consumer its own streaming task that parses and
 *    inserts its own blocks. Those tasks run on background_message_broker_schedule_pool_size threads, which is
 *    2 in this engine (system.server_settings; a server setting, not settable from SQL): hence at most 2
 *    consumers. 0 runs every consumer on one task: rows squashed into one block, one parsing thread, and
 *    with 6 consumers a rebalance stall (one consumer took all partitions, the rest joined 15 s later).
 *  - flushIntervalMs (kafka_flush_interval_ms, default stream_flush_interval_ms = 7,500): in practice this, not
 *    kafka_max_block_size, cuts the blocks: a consumer here parses ~50k messages/s, so a block closes on time
 *    (1 s: one 65,536-message poll) long before 1M rows. Longer intervals make fewer, bigger inserts (3 s: 6
 *    per million instead of 17) but the run's last block can wait up to a whole interval; 7.5 s measured 60k
 *    at 1M.
 *  - maxBlockSize (kafka_max_block_size, default max_insert_block_size = 1,048,449): left high so blocks are cut
 *    by time; 131,072 or 262,144 with the default flush interval measured 49-57k/s at 1M.
 *  - pollMaxBatchSize (kafka_poll_max_batch_size, default max_block_size = 65,409): messages per librdkafka poll;
 *    16,384 and 262,144 were within noise of 65,536.
 *
 * Run-to-run spread is wide (±20%) even on an idle machine: the consumers start one after the other, and
 * when the first one joins alone it takes all six partitions until a rebalance hands half of them over (seen
 * at up to 4 s; 200k runs then measure 25-35k/s). Report the median of several runs.
 */
export interface KafkaEngineSettings {
  readonly numConsumers: number;
  readonly threadPerConsumer: boolean;
  readonly maxBlockSize: number;
  readonly pollMaxBatchSize: number;
  readonly flushIntervalMs: number;
}

export const DEFAULT_KAFKA_ENGINE_SETTINGS: KafkaEngineSettings = {
  numConsumers: 2,
  threadPerConsumer: true,
  maxBlockSize: 1_048_576,
  pollMaxBatchSize: 65_536,
  flushIntervalMs: 1_000,
};

export interface KafkaEngineBaselineOptions {
  readonly clickhouse: ClickHouseClient;
  /** Database for the three objects (must exist, with the project's migrations applied). */
  readonly database: string;
  /** host:port list, as the ClickHouse process (not this one) reaches the brokers. */
  readonly brokers: string | readonly string[];
  /** The JSON twin topic (see produceJsonTwin); it must already hold the events. */
  readonly topic: string;
  /** Rows to wait for. */
  readonly expected: number;
  /** A fresh consumer group: the engine starts from the earliest offset only when the group has none. */
  readonly groupId: string;
  readonly timeoutMs: number;
  readonly settings?: Partial<KafkaEngineSettings>;
  /** How often count() is read; default 100 ms. */
  readonly pollIntervalMs?: number;
  readonly onProgress?: (progress: { rows: number; seconds: number }) => void;
  /**
   * Write into this existing table of `database` (usage_events' columns) instead of a fresh
   * kafka_engine_events: with the project's migrations applied, usage_events feeds the same minute → hour → day
   * rollups as ingest does, so the baseline does the same ClickHouse-side work. Left as it is afterwards.
   */
  readonly targetTable?: string;
}

export interface KafkaEngineBaselineResult {
  readonly rows: number;
  readonly seconds: number;
  readonly eventsPerSecond: number;
  /** When the first rows were visible (consumer group join + the first block), seconds after the MV attach. */
  readonly firstRowSeconds: number;
  /** Rows written twice (at-least-once: a consumer-group rebalance can re-read a block). */
  readonly duplicates: number;
  /** Blocks the MV inserted into the table (one data part each before merges). */
  readonly inserts: number;
  readonly settings: KafkaEngineSettings;
}

/** A ClickHouse string literal. */
function literal(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/**
 * The target: a copy of usage_events' structure (columns, types, key, partitioning, TTL and settings) without its
 * materialized views. The database must have the project's migrations applied (migrations/runner.ts).
 */
function targetDdl(table: string, db: string): string {
  return `CREATE TABLE ${table} AS ${db}.usage_events`;
}

/**
 * The queue: the event as it is on the wire (UsageEvent, JSON), nullable where the Avro schema is. The Kafka
 * engine allows no DEFAULT columns; conversions live in the MV.
 */
function queueDdl(queue: string, o: KafkaEngineBaselineOptions, s: KafkaEngineSettings): string {
  const brokers = typeof o.brokers === 'string' ? o.brokers : o.brokers.join(',');
  return `CREATE TABLE ${queue}
(
    event_id                    UUID,
    occurred_at                 Int64,
    org_id                      Nullable(String),
    team_id                     String,
    user_id                     Nullable(String),
    project_id                  Nullable(String),
    application                 Nullable(String),
    environment                 Nullable(String),
    provider                    String,
    operation                   String,
    request_model               String,
    response_model              Nullable(String),
    streaming                   Bool,
    service_tier                Nullable(String),
    status                      String,
    error_type                  Nullable(String),
    duration_ms                 Nullable(UInt32),
    time_to_first_token_ms      Nullable(UInt32),
    input_tokens                UInt64,
    cache_read_input_tokens     UInt64,
    cache_creation_input_tokens UInt64,
    output_tokens               UInt64,
    reasoning_output_tokens     UInt64,
    client_cost_nanousd         Nullable(Int64),
    tags                        Map(String, String),
    sdk                         String
)
ENGINE = Kafka
SETTINGS
    kafka_broker_list = ${literal(brokers)},
    kafka_topic_list = ${literal(o.topic)},
    kafka_group_name = ${literal(o.groupId)},
    kafka_format = 'JSONEachRow',
    kafka_num_consumers = ${s.numConsumers},
    kafka_thread_per_consumer = ${s.threadPerConsumer ? 1 : 0},
    kafka_max_block_size = ${s.maxBlockSize},
    kafka_poll_max_batch_size = ${s.pollMaxBatchSize},
    kafka_flush_interval_ms = ${s.flushIntervalMs}`;
}

function mvDdl(mv: string, table: string, queue: string): string {
  return `CREATE MATERIALIZED VIEW ${mv} TO ${table} AS
SELECT
    event_id,
    fromUnixTimestamp64Milli(occurred_at, 'UTC') AS occurred_at,
    ifNull(org_id, '')         AS org_id,
    team_id,
    ifNull(user_id, '')        AS user_id,
    ifNull(project_id, '')     AS project_id,
    ifNull(application, '')    AS application,
    ifNull(environment, '')    AS environment,
    provider,
    operation,
    request_model,
    ifNull(response_model, '') AS response_model,
    streaming,
    ifNull(service_tier, '')   AS service_tier,
    status,
    ifNull(error_type, '')     AS error_type,
    duration_ms,
    time_to_first_token_ms,
    input_tokens,
    cache_read_input_tokens,
    cache_creation_input_tokens,
    output_tokens,
    reasoning_output_tokens,
    client_cost_nanousd,
    toInt64(0)                 AS cost_nanousd,
    ''                         AS price_version,
    'unpriced'                 AS cost_status,
    tags,
    sdk,
    ''                         AS schema_fingerprint,
    _topic                     AS kafka_topic,
    _partition                 AS kafka_partition,
    _offset                    AS kafka_offset
FROM ${queue}`;
}

async function scalar(clickhouse: ClickHouseClient, query: string): Promise<number> {
  const rs = await clickhouse.query({ query, format: 'TabSeparated' });
  return Number((await rs.text()).trim());
}

/** What the engine's consumers last reported (errors above all), for a failure message. */
async function consumerReport(clickhouse: ClickHouseClient, database: string): Promise<string> {
  try {
    const rs = await clickhouse.query({
      query: `SELECT consumer_id, assignments.partition_id AS partitions, num_messages_read,
                     num_commits, exceptions.text AS errors
              FROM system.kafka_consumers WHERE database = {db:String} AND table = {t:String}`,
      query_params: { db: database, t: KAFKA_ENGINE_QUEUE },
      format: 'JSONEachRow',
    });
    const rows = await rs.json();
    return rows.length === 0 ? 'system.kafka_consumers has no consumer for the queue' : JSON.stringify(rows);
  } catch (err) {
    return `system.kafka_consumers unreadable: ${err instanceof Error ? err.message : String(err)}`;
  }
}

/**
 * Creates `kafka_engine_events` (fresh), the Kafka engine table `kafka_engine_queue` and the MV between them in
 * `database`, waits until the table holds `expected` rows and returns the rate. The queue and the MV are always
 * dropped at the end (the engine would keep consuming); the events table is left for the caller to inspect.
 */
export async function runKafkaEngineBaseline(
  options: KafkaEngineBaselineOptions,
): Promise<KafkaEngineBaselineResult> {
  const { clickhouse, expected, timeoutMs } = options;
  const settings: KafkaEngineSettings = { ...DEFAULT_KAFKA_ENGINE_SETTINGS, ...options.settings };
  const db = quoteIdentifier(options.database);
  const tableName = options.targetTable ?? KAFKA_ENGINE_TABLE;
  const table = `${db}.${quoteIdentifier(tableName)}`;
  const queue = `${db}.${quoteIdentifier(KAFKA_ENGINE_QUEUE)}`;
  const mv = `${db}.${quoteIdentifier(KAFKA_ENGINE_MV)}`;
  const pollMs = options.pollIntervalMs ?? 100;
  const dropStreaming = async (): Promise<void> => {
    // The MV first: with no view attached the engine stops streaming; then the consumers go with the queue.
    await clickhouse.command({ query: `DROP TABLE IF EXISTS ${mv} SYNC` });
    await clickhouse.command({ query: `DROP TABLE IF EXISTS ${queue} SYNC` });
  };

  await dropStreaming();
  if (options.targetTable === undefined) {
    await clickhouse.command({ query: `DROP TABLE IF EXISTS ${table} SYNC` });
    await clickhouse.command({ query: targetDdl(table, db) });
  }
  await clickhouse.command({ query: queueDdl(queue, options, settings) });
  try {
    const t0 = process.hrtime.bigint();
    await clickhouse.command({ query: mvDdl(mv, table, queue) });
    const elapsed = (): number => Number(process.hrtime.bigint() - t0) / 1e9;
    // count() is cheap enough to poll; once it reaches `expected`, distinct (partition, offset) pairs are
    // counted too, because the engine is at-least-once: a rebalance mid-block re-reads messages, and the run is
    // only over when every message is in.
    const countQuery = `SELECT count() FROM ${table}`;
    const distinctQuery = `SELECT uniqExact(kafka_partition, kafka_offset) FROM ${table}`;
    let firstRowSeconds = NaN;
    for (;;) {
      const rows = await scalar(clickhouse, countQuery);
      const distinct = rows >= expected ? await scalar(clickhouse, distinctQuery) : 0;
      const seconds = elapsed();
      if (rows > 0 && Number.isNaN(firstRowSeconds)) firstRowSeconds = seconds;
      options.onProgress?.({ rows, seconds });
      if (distinct >= expected) {
        // MergeTree numbers blocks per table, one number per insert, and merges keep the highest: so this is
        // how many blocks the MV inserted, whether or not merges have run since.
        const inserts = await scalar(
          clickhouse,
          `SELECT max(max_block_number) FROM system.parts WHERE database = ${literal(options.database)} AND table = ${literal(tableName)} AND active`,
        );
        return {
          rows: distinct,
          seconds,
          eventsPerSecond: distinct / seconds,
          firstRowSeconds,
          duplicates: rows - distinct,
          inserts,
          settings,
        };
      }
      if (seconds * 1000 > timeoutMs) {
        throw new Error(
          `Kafka engine baseline: ${rows} of ${expected} rows after ${seconds.toFixed(1)} s (topic ${options.topic}, group ${options.groupId}); consumers: ${await consumerReport(clickhouse, options.database)}`,
        );
      }
      await new Promise((r) => setTimeout(r, pollMs));
    }
  } finally {
    await dropStreaming();
  }
}

export interface JsonTwinOptions {
  readonly kafka: Kafka;
  readonly topic: string;
  readonly events: Iterable<UsageEvent>;
  /** Messages per produce call; default 4,000 (spread over the partitions, well under message.max.bytes). */
  readonly batchSize?: number;
  /** Produce calls in flight; default 4. */
  readonly concurrency?: number;
}

/**
 * Writes `events` to `topic` JSON-encoded, one UsageEvent object per message (the field names of usage_events,
 * occurred_at as epoch milliseconds), key team_id and the default partitioner like the emitter, acks=-1,
 * uncompressed. Returns the number of messages acknowledged.
 */
export async function produceJsonTwin(options: JsonTwinOptions): Promise<number> {
  const batchSize = options.batchSize ?? 4_000;
  const concurrency = options.concurrency ?? 4;
  const producer = options.kafka.producer({
    createPartitioner: Partitioners.DefaultPartitioner,
    maxInFlightRequests: concurrency,
    allowAutoTopicCreation: false,
  });
  await producer.connect();
  let sent = 0;
  const inFlight = new Set<Promise<void>>();
  const send = (messages: { key: string; value: string }[]): void => {
    const p = producer.send({ topic: options.topic, acks: -1, messages }).then(() => {
      sent += messages.length;
      inFlight.delete(p);
    });
    // A failed send is reported by the race/all below; this only keeps it from counting as unhandled meanwhile.
    p.catch(() => undefined);
    inFlight.add(p);
  };
  try {
    let batch: { key: string; value: string }[] = [];
    for (const e of options.events) {
      batch.push({ key: e.team_id, value: JSON.stringify(e) });
      if (batch.length >= batchSize) {
        send(batch);
        batch = [];
        if (inFlight.size >= concurrency) await Promise.race(inFlight);
      }
    }
    if (batch.length > 0) send(batch);
    await Promise.all(inFlight);
    return sent;
  } finally {
    await Promise.allSettled(inFlight);
    await producer.disconnect();
  }
}
