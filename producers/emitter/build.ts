/** Turning what a caller passes into a complete usage event: identity, time, defaults, context. Pure. */
import type { UsageEvent, UsageEventInput } from '../../schemas/usage-event/types';
import type { EventDefaults } from './options';
import { uuidv7 } from './uuid';

export interface BuildContext {
  /** Emitter-wide defaults. */
  readonly defaults: EventDefaults;
  /** The `withContext` scope around the call, if any. */
  readonly scope: EventDefaults | undefined;
  readonly sdk: string;
  readonly now: number;
}

/** Fields the caller set win over the scope, which wins over the defaults; tags are merged in that order. */
export function buildEvent(
  input: UsageEventInput,
  { defaults: d, scope: c, sdk, now }: BuildContext,
): UsageEvent {
  // Always a copy: the event is encoded later, and a caller that reuses or mutates its tags object must not
  // change (or break) an event it already recorded.
  const tags = { ...d.tags, ...c?.tags, ...input.tags };
  return {
    event_id: input.event_id ?? uuidv7(now),
    occurred_at: input.occurred_at ?? now,
    org_id: input.org_id ?? c?.org_id ?? d.org_id ?? null,
    team_id: input.team_id ?? c?.team_id ?? d.team_id ?? '',
    user_id: input.user_id ?? c?.user_id ?? d.user_id ?? null,
    project_id: input.project_id ?? c?.project_id ?? d.project_id ?? null,
    application: input.application ?? c?.application ?? d.application ?? null,
    environment: input.environment ?? c?.environment ?? d.environment ?? null,
    provider: input.provider,
    operation: input.operation ?? 'chat',
    request_model: input.request_model,
    response_model: input.response_model ?? null,
    streaming: input.streaming ?? false,
    service_tier: input.service_tier ?? null,
    status: input.status ?? 'ok',
    error_type: input.error_type ?? null,
    duration_ms: input.duration_ms ?? null,
    time_to_first_token_ms: input.time_to_first_token_ms ?? null,
    input_tokens: input.input_tokens ?? 0,
    cache_read_input_tokens: input.cache_read_input_tokens ?? 0,
    cache_creation_input_tokens: input.cache_creation_input_tokens ?? 0,
    output_tokens: input.output_tokens ?? 0,
    reasoning_output_tokens: input.reasoning_output_tokens ?? 0,
    client_cost_nanousd: input.client_cost_nanousd ?? null,
    tags,
    sdk: input.sdk ?? sdk,
  };
}
