/**
 * Usage-event validation: the Avro type check (every field present with its type) plus the semantic rules of
 * DESIGN.md. Each problem names the field path, the value and a stable reason code (the DLQ header later
 * carries it). Pure and allocation-light: it runs inside `emitter.record()` for every event.
 */
import type { Type } from 'avsc';
import type { UsageEvent } from './types';
import { TOKEN_FIELDS, USAGE_STATUSES } from './types';

export const VALIDATION_REASONS = [
  'schema_type',
  'team_missing',
  'event_id_invalid',
  'status_invalid',
  'tokens_negative',
  'tokens_not_integer',
  'cache_exceeds_input',
  'reasoning_exceeds_output',
  'occurred_at_future',
  'occurred_at_too_old',
  'string_too_long',
  'tags_too_many',
] as const;
export type ValidationReason = (typeof VALIDATION_REASONS)[number];

export interface ValidationIssue {
  readonly reason: ValidationReason;
  /** Dotted path of the field, e.g. `tags.ticket` or `input_tokens`. */
  readonly path: string;
  readonly value: unknown;
  readonly message: string;
}

export interface ValidationLimits {
  /** How far in the future `occurred_at` may be (clock skew), ms. */
  readonly maxFutureSkewMs: number;
  /** Oldest accepted `occurred_at`, ms since the epoch. */
  readonly minOccurredAt: number;
  readonly maxStringLength: number;
  readonly maxTags: number;
  readonly maxTagKeyLength: number;
  readonly maxTagValueLength: number;
}

export const DEFAULT_LIMITS: ValidationLimits = {
  maxFutureSkewMs: 5 * 60_000,
  minOccurredAt: Date.UTC(2020, 0, 1),
  maxStringLength: 512,
  maxTags: 64,
  maxTagKeyLength: 128,
  maxTagValueLength: 1024,
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const STRING_FIELDS = [
  'org_id',
  'team_id',
  'user_id',
  'project_id',
  'application',
  'environment',
  'provider',
  'operation',
  'request_model',
  'response_model',
  'service_tier',
  'error_type',
  'sdk',
] as const;

function show(value: unknown): string {
  const s =
    typeof value === 'string'
      ? JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value)
      : String(value);
  return s;
}

/**
 * Checks `event` against the Avro type and the semantic rules. Returns every problem found (empty: valid).
 * `now` is the reference time for the future-skew rule.
 */
export function validateUsageEvent(
  event: unknown,
  type: Type,
  limits: ValidationLimits = DEFAULT_LIMITS,
  now: number = Date.now(),
  /** The emitter made event_id itself (a UUIDv7): its format needs no check. */
  trustedEventId = false,
): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  // Fast path: the type check without path tracking; the detailed walk runs only for an invalid event.
  if (!type.isValid(event))
    type.isValid(event, {
      errorHook: (path: string[], value: unknown, t: Type) => {
        const p = path.join('.');
        issues.push({
          reason: 'schema_type',
          path: p === '' ? '(event)' : p,
          value,
          message: `${p === '' ? 'event' : p} must be ${typeName(t)}, got ${show(value)}`,
        });
      },
    });
  if (issues.length > 0 || typeof event !== 'object' || event === null) return issues;
  const e = event as UsageEvent;

  if (e.team_id.trim() === '') {
    issues.push({
      reason: 'team_missing',
      path: 'team_id',
      value: e.team_id,
      message: `team_id is required, got ${show(e.team_id)}`,
    });
  }
  if (!trustedEventId && !UUID.test(e.event_id)) {
    issues.push({
      reason: 'event_id_invalid',
      path: 'event_id',
      value: e.event_id,
      message: `event_id must be a UUID, got ${show(e.event_id)}`,
    });
  }
  if (!(USAGE_STATUSES as readonly string[]).includes(e.status)) {
    issues.push({
      reason: 'status_invalid',
      path: 'status',
      value: e.status,
      message: `status must be one of ${USAGE_STATUSES.join(', ')}, got ${show(e.status)}`,
    });
  }
  for (const f of TOKEN_FIELDS) {
    const v = e[f];
    if (!Number.isSafeInteger(v)) {
      issues.push({
        reason: 'tokens_not_integer',
        path: f,
        value: v,
        message: `${f} must be a whole number, got ${show(v)}`,
      });
    } else if (v < 0) {
      issues.push({
        reason: 'tokens_negative',
        path: f,
        value: v,
        message: `${f} must not be negative, got ${v}`,
      });
    }
  }
  if (e.cache_read_input_tokens + e.cache_creation_input_tokens > e.input_tokens) {
    issues.push({
      reason: 'cache_exceeds_input',
      path: 'cache_read_input_tokens',
      value: e.cache_read_input_tokens + e.cache_creation_input_tokens,
      message: `cache_read_input_tokens + cache_creation_input_tokens (${e.cache_read_input_tokens} + ${e.cache_creation_input_tokens}) must not exceed input_tokens (${e.input_tokens}); input_tokens counts ALL input, cache included`,
    });
  }
  if (e.reasoning_output_tokens > e.output_tokens) {
    issues.push({
      reason: 'reasoning_exceeds_output',
      path: 'reasoning_output_tokens',
      value: e.reasoning_output_tokens,
      message: `reasoning_output_tokens (${e.reasoning_output_tokens}) must not exceed output_tokens (${e.output_tokens}); output_tokens counts ALL output, reasoning included`,
    });
  }
  if (e.occurred_at > now + limits.maxFutureSkewMs) {
    issues.push({
      reason: 'occurred_at_future',
      path: 'occurred_at',
      value: e.occurred_at,
      message: `occurred_at ${new Date(e.occurred_at).toISOString()} is more than ${limits.maxFutureSkewMs / 1000} s in the future`,
    });
  } else if (e.occurred_at < limits.minOccurredAt) {
    issues.push({
      reason: 'occurred_at_too_old',
      path: 'occurred_at',
      value: e.occurred_at,
      message: `occurred_at ${Number.isFinite(e.occurred_at) ? new Date(e.occurred_at).toISOString() : String(e.occurred_at)} is before ${new Date(limits.minOccurredAt).toISOString()}`,
    });
  }
  for (const f of STRING_FIELDS) {
    const v = e[f];
    if (v !== null && v.length > limits.maxStringLength) {
      issues.push({
        reason: 'string_too_long',
        path: f,
        value: `${v.slice(0, 40)}…`,
        message: `${f} is ${v.length} characters, at most ${limits.maxStringLength} allowed`,
      });
    }
  }
  const tagKeys = Object.keys(e.tags);
  if (tagKeys.length > limits.maxTags) {
    issues.push({
      reason: 'tags_too_many',
      path: 'tags',
      value: tagKeys.length,
      message: `tags has ${tagKeys.length} entries, at most ${limits.maxTags} allowed`,
    });
  }
  for (const k of tagKeys) {
    const v = e.tags[k] ?? '';
    if (k.length > limits.maxTagKeyLength || v.length > limits.maxTagValueLength) {
      issues.push({
        reason: 'string_too_long',
        path: `tags.${k.slice(0, 40)}`,
        value: v.slice(0, 40),
        message: `tag ${show(k)} is too long (key ${k.length}/${limits.maxTagKeyLength}, value ${v.length}/${limits.maxTagValueLength} characters)`,
      });
    }
  }
  return issues;
}

function typeName(t: Type): string {
  const schema = t.schema() as unknown;
  if (typeof schema === 'string')
    return schema === 'long' || schema === 'int' ? `an integer (${schema})` : `a ${schema}`;
  if (Array.isArray(schema)) return schema.map((s) => (typeof s === 'string' ? s : 'object')).join(' or ');
  if (typeof schema === 'object' && schema !== null && 'type' in schema) {
    const k = (schema as { type: string }).type;
    return k === 'map' ? 'a map of strings' : k === 'record' ? 'an object' : `a ${k}`;
  }
  return 'valid';
}

/** One line for people: every problem, path and value included. */
export function describeIssues(issues: readonly ValidationIssue[]): string {
  return issues.map((i) => `${i.path}: ${i.message}`).join('; ');
}
