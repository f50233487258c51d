/**
 * One model call, metered: a `CallMeter` collects timing, usage and the response's model, and records exactly
 * one usage event whichever way the call ends; errors are classified into status and error_type. Nothing here
 * throws into the caller's path: extraction runs inside `meter.guard()`, failures go to `options.onError`.
 */
import type { UsageStatus } from '../../schemas/usage-event/types';
import type { UsageEventInput, UsageRecorder } from '../emitter/types';
import { asString, get } from './provider-json';

export interface WrapperOptions {
  /** `provider` of every event (gen_ai.provider.name), e.g. 'azure.ai.openai'. Each wrapper has a default. */
  provider?: string;
  /** Tags added to every event (the emitter merges them over its default and context tags). */
  tags?: Record<string, string>;
  /** Receives failures of the metering itself (never the caller's own errors, which are rethrown unchanged). */
  onError?: (err: unknown) => void;
  /**
   * When the caller stops reading a stream after the answer is complete but before its usage arrived (e.g. a
   * `break` on `finish_reason`), the rest is read in the background for the usage, for at most this long.
   */
  drainTimeoutMs?: number;
}

export const DEFAULT_DRAIN_TIMEOUT_MS = 5_000;

/** Token counts in DESIGN's meaning (input includes cache reads and writes; output includes reasoning). */
export interface TokenUsage {
  input_tokens: number;
  cache_read_input_tokens: number;
  cache_creation_input_tokens: number;
  output_tokens: number;
  reasoning_output_tokens: number;
}

const NO_USAGE: TokenUsage = {
  input_tokens: 0,
  cache_read_input_tokens: 0,
  cache_creation_input_tokens: 0,
  output_tokens: 0,
  reasoning_output_tokens: 0,
};

export interface CallStart {
  provider: string;
  operation: string;
  /** What the caller asked for; when it did not name a model, the response's model is used. */
  request_model: string | null;
  streaming: boolean;
}

/** `error_type` when the caller stops reading a stream before it ended (break, return, `cancel()`). */
export const CLOSED_EARLY = 'closed_early';

const MAX_ERROR_TYPE_LENGTH = 128;

/** One model call: collects what is known and records exactly one event, whichever way the call ends. */
export class CallMeter {
  private readonly startedAt = performance.now();
  private firstTokenAt: number | null = null;
  private usage: TokenUsage | null = null;
  private responseModel: string | null = null;
  private serviceTier: string | null = null;
  private done = false;

  constructor(
    private readonly recorder: UsageRecorder,
    private readonly start: CallStart,
    private readonly options: WrapperOptions,
  ) {}

  get finished(): boolean {
    return this.done;
  }

  firstToken(): void {
    this.firstTokenAt ??= performance.now();
  }

  response(model: unknown, serviceTier: unknown): void {
    this.responseModel = asString(model) ?? this.responseModel;
    this.serviceTier = asString(serviceTier) ?? this.serviceTier;
  }

  setUsage(usage: TokenUsage): void {
    this.usage = checkedUsage(usage, (err) => {
      this.bug(err);
    });
  }

  get hasUsage(): boolean {
    return this.usage !== null;
  }

  ok(): void {
    this.finish('ok', null);
  }

  fail(err: unknown): void {
    const { status, errorType } = classifyError(err);
    this.finish(status, errorType);
  }

  failWith(errorType: string): void {
    this.finish('error', errorType);
  }

  cancel(errorType: string): void {
    this.finish('cancelled', errorType);
  }

  /** Runs metering code; a throw is reported to `onError` and `fallback` is returned instead. */
  guard<T>(fn: () => T, fallback: T): T {
    try {
      return fn();
    } catch (err) {
      this.bug(err);
      return fallback;
    }
  }

  bug(err: unknown): void {
    try {
      this.options.onError?.(err);
    } catch {
      // an onError that throws must not reach the caller either
    }
  }

  private finish(status: UsageStatus, errorType: string | null): void {
    if (this.done) return;
    this.done = true;
    try {
      const now = performance.now();
      const event: UsageEventInput = {
        ...this.start,
        request_model: this.start.request_model ?? this.responseModel ?? 'unknown',
        ...(this.usage ?? NO_USAGE),
        response_model: this.responseModel,
        service_tier: this.serviceTier,
        status,
        error_type: errorType === null ? null : errorType.slice(0, MAX_ERROR_TYPE_LENGTH),
        duration_ms: Math.max(0, Math.round(now - this.startedAt)),
        time_to_first_token_ms:
          this.start.streaming && this.firstTokenAt !== null
            ? Math.max(0, Math.round(this.firstTokenAt - this.startedAt))
            : null,
      };
      if (this.options.tags !== undefined) event.tags = { ...this.options.tags };
      this.recorder.record(event);
    } catch (err) {
      this.bug(err);
    }
  }
}

/** Keeps the subset rules the emitter validates (cache ≤ input, reasoning ≤ output): an event is never lost to them. */
function checkedUsage(u: TokenUsage, report: (err: Error) => void): TokenUsage {
  const out = { ...u };
  const cache = out.cache_read_input_tokens + out.cache_creation_input_tokens;
  if (cache > out.input_tokens) {
    report(new Error(`provider usage has cache tokens (${cache}) above input tokens (${out.input_tokens})`));
    out.input_tokens = cache;
  }
  if (out.reasoning_output_tokens > out.output_tokens) {
    report(
      new Error(
        `provider usage has reasoning tokens (${out.reasoning_output_tokens}) above output tokens (${out.output_tokens})`,
      ),
    );
    out.output_tokens = out.reasoning_output_tokens;
  }
  return out;
}

// ---- errors -------------------------------------------------------------------------------------------------

export function errorName(err: unknown): string {
  if (typeof err === 'object' && err !== null) {
    const name = (err as { name?: unknown }).name;
    // The openai SDK leaves `name` as 'Error' on its classes; the constructor name is the class.
    if (typeof name === 'string' && name !== '' && name !== 'Error') return name;
    const ctor = (err as { constructor?: { name?: unknown } }).constructor?.name;
    if (typeof ctor === 'string' && ctor !== '' && ctor !== 'Object') return ctor;
    if (typeof name === 'string' && name !== '') return name;
  }
  return typeof err;
}

/**
 * status + error_type for a failed call: an abort is `cancelled`/'aborted', a timeout 'timeout', an HTTP error its
 * status code ('429'), an error without status (an error event inside a stream) the provider's error type
 * ('overloaded_error') or code, anything else the error's class name.
 */
export function classifyError(err: unknown): { status: UsageStatus; errorType: string } {
  const name = errorName(err);
  if (name === 'APIUserAbortError' || name === 'AbortError')
    return { status: 'cancelled', errorType: 'aborted' };
  if (name === 'APIConnectionTimeoutError' || name === 'TimeoutError')
    return { status: 'error', errorType: 'timeout' };
  const status = get(err, 'status');
  if (typeof status === 'number') return { status: 'error', errorType: String(status) };
  const type =
    asString(get(err, 'type')) ?? asString(get(err, 'error', 'type')) ?? asString(get(err, 'code'));
  return { status: 'error', errorType: type ?? name };
}
