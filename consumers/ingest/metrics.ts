/** Ingest metrics (prom-client): events by outcome, dead letters by reason, batch sizes, insert latency, lag. */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export interface IngestMetrics {
  readonly registry: Registry;
  readonly events: Counter<'outcome'>;
  readonly dlq: Counter<'reason'>;
  readonly retries: Counter;
  readonly rangeCuts: Counter;
  readonly rangesReplayed: Counter;
  readonly rangesUnconfirmed: Counter;
  readonly batchRows: Histogram;
  readonly insertSeconds: Histogram;
  readonly lag: Gauge<'partition'>;
  readonly dedupeBytes: Gauge;
  /** Totals by outcome, for tests and the CLI's progress line. */
  snapshot(): Promise<Record<string, number>>;
}

export function createIngestMetrics(registry: Registry = new Registry()): IngestMetrics {
  const events = new Counter({
    name: 'tokenledger_ingest_events_total',
    help: 'Kafka messages by outcome: written, duplicate (client repeat), dead_letter, skipped_already_written',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const dlq = new Counter({
    name: 'tokenledger_ingest_dead_letters_total',
    help: 'Messages sent to the dead-letter topic, by reason',
    labelNames: ['reason'],
    registers: [registry],
  });
  const retries = new Counter({
    name: 'tokenledger_ingest_clickhouse_retries_total',
    help: 'ClickHouse calls retried after a retriable failure',
    registers: [registry],
  });
  const rangeCuts = new Counter({
    name: 'tokenledger_ingest_range_cuts_total',
    help: 'Offset ranges cut short because their events cross a UTC day (one part per table per insert)',
    registers: [registry],
  });
  const rangesReplayed = new Counter({
    name: 'tokenledger_ingest_ranges_replayed_total',
    help: 'Ranges whose raw part landed without an acknowledgement, written again (same token) on assignment so every rollup has them',
    registers: [registry],
  });
  const rangesUnconfirmed = new Counter({
    name: 'tokenledger_ingest_ranges_unconfirmed_total',
    help: 'Unacknowledged ranges that could not be replayed safely (older than the dedup window, or raw rows not matching): rollups may miss them; see the error log',
    registers: [registry],
  });
  const batchRows = new Histogram({
    name: 'tokenledger_ingest_insert_rows',
    help: 'Rows per ClickHouse insert',
    buckets: [100, 1000, 5000, 10_000, 25_000, 50_000, 100_000],
    registers: [registry],
  });
  const insertSeconds = new Histogram({
    name: 'tokenledger_ingest_insert_seconds',
    help: 'ClickHouse insert latency (raw table and its materialized views)',
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10],
    registers: [registry],
  });
  const lag = new Gauge({
    name: 'tokenledger_ingest_consumer_lag',
    help: 'Messages behind the partition high watermark, at the last batch',
    labelNames: ['partition'],
    registers: [registry],
  });
  const dedupeBytes = new Gauge({
    name: 'tokenledger_ingest_dedupe_bytes',
    help: 'Memory held by the repeat check (event_ids of the dedupe horizon, every owned partition)',
    registers: [registry],
  });
  return {
    registry,
    events,
    dlq,
    retries,
    rangeCuts,
    rangesReplayed,
    rangesUnconfirmed,
    batchRows,
    insertSeconds,
    lag,
    dedupeBytes,
    async snapshot() {
      const out: Record<string, number> = {};
      for (const v of (await events.get()).values) out[String(v.labels.outcome)] = v.value;
      for (const v of (await dlq.get()).values) out[`dlq:${String(v.labels.reason)}`] = v.value;
      out.retries = (await retries.get()).values[0]?.value ?? 0;
      out.dedupe_bytes = (await dedupeBytes.get()).values[0]?.value ?? 0;
      out.range_cuts = (await rangeCuts.get()).values[0]?.value ?? 0;
      out.ranges_replayed = (await rangesReplayed.get()).values[0]?.value ?? 0;
      out.ranges_unconfirmed = (await rangesUnconfirmed.get()).values[0]?.value ?? 0;
      return out;
    },
  };
}
