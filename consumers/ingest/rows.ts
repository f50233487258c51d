/**
 * Turning Kafka messages into ClickHouse rows, or into dead letters: decode with the codec (any known writer
 * version), validate (DESIGN's rules, with the reason code the DLQ header carries), price with the catalog entry
 * in force at `occurred_at`. Pure: no I/O, so it is unit-tested on its own.
 */
import type { IHeaders } from 'kafkajs';
import { isTokenledgerError } from '../../lib/errors';
import type { SchemaRegistry } from '../../schemas/codec';
import type { UsageEvent } from '../../schemas/usage-event/types';
import { DEFAULT_LIMITS, describeIssues, validateUsageEvent } from '../../schemas/usage-event/validate';
import type { ValidationLimits } from '../../schemas/usage-event/validate';
import { priceEvent } from '../pricing';
import type { Catalog } from '../pricing';

const INT64_MAX = 2n ** 63n - 1n;

/** Why a message went to the dead-letter topic: a codec failure or the first validation rule it broke. */
export type DlqReason =
  | 'bad_magic'
  | 'unknown_fingerprint'
  | 'body_invalid'
  | 'empty_value'
  | 'duration_out_of_range'
  | 'cost_out_of_range'
  | ReturnType<typeof validateUsageEvent>[number]['reason'];

/** A row of `usage_events` as JSONEachRow (Int64 money as a decimal string: JSON numbers stop at 2^53). */
export interface UsageRow {
  event_id: string;
  occurred_at: number;
  org_id: string;
  team_id: string;
  user_id: string;
  project_id: string;
  application: string;
  environment: string;
  provider: string;
  operation: string;
  request_model: string;
  response_model: string;
  streaming: boolean;
  service_tier: string;
  status: string;
  error_type: string;
  duration_ms: number | null;
  time_to_first_token_ms: number | null;
  input_tokens: number;
  cache_read_input_tokens: number;
  cache_creation_input_tokens: number;
  output_tokens: number;
  reasoning_output_tokens: number;
  client_cost_nanousd: string | null;
  cost_nanousd: string;
  price_version: string;
  cost_status: string;
  tags: Record<string, string>;
  sdk: string;
  schema_fingerprint: string;
  kafka_topic: string;
  kafka_partition: number;
  kafka_offset: string;
}

/** How long usage_events keeps rows (migrations/0001: TTL 400 days) minus a 5-day margin. */
export const RAW_RETENTION_MS = 395 * 24 * 3600_000;

export interface SourceMessage {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers?: IHeaders | undefined;
}

export type Converted =
  | { readonly ok: true; readonly event: UsageEvent; readonly row: UsageRow }
  | { readonly ok: false; readonly reason: DlqReason; readonly message: string };

export interface Converter {
  convert(m: SourceMessage, now: number): Converted;
}

export function createConverter(
  registry: SchemaRegistry<UsageEvent>,
  catalog: Catalog,
  limits: ValidationLimits = DEFAULT_LIMITS,
): Converter {
  const type = registry.current.type;
  // Events older than the raw table keeps (TTL 400 days, with a margin) could no longer be found as repeats and
  // would add to rollups that outlive the raw rows: refused like any event older than the limit. The limits are
  // made once per `now` (a batch), not per message.
  let limitsNow = Number.NaN;
  let limitsForNow = limits;
  const limitsAt = (now: number): ValidationLimits => {
    if (now !== limitsNow) {
      limitsNow = now;
      const oldest = Math.max(limits.minOccurredAt, now - RAW_RETENTION_MS);
      limitsForNow = oldest === limits.minOccurredAt ? limits : { ...limits, minOccurredAt: oldest };
    }
    return limitsForNow;
  };
  return {
    convert(m, now) {
      if (m.value === null || m.value.length === 0) {
        return { ok: false, reason: 'empty_value', message: 'the message has no value (a tombstone?)' };
      }
      let event: UsageEvent;
      try {
        event = registry.decode(m.value).value;
      } catch (err) {
        const reason: DlqReason = isTokenledgerError(err, 'CODEC_UNKNOWN_FINGERPRINT')
          ? 'unknown_fingerprint'
          : isTokenledgerError(err, 'CODEC_BAD_MAGIC')
            ? 'bad_magic'
            : 'body_invalid';
        return { ok: false, reason, message: err instanceof Error ? err.message : String(err) };
      }
      const issues = validateUsageEvent(event, type, limitsAt(now), now);
      const first = issues[0];
      if (first !== undefined) return { ok: false, reason: first.reason, message: describeIssues(issues) };
      // The table stores these as UInt32: a value the column cannot hold is refused, not allowed to stop ingest.
      for (const field of ['duration_ms', 'time_to_first_token_ms'] as const) {
        const v = event[field];
        if (v !== null && (v < 0 || v > 0xffff_ffff)) {
          return {
            ok: false,
            reason: 'duration_out_of_range',
            message: `${field}: ${v} is not within 0..4294967295 ms`,
          };
        }
      }
      const price = priceEvent(catalog, event);
      // cost_nanousd is Int64: absurd token counts (valid up to 2^53) can price beyond it. Refused, not allowed
      // to stop ingest on the encoding of one row.
      if (price.cost_nanousd > INT64_MAX || price.cost_nanousd < -INT64_MAX - 1n) {
        return {
          ok: false,
          reason: 'cost_out_of_range',
          message: `cost ${price.cost_nanousd} nano-USD (${event.request_model}, ${event.input_tokens} input and ${event.output_tokens} output tokens) does not fit Int64`,
        };
      }
      const row: UsageRow = {
        // ClickHouse prints UUIDs in lower case; repeats are compared as text
        event_id: event.event_id.toLowerCase(),
        occurred_at: event.occurred_at,
        org_id: event.org_id ?? '',
        team_id: event.team_id,
        user_id: event.user_id ?? '',
        project_id: event.project_id ?? '',
        application: event.application ?? '',
        environment: event.environment ?? '',
        provider: event.provider,
        operation: event.operation,
        request_model: event.request_model,
        response_model: event.response_model ?? '',
        streaming: event.streaming,
        service_tier: event.service_tier ?? '',
        status: event.status,
        error_type: event.error_type ?? '',
        duration_ms: event.duration_ms,
        time_to_first_token_ms: event.time_to_first_token_ms,
        input_tokens: event.input_tokens,
        cache_read_input_tokens: event.cache_read_input_tokens,
        cache_creation_input_tokens: event.cache_creation_input_tokens,
        output_tokens: event.output_tokens,
        reasoning_output_tokens: event.reasoning_output_tokens,
        client_cost_nanousd: event.client_cost_nanousd === null ? null : String(event.client_cost_nanousd),
        cost_nanousd: price.cost_nanousd.toString(),
        price_version: price.price_version,
        cost_status: price.cost_status,
        tags: event.tags,
        sdk: event.sdk,
        schema_fingerprint: m.value.toString('hex', 2, 10),
        kafka_topic: m.topic,
        kafka_partition: m.partition,
        kafka_offset: m.offset,
      };
      return { ok: true, event, row };
    },
  };
}

/** Headers a dead letter carries on top of the original ones (all strings). */
export const DLQ_HEADERS = {
  reason: 'tokenledger.dlq.reason',
  message: 'tokenledger.dlq.message',
  topic: 'tokenledger.dlq.source.topic',
  partition: 'tokenledger.dlq.source.partition',
  offset: 'tokenledger.dlq.source.offset',
  at: 'tokenledger.dlq.at',
} as const;

export interface DeadLetter {
  readonly source: SourceMessage;
  readonly reason: DlqReason;
  readonly message: string;
  readonly at: number;
}

function headerText(v: IHeaders[string]): string {
  if (v === undefined) return '';
  if (Array.isArray(v)) return v.map((x) => x.toString()).join(',');
  return v.toString();
}

/** The Kafka message for the DLQ topic: original key, value and headers, plus the reason headers. */
export function dlqMessage(d: DeadLetter): { key: Buffer | null; value: Buffer | null; headers: IHeaders } {
  return {
    key: d.source.key,
    value: d.source.value,
    headers: {
      ...d.source.headers,
      [DLQ_HEADERS.reason]: d.reason,
      [DLQ_HEADERS.message]: d.message.slice(0, 2000),
      [DLQ_HEADERS.topic]: d.source.topic,
      [DLQ_HEADERS.partition]: String(d.source.partition),
      [DLQ_HEADERS.offset]: d.source.offset,
      [DLQ_HEADERS.at]: new Date(d.at).toISOString(),
    },
  };
}

/** The row of `usage_dlq` for a dead letter. */
export function dlqRow(d: DeadLetter): Record<string, unknown> {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(d.source.headers ?? {})) headers[k] = headerText(v);
  return {
    received_at: d.at,
    reason: d.reason,
    message: d.message.slice(0, 2000),
    kafka_topic: d.source.topic,
    kafka_partition: d.source.partition,
    kafka_offset: d.source.offset,
    message_key: d.source.key?.toString('utf8') ?? '',
    value_hex: d.source.value?.toString('hex') ?? '',
    headers,
  };
}
