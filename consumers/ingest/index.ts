export { createIngest } from './ingest';
export type { Ingest, IngestOptions } from './ingest';
export { createIngestMetrics } from './metrics';
export type { IngestMetrics } from './metrics';
export { DLQ_HEADERS, createConverter, dlqMessage, dlqRow } from './rows';
export type { DeadLetter, DlqReason, UsageRow } from './rows';
export { IdSet, PartitionDedupe } from './dedupe';
