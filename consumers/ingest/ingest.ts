/**
 * The ingest consumer: Kafka usage events → ClickHouse raw events (and, through materialized views, the
 * minute/hour/day rollups), effectively once. docs/decisions/0011-ingest.md explains the design; in short:
 *
 *  - kafkajs `eachBatch`, one partition's batch at a time (several partitions concurrently). Each batch, split
 *    at `batchMaxRows` and wherever its events change UTC day, becomes ONE insert of a contiguous offset range
 *    [first, last] of one partition, so one part per table (raw and each rollup), each written atomically,
 *    with `insert_deduplication_token = <topic>-<partition>-<first>-<last>`: a retry of the range is dropped by
 *    ClickHouse as a duplicate block in the raw table and in every rollup (each has its own dedup window).
 *  - ClickHouse is the record of progress: when a partition is assigned, the newest offset already in the raw
 *    table is read back and everything at or below it is skipped, whatever Kafka's committed offset says.
 *    Each range is recorded in ingest_ranges before its insert and once acknowledged; a partition's newest range
 *    found unacknowledged with its raw rows in ClickHouse (its raw part may have landed without every view's
 *    part) is written again with its own token first (confirmLastRange).
 *  - Kafka offsets are committed only after ClickHouse acknowledged the insert (and the dead letters of the
 *    range were acknowledged by the DLQ topic).
 *  - Client repeats of an event_id are dropped (./dedupe.ts); bad messages go to the DLQ topic and the
 *    usage_dlq table with a reason; valid events of the same batch are written.
 *  - ClickHouse failures that are retriable by code are retried with backoff, the partition paused and the
 *    group heartbeat kept; a failure that retrying cannot fix stops ingest with the error (nothing committed).
 */
import { once } from 'node:events';
import { Readable } from 'node:stream';
import type { ClickHouseClient, ClickHouseSettings } from '@clickhouse/client';
import { CompressionTypes } from 'kafkajs';
import type { Consumer, EachBatchPayload, Kafka, KafkaMessage, Producer } from 'kafkajs';
import type { Registry } from 'prom-client';
import { queryRows } from '../../lib/clickhouse';
import { classifyClickHouseError, TokenledgerError } from '../../lib/errors';
import { rateLimitedLog } from '../../lib/logger';
import type { Logger } from '../../lib/logger';
import { usageEventRegistry } from '../../schemas/usage-event/schema';
import type { ValidationLimits } from '../../schemas/usage-event/validate';
import type { Catalog } from '../pricing';
import { PartitionDedupe } from './dedupe';
import { createIngestMetrics } from './metrics';
import type { IngestMetrics } from './metrics';
import { USAGE_COLUMNS, UsageRowWriter } from './rowbinary';
import { createConverter, dlqMessage, dlqRow } from './rows';
import type { DeadLetter, UsageRow } from './rows';

export interface IngestOptions {
  readonly kafka: Kafka;
  readonly clickhouse: ClickHouseClient;
  readonly logger: Logger;
  readonly catalog: Catalog;
  readonly topic: string;
  readonly groupId: string;
  readonly dlqTopic: string;
  readonly batchMaxRows?: number;
  readonly batchMaxWaitMs?: number;
  readonly dedupeHorizonMs?: number;
  readonly partitionsConcurrently?: number;
  /**
   * Members of the consumer group this process runs (default 2). kafkajs fetches again only when every batch of
   * the previous fetch is written, so one member alternates between converting (Node) and waiting for inserts
   * (ClickHouse); two members overlap the two. Each is an ordinary group member: the guarantees are unchanged.
   */
  readonly consumers?: number;
  /** Consumer-group session timeout (default 30 s). */
  readonly sessionTimeoutMs?: number;
  readonly limits?: ValidationLimits;
  readonly metricsRegistry?: Registry;
  /** Backoff of ClickHouse retries (default 200 ms doubling to 5 s). */
  readonly retry?: { readonly initialMs?: number; readonly maxMs?: number };
  /** Called once when ingest stops for good on an error retrying cannot fix. */
  readonly onFatal?: (err: Error) => void;
}

export interface Ingest {
  start(): Promise<void>;
  /**
   * Finishes the batches in progress (written to ClickHouse; kafkajs may drop their last commit while stopping,
   * which only costs the next owner a re-read that the progress in ClickHouse skips), then leaves the group.
   */
  stop(): Promise<void>;
  /** Consumer in the group and ClickHouse answering. */
  ready(): boolean;
  /** False after a fatal error. */
  healthy(): boolean;
  readonly metrics: IngestMetrics;
}

/** One member of the consumer group, with the partitions it owns in its current generation. */
interface Member {
  readonly consumer: Consumer;
  readonly partitions: Map<number, PartitionState>;
  joined: boolean;
}

interface PartitionState {
  /** Offsets at or below this are in ClickHouse already. */
  done: number;
  /** The 'done' mark of the partition's last range, in flight. */
  marking?: Promise<void>;
  readonly dedupe: PartitionDedupe;
}

const RAW_TABLE = 'usage_events';
/** One offset range of a partition as ingest_ranges records it. */
interface RangeRecord {
  readonly first: string;
  readonly last: string;
  /** The insert's insert_deduplication_token. */
  readonly token: string;
  /** Rows of its raw insert. */
  readonly rows: number;
}

/** What withRetry returns when the batch went stale or ingest is stopping: abandon the range, commit nothing. */
const ABANDONED: unique symbol = Symbol('abandoned');
const DLQ_TABLE = 'usage_dlq';
const RANGES_TABLE = 'ingest_ranges';
/**
 * An unacknowledged range is written again only while its token is surely still in every table's dedup window
 * (non_replicated_deduplication_window = 10,000 blocks, one block per table per insert): at most half of that
 * many ranges recorded since it, leaving room for other writers of the same tables.
 */
const REPLAY_WITHIN_RANGES = 5000;
/** ...and only within a day (ingest_ranges keeps a week: the ranges counted above are still there). */
const REPLAY_WITHIN_MS = 86_400_000;

/** A UTC day in ms (Unix time has no leap seconds): the finest partition of the tables an insert writes. */
const DAY_MS = 86_400_000;

export function createIngest(o: IngestOptions): Ingest {
  const log = o.logger.child({ module: 'ingest', topic: o.topic, groupId: o.groupId });
  const maxRows = o.batchMaxRows ?? 50_000;
  const horizonMs = o.dedupeHorizonMs ?? 600_000;
  const retryInitial = o.retry?.initialMs ?? 200;
  const retryMax = o.retry?.maxMs ?? 5000;
  const converter = createConverter(usageEventRegistry(), o.catalog, o.limits);
  const metrics = createIngestMetrics(o.metricsRegistry);
  const members: Member[] = [];
  let producer: Producer | undefined;
  let clickhouseOk = true;
  let fatal: Error | undefined;
  let stopping = false;

  const logLimited = rateLimitedLog(log, 'warn');

  /**
   * Runs a ClickHouse call until it succeeds: retriable failures (by code) back off and retry, keeping the
   * group heartbeat and pausing the partition; anything else is fatal. Returns ABANDONED when the batch went
   * stale (rebalance) or ingest is stopping mid-retry: the caller abandons the range without committing.
   */
  async function withRetry<T>(
    what: string,
    fn: () => Promise<T>,
    p?: Pick<EachBatchPayload, 'heartbeat' | 'isStale' | 'isRunning' | 'pause'>,
  ): Promise<T | typeof ABANDONED> {
    let delay = retryInitial;
    let resume: (() => void) | undefined;
    try {
      return await retrying();
    } finally {
      // Every way out — success, abandoned, fatal — resumes the partition: kafkajs keeps a paused partition
      // paused across a rejoin, so one left paused here would never be fetched again by this member.
      resume?.();
    }

    async function retrying(): Promise<T | typeof ABANDONED> {
      for (let attempt = 1; ; attempt++) {
        try {
          const result = await fn();
          clickhouseOk = true;
          return result;
        } catch (err) {
          const failure = classifyClickHouseError(err);
          if (!failure.retriable) {
            throw new TokenledgerError(
              'CLICKHOUSE_QUERY_FAILED',
              `${what} failed with ClickHouse error ${failure.code}, which retrying cannot fix: ${err instanceof Error ? err.message : String(err)}`,
              { cause: err },
            );
          }
          clickhouseOk = false;
          metrics.retries.inc();
          logLimited(
            'ch_retry',
            { err, what, attempt, code: failure.code },
            'ClickHouse unavailable; retrying',
          );
          resume ??= p?.pause();
          await new Promise((r) => setTimeout(r, delay));
          delay = Math.min(retryMax, delay * 2);
          if (p !== undefined) {
            if (p.isStale() || !p.isRunning()) return ABANDONED;
            // A failed heartbeat means the group is rebalancing (or dropped us): the partition may go to another
            // consumer, which reads progress from ClickHouse. Abandon the range rather than write it late.
            try {
              await p.heartbeat();
            } catch (err) {
              log.warn(
                { err },
                'group rebalancing while ClickHouse was unavailable: range abandoned, not committed',
              );
              return ABANDONED;
            }
          }
        }
      }
    }
  }

  const queryJson = <T>(query: string, params: Record<string, unknown>): Promise<T[]> =>
    queryRows<T>(o.clickhouse, query, params);

  /** ClickHouse's view of a partition: the newest offset and occurred_at written from it. */
  async function assign(partition: number, p: EachBatchPayload): Promise<PartitionState | undefined> {
    const rows = await withRetry(
      `reading the progress of partition ${partition}`,
      () =>
        queryJson<{ o: string; at: string; n: string }>(
          `SELECT max(kafka_offset) AS o, toUnixTimestamp64Milli(max(occurred_at)) AS at, count() AS n
         FROM ${RAW_TABLE} WHERE kafka_topic = {topic:String} AND kafka_partition = {p:UInt32}`,
          { topic: o.topic, p: partition },
        ),
      p,
    );
    if (rows === ABANDONED) return undefined;
    const r = rows[0];
    const empty = r === undefined || Number(r.n) === 0;
    if (!empty && !(await confirmLastRange(partition, r.o, p))) return undefined;
    const state: PartitionState = {
      done: empty ? -1 : Number(r.o),
      dedupe: new PartitionDedupe(horizonMs, empty ? Number.NEGATIVE_INFINITY : Number(r.at)),
    };
    log.info(
      { partition, resumeAfterOffset: state.done },
      'partition assigned: progress read from ClickHouse',
    );
    return state;
  }

  /** ClickHouse settings of the insert of one range: one block, deduplicated by the range's token. */
  function rangeInsertSettings(token: string, rows: number): ClickHouseSettings {
    return {
      // Explicit on every insert (DESIGN: the embedded engine defaults async_insert = 1).
      async_insert: 0,
      insert_deduplicate: 1,
      insert_deduplication_token: token,
      deduplicate_blocks_in_dependent_materialized_views: 1,
      // One insert = one block, so the token covers exactly this range.
      max_insert_block_size: String(Math.max(1_048_576, rows)),
      min_insert_block_size_rows: '0',
      min_insert_block_size_bytes: '0',
    };
  }

  /**
   * The 'done' mark of an acknowledged range: written even when the batch went stale meanwhile (the range is in
   * ClickHouse either way), a few attempts, then logged. Without it the partition's next owner replays the range
   * (harmless: every table drops it) or, much later, reports it as unconfirmed.
   */
  async function markDone(partition: number, r: RangeRecord): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await recordRange(partition, r, 'done');
        return;
      } catch (err) {
        if (attempt >= 10 || !classifyClickHouseError(err).retriable) {
          logLimited(
            'done_mark',
            { err, partition, ...r },
            'recording a written range failed (its next owner will replay it)',
          );
          return;
        }
        await new Promise((res) => setTimeout(res, Math.min(retryMax, retryInitial * 2 ** attempt)));
      }
    }
  }

  /** Records a range before its raw insert ('intent') and once ClickHouse acknowledged it ('done'). */
  function recordRange(
    partition: number,
    r: RangeRecord,
    state: 'intent' | 'done' | 'refused',
  ): Promise<unknown> {
    return o.clickhouse.insert({
      table: RANGES_TABLE,
      values: [
        {
          kafka_topic: o.topic,
          kafka_partition: partition,
          first_offset: r.first,
          last_offset: r.last,
          token: r.token,
          state,
          rows: r.rows,
        },
      ],
      format: 'JSONEachRow',
      clickhouse_settings: { async_insert: 0 },
    });
  }

  /**
   * On assignment, before anything of the partition is written: the range that wrote the partition's newest raw
   * row (`newest`, the newest offset in the raw table) is looked up. If it was recorded but never acknowledged,
   * the engine may have committed its raw part without every view's part (they are separate commits) — and
   * progress read from the raw table would skip it for good. So it is written again: its raw rows, read back as
   * they are, in one insert with the range's own token; the raw table and every rollup that has it drop it as a
   * duplicate, a rollup that missed it takes it. Only when that cannot double count: the raw rows in the range
   * number exactly what its intent recorded, and the token is surely still in every table's dedup window (fewer
   * than REPLAY_WITHIN_RANGES ranges recorded since, and younger than REPLAY_WITHIN_MS). Otherwise it is logged
   * as an error, counted once and marked 'refused', not guessed at. False: abandoned (rebalance, stopping).
   */
  async function confirmLastRange(partition: number, newest: string, p: EachBatchPayload): Promise<boolean> {
    const where = 'kafka_topic = {topic:String} AND kafka_partition = {p:UInt32}';
    const last = await withRetry(
      `reading the range of offset ${newest} of partition ${partition}`,
      () =>
        queryJson<{
          token: string;
          f: string;
          l: string;
          n_rows: number | string;
          settled: number | string;
          at_ms: string;
          age_ms: string;
        }>(
          // Every range recorded around the newest raw offset; ranges tried again from the same offset with other
          // bounds (an owner abandoned one unwritten) may overlap: the latest attempt first.
          // (ordered by intents only: a late 'done' of an older attempt must not hide a newer one)
          `SELECT token, any(first_offset) AS f, any(last_offset) AS l,
                  argMaxIf(rows, at, state = 'intent') AS n_rows, max(state != 'intent') AS settled,
                  toUnixTimestamp64Milli(minIf(at, state = 'intent')) AS at_ms,
                  dateDiff('millisecond', minIf(at, state = 'intent'), now64(3)) AS age_ms
           FROM ${RANGES_TABLE}
           WHERE ${where} AND first_offset <= {newest:UInt64} AND last_offset >= {newest:UInt64}
           GROUP BY token ORDER BY maxIf(at, state = 'intent') DESC, token DESC LIMIT 1`,
          { topic: o.topic, p: partition, newest },
        ),
      p,
    );
    if (last === ABANDONED) return false;
    const range = last[0];
    // none: rows written before ingest kept records (or by another writer); settled: done or refused before
    if (range === undefined || Number(range.settled) === 1) return true;
    // Provenance: the raw table has no token, but every row of one insert has the same ingested_at (the
    // server's now64 at the insert). The range's rows must be exactly one insert's, made after the intent, that
    // wrote nothing else in this partition — not rows another owner wrote over the same offsets.
    const found = await withRetry(
      `checking range ${range.f}-${range.l} of partition ${partition}`,
      () =>
        queryJson<{ n: string; inserts: string; ins_ms: string; same: string; since: string }>(
          `SELECT count() AS n, uniqExact(ingested_at) AS inserts,
                  toUnixTimestamp64Milli(min(ingested_at)) AS ins_ms,
                  (SELECT count() FROM ${RAW_TABLE} WHERE ${where} AND ingested_at =
                     (SELECT min(ingested_at) FROM ${RAW_TABLE}
                       WHERE ${where} AND kafka_offset BETWEEN {f:UInt64} AND {l:UInt64})) AS same,
                  (SELECT count() FROM ${RANGES_TABLE}
                    WHERE state = 'intent' AND at > fromUnixTimestamp64Milli({at:Int64})) AS since
           FROM ${RAW_TABLE} WHERE ${where} AND kafka_offset BETWEEN {f:UInt64} AND {l:UInt64}`,
          { topic: o.topic, p: partition, f: range.f, l: range.l, at: range.at_ms },
        ),
      p,
    );
    if (found === ABANDONED) return false;
    // (n ≥ 1: the range holds the partition's newest raw offset)
    const n = Number(found[0]?.n ?? 0);
    const inserts = Number(found[0]?.inserts ?? 0);
    const insertedAt = found[0]?.ins_ms ?? '0';
    const sameInsert = Number(found[0]?.same ?? 0);
    const since = Number(found[0]?.since ?? 0);
    const rows = Number(range.n_rows);
    const ageMs = Number(range.age_ms);
    const r = { first: range.f, last: range.l, token: range.token, rows };
    const about = { partition, ...r, rawRows: n, inserts, sameInsert, rangesSince: since, ageMs };
    const refusal =
      n !== rows || inserts !== 1 || sameInsert !== n || Number(insertedAt) < Number(range.at_ms)
        ? 'its raw rows are not the ones it wrote'
        : since >= REPLAY_WITHIN_RANGES || ageMs > REPLAY_WITHIN_MS
          ? 'it is older than the dedup window allows replaying'
          : undefined;
    if (refusal !== undefined) {
      metrics.rangesUnconfirmed.inc();
      log.error(
        about,
        `an unacknowledged range was not replayed (${refusal}): the rollups may miss it; compare usage_events with the rollups for these offsets (docs/decisions/0011-ingest.md)`,
      );
      // once: the next assignment finds it settled
      return (
        (await withRetry('recording a refused range', () => recordRange(partition, r, 'refused'), p)) !==
        ABANDONED
      );
    }
    const body = await withRetry(
      `reading back range ${range.f}-${range.l} of partition ${partition}`,
      async () => {
        const rs = await o.clickhouse.exec({
          query: `SELECT ${USAGE_COLUMNS.join(', ')} FROM ${RAW_TABLE} WHERE ${where}
                  AND kafka_offset BETWEEN {f:UInt64} AND {l:UInt64}
                  AND ingested_at = fromUnixTimestamp64Milli({ins:Int64})
                  ORDER BY kafka_offset FORMAT RowBinary`,
          query_params: { topic: o.topic, p: partition, f: range.f, l: range.l, ins: insertedAt },
        });
        const chunks: Buffer[] = [];
        for await (const c of rs.stream) chunks.push(c as Buffer);
        const data = Buffer.concat(chunks);
        // A failure after the response started ends the body with ClickHouse's exception block, marked with this
        // response's tag: never insert that under the range's token.
        const tag = rs.response_headers['x-clickhouse-exception-tag'];
        if (typeof tag === 'string' && tag !== '' && data.includes(tag))
          throw new Error(
            `reading back range ${range.f}-${range.l} failed part-way: ${data.toString('latin1', Math.max(0, data.length - 300))}`,
          );
        return data;
      },
      p,
    );
    if (body === ABANDONED) return false;
    const insert = rowBinaryInserter(body);
    const ok = await withRetry(
      `replaying range ${range.f}-${range.l} of partition ${partition}`,
      () => insert({ clickhouse_settings: rangeInsertSettings(range.token, n) }),
      p,
    );
    if (ok === ABANDONED) return false;
    await markDone(partition, r);
    metrics.rangesReplayed.inc();
    log.warn(
      about,
      'unacknowledged range written again with its own token (rollups that missed it have it now)',
    );
    return true;
  }

  /** The event_ids of `candidates` that ClickHouse already holds (client repeats of earlier events). */
  async function existingIds(
    candidates: readonly UsageRow[],
    p: EachBatchPayload,
  ): Promise<Set<string> | undefined> {
    const found = new Set<string>();
    for (let i = 0; i < candidates.length; i += 5000) {
      const part = candidates.slice(i, i + 5000);
      const teams = [...new Set(part.map((r) => r.team_id))];
      let min = Number.POSITIVE_INFINITY;
      let max = Number.NEGATIVE_INFINITY;
      for (const r of part) {
        if (r.occurred_at < min) min = r.occurred_at;
        if (r.occurred_at > max) max = r.occurred_at;
      }
      // ids inline (UUID literals are checked by the regex of validation); the primary key prunes by team and time
      const ids = part.map((r) => `'${r.event_id}'`).join(',');
      const rows = await withRetry(
        'looking up repeated event_ids',
        () =>
          queryJson<{ id: string }>(
            `SELECT toString(event_id) AS id FROM ${RAW_TABLE}
           WHERE team_id IN {teams:Array(String)}
             AND occurred_at BETWEEN fromUnixTimestamp64Milli({min:Int64}) AND fromUnixTimestamp64Milli({max:Int64})
             AND event_id IN (${ids})`,
            { teams, min, max },
          ),
        p,
      );
      if (rows === ABANDONED) return undefined;
      for (const r of rows) found.add(r.id);
    }
    return found;
  }

  /** One RowBinary insert into the raw table (@clickhouse/client's insert() has no RowBinary). */
  function rowBinaryInserter(
    body: Buffer,
  ): (p: { clickhouse_settings: ClickHouseSettings }) => Promise<void> {
    return async ({ clickhouse_settings }) => {
      const r = await o.clickhouse.exec({
        query: `INSERT INTO ${RAW_TABLE} (${USAGE_COLUMNS.join(', ')}) FORMAT RowBinary`,
        values: Readable.from([body]),
        clickhouse_settings,
      });
      r.stream.resume();
      await once(r.stream, 'end').catch(() => undefined);
    };
  }

  /**
   * Writes the longest prefix of `messages` whose rows all fall in one UTC day and returns how many messages that
   * prefix holds (0: not written, the range was abandoned). One day per insert makes each insert ONE part of
   * every table it writes — the raw table (partitioned by month), usage_minute (by day), usage_hour (by month),
   * usage_day (by year) — and ClickHouse writes each part atomically. An insert spanning two months wrote two
   * raw parts; had it failed between them and its range then been abandoned, progress read back later (the newest
   * offset in the raw table) could skip the part that did not land. Ranges are cut only around a UTC midnight or an
   * event from another day (a late one, a spool replay interleaved with live traffic), counted in
   * tokenledger_ingest_range_cuts_total.
   */
  async function writeRange(
    state: PartitionState,
    partition: number,
    all: readonly KafkaMessage[],
    p: EachBatchPayload,
  ): Promise<number> {
    const now = Date.now();
    let dayStart = Number.NEGATIVE_INFINITY;
    let dayEnd = Number.POSITIVE_INFINITY;
    let daySet = false;
    let count = all.length;
    // Rows go straight into the RowBinary body: a batch never holds all its row objects at once. (Sized for a
    // part of the range: it grows if needed, and a range cut short does not pay for the whole.)
    const body = new UsageRowWriter(Math.min(all.length, 8192));
    const ids: string[] = [];
    const ats: number[] = [];
    const keep = (row: UsageRow): void => {
      body.append(row);
      ids.push(row.event_id);
      ats.push(row.occurred_at);
    };
    const dead: DeadLetter[] = [];
    const toLookUp: UsageRow[] = [];
    // The partition's memory learns these ids only once ClickHouse has them: a failed range must not make its
    // own events look like repeats when it is tried again.
    const inRange = new Set<string>();
    let repeats = 0;
    for (let i = 0; i < all.length; i++) {
      const m = all[i] as KafkaMessage;
      const source = {
        topic: o.topic,
        partition,
        offset: m.offset,
        key: m.key,
        value: m.value,
        headers: m.headers,
      };
      const c = converter.convert(source, now);
      if (!c.ok) {
        dead.push({
          source,
          reason: c.reason,
          message: c.message,
          at: now,
        });
        continue;
      }
      const { row } = c;
      if (state.dedupe.has(row.event_id) || inRange.has(row.event_id)) {
        repeats++;
        continue;
      }
      if (!daySet) {
        dayStart = Math.floor(row.occurred_at / DAY_MS) * DAY_MS;
        dayEnd = dayStart + DAY_MS;
        daySet = true;
      } else if (row.occurred_at < dayStart || row.occurred_at >= dayEnd) {
        count = i; // another day: this range ends before this message, the next one starts with it
        metrics.rangeCuts.inc();
        break;
      }
      if (state.dedupe.needsLookup(row.occurred_at)) {
        toLookUp.push(row);
      } else {
        inRange.add(row.event_id);
        keep(row);
      }
    }
    const messages = all.slice(0, count);
    const first = messages[0]?.offset ?? '0';
    const last = messages[messages.length - 1]?.offset ?? first;
    if (toLookUp.length > 0) {
      const existing = await existingIds(toLookUp, p);
      if (existing === undefined) return 0;
      for (const row of toLookUp) {
        if (existing.has(row.event_id) || inRange.has(row.event_id)) {
          repeats++;
          continue;
        }
        inRange.add(row.event_id);
        keep(row);
      }
    }

    if (dead.length > 0) {
      const dlq = producer;
      if (dlq === undefined) return 0;
      await dlq.send({
        topic: o.dlqTopic,
        acks: -1,
        compression: CompressionTypes.GZIP,
        messages: dead.map(dlqMessage),
      });
      const token = `dlq-${o.topic}-${partition}-${first}-${last}`;
      const ok = await withRetry(
        `writing ${dead.length} dead letters`,
        () =>
          o.clickhouse.insert({
            table: DLQ_TABLE,
            values: dead.map(dlqRow),
            format: 'JSONEachRow',
            clickhouse_settings: { async_insert: 0, insert_deduplication_token: token },
          }),
        p,
      );
      if (ok === ABANDONED) return 0;
      for (const d of dead) metrics.dlq.inc({ reason: d.reason });
      logLimited(
        `dlq:${dead[0]?.reason ?? ''}`,
        { reason: dead[0]?.reason, message: dead[0]?.message, count: dead.length, partition },
        'messages sent to the dead-letter topic',
      );
    }

    const written = body.rows;
    if (written > 0) {
      const range = { first, last, token: `${o.topic}-${partition}-${first}-${last}`, rows: written };
      // The intent first: should the raw part land without every view's part and the range then be abandoned,
      // the partition's next owner finds it unacknowledged and writes it again (confirmLastRange).
      await state.marking;
      // (the mark may have taken a while: make sure the partition is still this member's before writing)
      if (!p.isRunning() || p.isStale()) return 0;
      try {
        await p.heartbeat();
      } catch {
        return 0;
      }
      const intent = await withRetry(
        `recording offsets ${first}-${last} of partition ${partition}`,
        () => recordRange(partition, range, 'intent'),
        p,
      );
      if (intent === ABANDONED) return 0;
      const insertRowBinary = rowBinaryInserter(body.bytes());
      const started = process.hrtime.bigint();
      const ok = await withRetry(
        `inserting offsets ${first}-${last} of partition ${partition}`,
        () => insertRowBinary({ clickhouse_settings: rangeInsertSettings(range.token, written) }),
        p,
      );
      if (ok === ABANDONED) return 0;
      metrics.insertSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
      // Acknowledged: raw and every view have it. The mark is not waited for here (it overlaps the offset commit
      // and the next fetch), only before the partition's next intent, so marks stay in order. Without it (a crash
      // right here, or it failed) the next owner replays the range, which every table drops as a duplicate.
      state.marking = markDone(partition, range);
      metrics.batchRows.observe(written);
    }
    for (let k = 0; k < ids.length; k++) state.dedupe.add(ids[k] ?? '', ats[k] ?? 0);
    let dedupeBytes = 0;
    for (const m of members) for (const s of m.partitions.values()) dedupeBytes += s.dedupe.bytes;
    metrics.dedupeBytes.set(dedupeBytes);
    metrics.events.inc({ outcome: 'written' }, written);
    metrics.events.inc({ outcome: 'duplicate' }, repeats);
    metrics.events.inc({ outcome: 'dead_letter' }, dead.length);
    return messages.length;
  }

  async function eachBatch(member: Member, p: EachBatchPayload): Promise<void> {
    const { batch } = p;
    const partition = batch.partition;
    if (batch.messages.length === 0) return;
    let state = member.partitions.get(partition);
    if (state === undefined) {
      state = await assign(partition, p);
      if (state === undefined) return;
      member.partitions.set(partition, state);
    }
    const done = state.done;
    const todo = batch.messages.filter((m) => Number(m.offset) > done);
    metrics.events.inc({ outcome: 'skipped_already_written' }, batch.messages.length - todo.length);
    metrics.lag.set({ partition: String(partition) }, Number(batch.offsetLag()));
    for (let i = 0; i < todo.length;) {
      if (!p.isRunning() || p.isStale()) return;
      const written = await writeRange(state, partition, todo.slice(i, i + maxRows), p);
      if (written === 0) {
        // Abandoned: what this member knows of the partition may be stale (an insert that failed may have
        // landed after all); the next batch reads its progress from ClickHouse again.
        member.partitions.delete(partition);
        return;
      }
      i += written;
      const last = todo[i - 1]?.offset ?? '0';
      state.done = Number(last);
      p.resolveOffset(last);
      await commit(member, partition, last);
      try {
        await p.heartbeat();
      } catch {
        // The group is rebalancing or dropped this member (kafkajs heartbeats only between ranges): stop here;
        // what was written is committed, the rest goes to the partition's next owner.
        return;
      }
    }
    if (todo.length === 0) {
      const last = batch.lastOffset();
      p.resolveOffset(last);
      await commit(member, partition, last);
    }
  }

  async function commit(member: Member, partition: number, offset: string): Promise<void> {
    try {
      await member.consumer.commitOffsets([
        { topic: o.topic, partition, offset: String(Number(offset) + 1) },
      ]);
    } catch (err) {
      // The data is in ClickHouse: a lost commit only means re-reading a range that will be skipped.
      logLimited('commit', { err, partition }, 'committing offsets failed (ClickHouse has the data)');
    }
  }

  /** Starts one member of the group. */
  async function startMember(index: number): Promise<void> {
    const c = o.kafka.consumer({
      groupId: o.groupId,
      // Let the broker gather bigger batches (what arrived within the wait, at least 256 KiB), bounded so memory
      // stays small: 1 MiB per partition is ~30,000 gzip-compressed events, and 1 MiB per fetch, so a member
      // holds about one partition's batch at a time while the other members' batches are being written
      // (measured: the same drain rate as 2–4 MiB fetches, 50–90 MB less memory).
      maxBytesPerPartition: 1024 * 1024,
      maxBytes: 1024 * 1024,
      minBytes: 256 * 1024,
      maxWaitTimeInMs: o.batchMaxWaitMs ?? 500,
      sessionTimeout: o.sessionTimeoutMs ?? 30_000,
      rebalanceTimeout: 60_000,
      heartbeatInterval: Math.max(500, Math.floor((o.sessionTimeoutMs ?? 30_000) / 10)),
      retry: { retries: 10 },
    });
    const member: Member = { consumer: c, partitions: new Map(), joined: false };
    members.push(member);
    c.on(c.events.GROUP_JOIN, (e) => {
      // A new generation: progress is read back from ClickHouse for every partition this member gets.
      member.partitions.clear();
      member.joined = true;
      // (withRetry resumes what it paused; this is the safety net: nothing stays paused into a new generation.)
      const paused = c.paused();
      if (paused.length > 0) c.resume(paused);
      log.info({ member: index, assignment: e.payload.memberAssignment }, 'joined the consumer group');
    });
    c.on(c.events.CRASH, (e) => {
      log.error({ err: e.payload.error, restart: e.payload.restart, member: index }, 'consumer crashed');
      if (!e.payload.restart && fatal === undefined) {
        fatal = e.payload.error;
        o.onFatal?.(e.payload.error);
      }
    });
    c.on(c.events.STOP, () => {
      member.joined = false;
    });
    await c.connect();
    await c.subscribe({ topic: o.topic, fromBeginning: true });
    await c.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: o.partitionsConcurrently ?? 3,
      eachBatch: async (payload) => {
        try {
          await eachBatch(member, payload);
        } catch (err) {
          if (err instanceof TokenledgerError && err.code === 'CLICKHOUSE_QUERY_FAILED') {
            log.error({ err }, 'ingest stopped: a ClickHouse error retrying cannot fix');
            if (fatal === undefined) {
              fatal = err;
              o.onFatal?.(err);
            }
            // Nothing of this range was committed; stop consuming (every member) rather than skip it.
            for (const m of members)
              m.consumer.stop().catch((e: unknown) => log.warn({ err: e }, 'stopping a consumer failed'));
            return;
          }
          throw err; // kafkajs retries the batch (nothing was committed for it)
        }
      },
    });
  }

  return {
    metrics,
    // Ready as soon as one member consumes (the others may still be joining, or idle on a topic with fewer
    // partitions than members).
    ready: () => members.some((m) => m.joined) && clickhouseOk && fatal === undefined && !stopping,
    healthy: () => fatal === undefined,
    async start() {
      producer = o.kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        allowAutoTopicCreation: false,
      });
      await producer.connect();
      const count = o.consumers ?? 2;
      // Started together, so they usually join in one generation instead of the first taking every partition and
      // giving some back a moment later.
      const started = await Promise.allSettled(Array.from({ length: count }, (_, i) => startMember(i)));
      const failed = started.find((r) => r.status === 'rejected');
      if (failed !== undefined) {
        // One member could not start: stop the others rather than run half a consumer.
        await Promise.all(members.map((m) => m.consumer.disconnect().catch(() => undefined)));
        await producer.disconnect().catch(() => undefined);
        throw failed.reason;
      }
      log.info({ maxRows, horizonMs, consumers: count }, 'ingest started');
    },
    async stop() {
      stopping = true;
      await Promise.all(
        members.map((m) =>
          m.consumer.disconnect().catch((err: unknown) => log.warn({ err }, 'consumer disconnect failed')),
        ),
      );
      await producer?.disconnect().catch(() => undefined);
      // the last ranges' 'done' marks (bounded: markDone gives up after a few attempts)
      await Promise.all(
        members.flatMap((m) => [...m.partitions.values()].map((s) => s.marking ?? Promise.resolve())),
      );
      for (const m of members) m.joined = false;
      log.info({}, 'ingest stopped');
    },
  };
}
