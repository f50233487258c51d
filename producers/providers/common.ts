/**
 * What the provider wrappers share: a `CallMeter` per model call (timing, usage, exactly one event), error
 * classification, reading untyped provider JSON, and the two ways a call result is observed without changing
 * it — an SDK `APIPromise` (`observeApiPromise`) and an SDK `Stream` (`tapSdkStream`).
 *
 * Nothing here throws into the caller's path because of metering: extraction runs inside `meter.guard()`, and
 * any failure there goes to `options.onError` while the SDK's value goes back to the caller untouched.
 */
import type { UsageStatus } from '../../schemas/usage-event/types';
import type { UsageEventInput, UsageRecorder } from '../emitter/types';

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

// ---- reading untyped provider JSON ----------------------------------------------------------------------------

/** `value[a][b]...`, or undefined when any step is not an object. */
export function get(value: unknown, ...path: string[]): unknown {
  let cur = value;
  for (const key of path) {
    if (typeof cur !== 'object' || cur === null) return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

export function asString(value: unknown): string | null {
  return typeof value === 'string' && value !== '' ? value : null;
}

/** A token count: a non-negative integer, or 0 when absent or malformed. */
export function count(value: unknown): number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0 ? value : 0;
}

/**
 * OpenAI-style usage (Chat Completions, Completions, Embeddings, the Responses API; also vLLM and other
 * OpenAI-compatible servers). The prompt count already includes cached tokens, the completion count reasoning.
 */
export function openAIUsage(usage: unknown): TokenUsage {
  const input = get(usage, 'prompt_tokens') ?? get(usage, 'input_tokens');
  const inputDetails = get(usage, 'prompt_tokens_details') ?? get(usage, 'input_tokens_details');
  const output = get(usage, 'completion_tokens') ?? get(usage, 'output_tokens');
  const outputDetails = get(usage, 'completion_tokens_details') ?? get(usage, 'output_tokens_details');
  return {
    input_tokens: count(input),
    cache_read_input_tokens: count(get(inputDetails, 'cached_tokens')),
    cache_creation_input_tokens: count(get(inputDetails, 'cache_write_tokens')),
    output_tokens: count(output),
    reasoning_output_tokens: count(get(outputDetails, 'reasoning_tokens')),
  };
}

// ---- SDK APIPromise -----------------------------------------------------------------------------------------

interface ApiPromiseShape {
  _thenUnwrap(transform: (data: unknown, props: unknown) => unknown): ApiPromiseShape;
  asResponse(): Promise<unknown>;
  parseResponse?: unknown;
}

function isApiPromise(value: unknown): value is ApiPromiseShape {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Partial<ApiPromiseShape>)._thenUnwrap === 'function' &&
    typeof (value as Partial<ApiPromiseShape>).asResponse === 'function'
  );
}

/**
 * Returns a promise of the same kind as `promise` (the SDKs' `APIPromise`, so `.withResponse()`,
 * `.asResponse()` and helpers built on `_thenUnwrap` keep working) whose value is `onValue(value)`; `onError` sees a
 * failed request (HTTP error, network, timeout, abort) and a body that fails to parse. The request's body is
 * read only when the caller reads the result, exactly as without the wrapper — so a caller that only uses
 * `.asResponse()` and reads the raw body itself produces no event.
 */
export function observeApiPromise<P>(
  promise: P,
  onValue: (value: unknown) => unknown,
  onError: (err: unknown) => void,
): P {
  if (!isApiPromise(promise)) {
    return Promise.resolve(promise).then(onValue, (err: unknown) => {
      onError(err);
      throw err;
    }) as P;
  }
  // The request failed before a body: observed without reading (or consuming) the body.
  void promise.asResponse().then(undefined, onError);
  const derived = promise._thenUnwrap((value) => onValue(value));
  const parse = derived.parseResponse;
  if (typeof parse === 'function') {
    // An instance property the SDK calls when the result is read, also from promises derived from this one
    // (chat.completions.parse() calls _thenUnwrap on it): a body that fails to arrive or parse is seen here.
    derived.parseResponse = async (...args: unknown[]): Promise<unknown> => {
      try {
        const result: unknown = await (parse as (...a: unknown[]) => unknown).apply(derived, args);
        return result;
      } catch (err) {
        onError(err);
        throw err;
      }
    };
  }
  return derived as P;
}

/**
 * Starts an SDK call and returns what the SDK returns, observed: `onValue` maps the value (e.g. wraps a stream)
 * and must end the meter or arrange for it to end; a failure of the call ends it as an error.
 */
export function meterCall<P>(meter: CallMeter, start: () => P, onValue: (value: unknown) => unknown): P {
  let pending: P;
  try {
    pending = start();
  } catch (err) {
    meter.fail(err);
    throw err;
  }
  try {
    return observeApiPromise(
      pending,
      (value) => {
        try {
          return onValue(value);
        } catch (err) {
          meter.bug(err);
          meter.ok();
          return value;
        }
      },
      (err) => {
        meter.fail(err);
      },
    );
  } catch (err) {
    meter.bug(err);
    return pending;
  }
}

// ---- SDK Stream ---------------------------------------------------------------------------------------------

/** What to do when the caller stops reading early: the call is complete, complete but usage is still to come, or not. */
export type EarlyClose = 'ok' | 'drain' | 'cancel';

export interface StreamTap<T> {
  /** Sees every item; returns false to hide it from the caller. */
  item(item: T): boolean;
  closedEarly(): EarlyClose;
  /** An error the stream reported in-band (e.g. `response.failed`), recorded when it ends without throwing. */
  failure?(): string | null;
}

interface SdkStream<T> extends AsyncIterable<T> {
  controller: AbortController;
}

function isSdkStream(value: unknown): value is SdkStream<unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    Symbol.asyncIterator in value &&
    (value as Partial<SdkStream<unknown>>).controller instanceof AbortController
  );
}

/** `tapSdkStream` for a value an SDK typed as a stream; anything else ends the meter and is returned as it is. */
export function tapIfStream(
  value: unknown,
  client: unknown,
  meter: CallMeter,
  tap: StreamTap<unknown>,
  drainTimeoutMs: number,
): unknown {
  if (!isSdkStream(value)) {
    meter.ok();
    return value;
  }
  return tapSdkStream(value, client, meter, tap, drainTimeoutMs);
}

type SdkStreamClass<T, S> = new (
  iterator: () => AsyncIterator<T>,
  controller: AbortController,
  client?: unknown,
) => S;

/**
 * A stream of the SDK's own `Stream` class (same `controller`, so `tee()`, `toReadableStream()` and abort keep
 * working) that yields what `stream` yields — minus items the tap hides — and ends the meter once: at the end,
 * on an error (rethrown unchanged), on an abort, or when the caller stops iterating.
 */
export function tapSdkStream<T, S extends SdkStream<T>>(
  stream: S,
  client: unknown,
  meter: CallMeter,
  tap: StreamTap<T>,
  drainTimeoutMs: number,
): S {
  const StreamClass = stream.constructor as SdkStreamClass<T, S>;
  return new StreamClass(() => tapIterator(stream, meter, tap, drainTimeoutMs), stream.controller, client);
}

async function* tapIterator<T>(
  stream: SdkStream<T>,
  meter: CallMeter,
  tap: StreamTap<T>,
  drainTimeoutMs: number,
): AsyncGenerator<T, void, undefined> {
  const source = stream[Symbol.asyncIterator]();
  let ended = false;
  try {
    for (;;) {
      const next = await source.next();
      if (next.done === true) break;
      if (meter.guard(() => tap.item(next.value), true)) yield next.value;
    }
    ended = true;
    endStream(meter, tap, stream.controller.signal.aborted);
  } catch (err) {
    ended = true;
    meter.fail(err);
    throw err;
  } finally {
    if (!ended) {
      // The caller stopped iterating (break, return, a throw in its loop body).
      const decision = stream.controller.signal.aborted
        ? 'aborted'
        : meter.guard(() => tap.closedEarly(), 'cancel');
      if (decision === 'drain') {
        void drain(
          async () => {
            const next = await source.next();
            if (next.done !== true) meter.guard(() => tap.item(next.value), true);
            return next.done === true;
          },
          () => stream.controller.abort(),
          meter,
          drainTimeoutMs,
        );
      } else {
        if (decision === 'ok') endStream(meter, tap, false);
        else meter.cancel(decision === 'aborted' ? 'aborted' : CLOSED_EARLY);
        await source.return?.();
      }
    }
  }
}

/** Ends the meter for a stream that ended without throwing. */
export function endStream(meter: CallMeter, tap: { failure?(): string | null }, aborted: boolean): void {
  if (aborted) {
    meter.cancel('aborted');
    return;
  }
  const failure = meter.guard(() => tap.failure?.() ?? null, null);
  if (failure === null) meter.ok();
  else meter.failWith(failure);
}

/**
 * Reads the rest of a stream the caller closed after its answer was complete, for the usage that follows it.
 * `step()` reads one item and returns true at the end; `stop()` aborts the request when time is up.
 */
export async function drain(
  step: () => Promise<boolean>,
  stop: () => void,
  meter: CallMeter,
  timeoutMs: number,
): Promise<void> {
  const timer = setTimeout(stop, timeoutMs);
  timer.unref();
  try {
    let ended = false;
    while (!ended) ended = await step();
  } catch {
    // a read error or the timeout's abort after the caller left: what is known is what is recorded
  } finally {
    clearTimeout(timer);
    if (meter.hasUsage) meter.ok();
    else meter.cancel(CLOSED_EARLY);
  }
}

// ---- OpenAI-style chat/completion chunks ----------------------------------------------------------------------

/** True when a choice of a chunk carries generated content (text, a tool call, a refusal, reasoning...). */
function choiceHasContent(choice: unknown): boolean {
  if (asString(get(choice, 'text')) !== null) return true;
  const delta = get(choice, 'delta');
  if (typeof delta !== 'object' || delta === null) return false;
  return Object.entries(delta).some(
    ([key, v]) =>
      key !== 'role' && v !== null && v !== undefined && v !== '' && !(Array.isArray(v) && v.length === 0),
  );
}

/**
 * Tap for OpenAI-style chunks (`chat.completion.chunk`, streamed `text_completion`). `usageRequested` says a
 * final usage chunk will come. With `hideUsageChunk` (the wrapper asked for usage, the caller did not), that
 * chunk is hidden and the `usage: null` the other chunks then carry is removed, so the caller sees what it
 * would have seen without the wrapper.
 */
export function chunkTap(
  meter: CallMeter,
  usageRequested: boolean,
  hideUsageChunk: boolean,
): StreamTap<unknown> {
  let answered = false;
  return {
    item(chunk) {
      meter.response(get(chunk, 'model'), get(chunk, 'service_tier'));
      const usage = get(chunk, 'usage');
      if (typeof usage === 'object' && usage !== null) meter.setUsage(openAIUsage(usage));
      const choices = get(chunk, 'choices');
      if (Array.isArray(choices)) {
        for (const choice of choices) {
          if (choiceHasContent(choice)) meter.firstToken();
          const finish = get(choice, 'finish_reason');
          if (finish !== null && finish !== undefined) answered = true;
        }
      }
      if (!hideUsageChunk) return true;
      if (Array.isArray(choices) && choices.length === 0 && typeof usage === 'object' && usage !== null) {
        return false;
      }
      if (usage === null) delete (chunk as { usage?: unknown }).usage;
      return true;
    },
    closedEarly() {
      if (meter.hasUsage || (answered && !usageRequested)) return 'ok';
      return answered ? 'drain' : 'cancel';
    },
  };
}

// ---- proxies --------------------------------------------------------------------------------------------------

/**
 * A view of `target` with the members in `overrides` (thunks, read on each access) replaced; everything else is
 * read from the target. With `bindMethods`, functions are bound to the target: SDK clients keep `#private`
 * state that a Proxy receiver cannot reach. Without it, methods run with the view as `this`, so a resource's
 * helpers (`parse`, `stream`, ...) call the view's overridden `create` and `_client`.
 */
export function overlay<T extends object>(
  target: T,
  overrides: Partial<Record<string, () => unknown>>,
  bindMethods: boolean,
): T {
  const bound = new WeakMap<object, unknown>();
  return new Proxy(target, {
    get(t, prop, receiver) {
      const override = typeof prop === 'string' ? overrides[prop] : undefined;
      if (override !== undefined) return override();
      if (!bindMethods) return Reflect.get(t, prop, receiver);
      const value: unknown = Reflect.get(t, prop, t);
      if (typeof value !== 'function') return value;
      let fn = bound.get(value);
      if (fn === undefined) {
        fn = (value as (...args: unknown[]) => unknown).bind(t);
        bound.set(value, fn);
      }
      return fn;
    },
  });
}
