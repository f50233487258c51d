/**
 * Observing an SDK call's result without changing it: an SDK `APIPromise` (`observeApiPromise`, `meterCall`)
 * and an SDK `Stream` (`tapSdkStream`), plus `overlay` for the wrapped client's proxies. The caller gets the
 * SDK's own objects back.
 */
import type { CallMeter } from './meter';
import { CLOSED_EARLY } from './meter';

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
