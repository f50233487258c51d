/**
 * The usage event as TypeScript sees it. `schemas/usage-event/v*.avsc` is the source of truth; this file follows
 * it, and `USAGE_EVENT_FIELDS` ties the two together: the compiler checks that it names every field of
 * `UsageEvent` with a kind matching its TypeScript type, and tests/unit/usage-event-schema.test.ts checks that it
 * matches the newest .avsc field by field. Change one without the other and a check fails.
 */

/** One model call (Avro record dev.tokenledger.UsageEvent, current version). */
export interface UsageEvent {
  /** UUIDv7; the deduplication key. */
  event_id: string;
  /** When the call finished, ms since the Unix epoch (UTC). */
  occurred_at: number;
  org_id: string | null;
  /** Required, non-empty; the Kafka message key. */
  team_id: string;
  user_id: string | null;
  project_id: string | null;
  application: string | null;
  environment: string | null;
  provider: string;
  operation: string;
  request_model: string;
  response_model: string | null;
  streaming: boolean;
  /** Added in version 2. */
  service_tier: string | null;
  status: UsageStatus;
  error_type: string | null;
  duration_ms: number | null;
  time_to_first_token_ms: number | null;
  /** ALL input tokens, cache reads and writes included. */
  input_tokens: number;
  cache_read_input_tokens: number;
  cache_creation_input_tokens: number;
  /** ALL output tokens, reasoning included. */
  output_tokens: number;
  reasoning_output_tokens: number;
  client_cost_nanousd: number | null;
  tags: Record<string, string>;
  sdk: string;
}

/** The token counts of an event (input includes cache reads and writes; output includes reasoning). */
export const TOKEN_FIELDS = [
  'input_tokens',
  'cache_read_input_tokens',
  'cache_creation_input_tokens',
  'output_tokens',
  'reasoning_output_tokens',
] as const;

export const USAGE_STATUSES = ['ok', 'error', 'cancelled'] as const;
export type UsageStatus = (typeof USAGE_STATUSES)[number];

/** What callers of `emitter.record()` pass: the emitter fills identity, time, sdk and defaults. */
export type UsageEventInput = Partial<Omit<UsageEvent, 'tags'>> &
  Pick<UsageEvent, 'provider' | 'request_model'> & { tags?: Record<string, string> };

type Kind<T> = [T] extends [string]
  ? 'string'
  : [T] extends [string | null]
    ? 'string?'
    : [T] extends [number]
      ? 'long'
      : [T] extends [number | null]
        ? 'long?'
        : [T] extends [boolean]
          ? 'boolean'
          : [T] extends [Record<string, string>]
            ? 'map<string>'
            : never;

/** Every field of UsageEvent, in .avsc order, with its Avro kind ('?' = union with null, default null). */
export const USAGE_EVENT_FIELDS = {
  event_id: 'string',
  occurred_at: 'long',
  org_id: 'string?',
  team_id: 'string',
  user_id: 'string?',
  project_id: 'string?',
  application: 'string?',
  environment: 'string?',
  provider: 'string',
  operation: 'string',
  request_model: 'string',
  response_model: 'string?',
  streaming: 'boolean',
  service_tier: 'string?',
  status: 'string',
  error_type: 'string?',
  duration_ms: 'long?',
  time_to_first_token_ms: 'long?',
  input_tokens: 'long',
  cache_read_input_tokens: 'long',
  cache_creation_input_tokens: 'long',
  output_tokens: 'long',
  reasoning_output_tokens: 'long',
  client_cost_nanousd: 'long?',
  tags: 'map<string>',
  sdk: 'string',
} as const satisfies { [K in keyof Required<UsageEvent>]: Kind<UsageEvent[K]> };
