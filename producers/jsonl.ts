/**
 * JSON-lines usage events (for `tokenledger emit`, backfills and scripts): one JSON object per line with the
 * usage-event fields. `occurred_at` may be epoch milliseconds or an ISO-8601 string. Unknown fields are
 * errors (a typo like `input_token` would otherwise silently count zero tokens).
 */
import { USAGE_EVENT_FIELDS } from '../schemas/usage-event/types';
import type { UsageEventInput } from '../schemas/usage-event/types';

export type ParsedLine =
  | { readonly kind: 'event'; readonly input: UsageEventInput }
  | { readonly kind: 'blank' }
  | { readonly kind: 'error'; readonly field: string; readonly value: unknown; readonly message: string };

const KNOWN = new Set(Object.keys(USAGE_EVENT_FIELDS));

function short(value: unknown): string {
  // JSON.stringify(undefined) is undefined at run time, whatever its type says
  const s = value === undefined ? 'undefined' : JSON.stringify(value);
  return s.length > 60 ? `${s.slice(0, 60)}…` : s;
}

export function parseEventLine(line: string): ParsedLine {
  const text = line.trim();
  if (text === '' || text.startsWith('//')) return { kind: 'blank' };
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch (err) {
    return {
      kind: 'error',
      field: '(line)',
      value: text.slice(0, 60),
      message: `not valid JSON: ${(err as Error).message}`,
    };
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
    return {
      kind: 'error',
      field: '(line)',
      value: obj,
      message: `expected a JSON object, got ${short(obj)}`,
    };
  }
  const record = obj as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!KNOWN.has(key)) {
      return {
        kind: 'error',
        field: key,
        value: record[key],
        message: `unknown field ${JSON.stringify(key)} (value ${short(record[key])})`,
      };
    }
  }
  const at = record.occurred_at;
  if (typeof at === 'string') {
    const ms = Date.parse(at);
    if (Number.isNaN(ms)) {
      return {
        kind: 'error',
        field: 'occurred_at',
        value: at,
        message: `occurred_at must be epoch milliseconds or an ISO-8601 time, got ${short(at)}`,
      };
    }
    record.occurred_at = ms;
  }
  for (const required of ['provider', 'request_model'] as const) {
    if (typeof record[required] !== 'string') {
      return {
        kind: 'error',
        field: required,
        value: record[required],
        message: `${required} is required (a string), got ${short(record[required])}`,
      };
    }
  }
  return { kind: 'event', input: record as unknown as UsageEventInput };
}
