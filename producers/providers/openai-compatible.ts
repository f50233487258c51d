/**
 * Usage events for OpenAI-compatible HTTP endpoints (vLLM, TGI, internal gateways) through `fetch`: give the
 * returned function to any client that takes a fetch (the openai SDK's `fetch` option, an HTTP helper, ...).
 *
 * POST .../chat/completions, .../completions and .../embeddings are metered; every other request is passed to
 * the underlying fetch untouched. A JSON answer is read from a clone (the caller gets the original Response).
 * An SSE answer is read as the caller reads it, through a pass-through body: it is never buffered, and when
 * the caller cancels the body the request is cancelled — which teeing the body would not do.
 *
 * Streaming usage: like OpenAI, these servers send usage only when `stream_options.include_usage` is set. When
 * the caller did not set it and the body is a JSON string or bytes in `init.body`, it is added
 * (`injectStreamUsage`, default true) and the extra usage event (`choices: []`) is removed from the stream the
 * caller reads; every other event reaches the caller byte for byte, which means they keep the `"usage":null`
 * such servers add to each chunk when usage was asked for.
 */
import type { UsageRecorder } from '../emitter/types';
import type { StreamTap } from './sdk-observe';
import type { WrapperOptions } from './meter';
import { asString, chunkTap, get, openAIUsage } from './provider-json';
import { CallMeter, classifyError, DEFAULT_DRAIN_TIMEOUT_MS, CLOSED_EARLY } from './meter';
import { drain, endStream } from './sdk-observe';

export type FetchFunction = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

export interface MeteredFetchOptions extends WrapperOptions {
  /** `provider` of every event, e.g. 'vllm' (required: there is no sensible default). */
  provider: string;
  /** The fetch to call; default `globalThis.fetch` at call time. */
  fetch?: FetchFunction;
  /** Add `stream_options.include_usage` to streaming requests that lack it, hiding its extra event. Default true. */
  injectStreamUsage?: boolean;
}

const ROUTES: readonly (readonly [suffix: string, operation: string])[] = [
  ['/chat/completions', 'chat'],
  ['/completions', 'text_completion'],
  ['/embeddings', 'embeddings'],
];

/** A fetch that records one usage event per metered call and otherwise behaves exactly like `options.fetch`. */
export function createMeteredFetch(recorder: UsageRecorder, options: MeteredFetchOptions): FetchFunction {
  const inject = options.injectStreamUsage ?? true;
  const drainMs = options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS;

  return async function meteredFetch(input, init) {
    const base = options.fetch ?? globalThis.fetch;
    let call: { meter: CallMeter; request: ParsedRequest } | null;
    try {
      call = await startCall(recorder, options, input, init, inject);
    } catch (err) {
      report(options, err);
      call = null;
    }
    if (call === null) return base(input, init);
    const { meter, request } = call;
    const signal = init?.signal ?? (input instanceof Request ? input.signal : undefined);
    let response: Response;
    try {
      response = await base(input, request.init);
    } catch (err) {
      failOrCancel(meter, err, signal);
      throw err;
    }
    return meter.guard(() => observeResponse(meter, response, request, signal, drainMs), response);
  };
}

interface ParsedRequest {
  /** What to pass to fetch as `init`: the caller's, or a copy whose body asks for stream usage. */
  init: RequestInit | undefined;
  /** A final usage event will come (the caller or the wrapper asked for it). */
  usageRequested: boolean;
  /** The wrapper asked for usage: its event is removed from what the caller reads. */
  hideUsage: boolean;
}

/** The meter for a metered route, or null for a request that is passed through. */
async function startCall(
  recorder: UsageRecorder,
  options: MeteredFetchOptions,
  input: string | URL | Request,
  init: RequestInit | undefined,
  inject: boolean,
): Promise<{ meter: CallMeter; request: ParsedRequest } | null> {
  const operation = routeOf(input, init);
  if (operation === null) return null;
  const json = await readJsonBody(input, init);
  const streaming = get(json, 'stream') === true;
  const callerAsked = get(json, 'stream_options', 'include_usage') === true;
  const meter = new CallMeter(
    recorder,
    { provider: options.provider, operation, request_model: asString(get(json, 'model')), streaming },
    options,
  );
  const rewritable =
    typeof json === 'object' && json !== null && init?.body !== undefined && init.body !== null;
  if (!streaming || callerAsked || !inject || operation === 'embeddings' || !rewritable) {
    return { meter, request: { init, usageRequested: callerAsked, hideUsage: false } };
  }
  const streamOptions = get(json, 'stream_options');
  const body = JSON.stringify({
    ...json,
    stream_options: { ...(typeof streamOptions === 'object' ? streamOptions : {}), include_usage: true },
  });
  const sent: RequestInit = { ...init, body };
  // The body's length changed: a Content-Length the caller set would now be wrong.
  if (init.headers !== undefined && new Headers(init.headers).has('content-length')) {
    const headers = new Headers(init.headers);
    headers.delete('content-length');
    sent.headers = headers;
  }
  return { meter, request: { init: sent, usageRequested: true, hideUsage: true } };
}

function routeOf(input: string | URL | Request, init: RequestInit | undefined): string | null {
  const method = (init?.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase();
  if (method !== 'POST') return null;
  const url = input instanceof Request ? input.url : input.toString();
  let path: string;
  try {
    path = new URL(url).pathname.replace(/\/+$/, '');
  } catch {
    return null;
  }
  for (const [suffix, operation] of ROUTES) if (path.endsWith(suffix)) return operation;
  return null;
}

/** The request's JSON body when it is a string or bytes (or a Request's body), else undefined. */
async function readJsonBody(input: string | URL | Request, init: RequestInit | undefined): Promise<unknown> {
  const body = init?.body;
  let text: string | undefined;
  if (typeof body === 'string') text = body;
  else if (body instanceof Uint8Array || body instanceof ArrayBuffer) text = new TextDecoder().decode(body);
  else if ((body === undefined || body === null) && input instanceof Request && input.body !== null) {
    text = await input.clone().text();
  }
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function report(options: MeteredFetchOptions, err: unknown): void {
  try {
    options.onError?.(err);
  } catch {
    // never into the caller's path
  }
}

/** An aborted request is `cancelled` (or a `timeout` error for AbortSignal.timeout()); anything else an error. */
function failOrCancel(meter: CallMeter, err: unknown, signal: AbortSignal | null | undefined): void {
  if (signal?.aborted === true) {
    const reason: unknown = signal.reason;
    if (classifyError(reason).errorType === 'timeout') meter.failWith('timeout');
    else meter.cancel('aborted');
    return;
  }
  meter.fail(err);
}

function observeResponse(
  meter: CallMeter,
  response: Response,
  request: ParsedRequest,
  signal: AbortSignal | null | undefined,
  drainMs: number,
): Response {
  if (!response.ok) {
    // The error body is the caller's to read; the status is the error type.
    meter.failWith(String(response.status));
    return response;
  }
  const sse = (response.headers.get('content-type') ?? '').includes('text/event-stream');
  if (sse && response.body !== null)
    return tapSseResponse(meter, response, response.body, request, signal, drainMs);
  void readJsonUsage(meter, response.clone(), signal);
  return response;
}

async function readJsonUsage(meter: CallMeter, clone: Response, signal: AbortSignal | null | undefined) {
  let text: string;
  try {
    text = await clone.text();
  } catch (err) {
    failOrCancel(meter, err, signal);
    return;
  }
  meter.guard(() => {
    const body = JSON.parse(text) as unknown;
    meter.response(get(body, 'model'), get(body, 'service_tier'));
    meter.setUsage(openAIUsage(get(body, 'usage')));
  }, undefined);
  meter.ok();
}

/**
 * The caller's body: the server's bytes as they arrive (minus the usage event the wrapper asked for), read
 * from the server only as fast as the caller reads; cancelling it cancels the server's body.
 */
function tapSseResponse(
  meter: CallMeter,
  response: Response,
  body: ReadableStream<Uint8Array>,
  request: ParsedRequest,
  signal: AbortSignal | null | undefined,
  drainMs: number,
): Response {
  // Locked on the caller's first read, not before: until then nothing here can leave the body unusable.
  let locked: ReadableStreamDefaultReader<Uint8Array> | undefined;
  const reader = (): ReadableStreamDefaultReader<Uint8Array> => (locked ??= body.getReader());
  const tap = chunkTap(meter, request.usageRequested, request.hideUsage);
  const events = new SseSplitter();
  const decoder = new TextDecoder('utf-8', { ignoreBOM: true });
  const encoder = new TextEncoder();
  const see = (event: string): boolean => meter.guard(() => seeEvent(tap, event), true);

  const out = new ReadableStream<Uint8Array>({
    async pull(controller) {
      for (;;) {
        let next: Awaited<ReturnType<ReadableStreamDefaultReader<Uint8Array>['read']>>;
        try {
          next = await reader().read();
        } catch (err) {
          failOrCancel(meter, err, signal);
          controller.error(err);
          return;
        }
        if (next.done) {
          const rest = events.end(decoder.decode());
          if (rest !== '' && see(rest) && request.hideUsage) controller.enqueue(encoder.encode(rest));
          endStream(meter, tap, false);
          controller.close();
          return;
        }
        const complete = events.push(decoder.decode(next.value, { stream: true }));
        if (!request.hideUsage) {
          for (const event of complete) see(event);
          controller.enqueue(next.value);
          return;
        }
        const kept = complete.filter(see);
        if (kept.length > 0) {
          controller.enqueue(encoder.encode(kept.join('')));
          return;
        }
        // nothing complete to pass on yet: read on (a pull that enqueues nothing may not be called again)
      }
    },
    async cancel(reason) {
      const decision = meter.guard(() => tap.closedEarly(), 'cancel');
      if (decision === 'drain') {
        void drain(
          async () => {
            const next = await reader().read();
            if (!next.done)
              for (const event of events.push(decoder.decode(next.value, { stream: true }))) see(event);
            return next.done;
          },
          () =>
            void reader()
              .cancel(reason)
              .catch(() => undefined),
          meter,
          drainMs,
        );
        return;
      }
      if (decision === 'ok') endStream(meter, tap, false);
      else meter.cancel(CLOSED_EARLY);
      await reader().cancel(reason);
    },
  });

  const tapped = new Response(out, {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  });
  // A constructed Response has no url; keep the server's so the caller cannot tell the difference.
  for (const key of ['url', 'redirected', 'type'] as const) {
    Object.defineProperty(tapped, key, { value: response[key], enumerable: true });
  }
  return tapped;
}

function seeEvent(tap: StreamTap<unknown>, event: string): boolean {
  const data = sseData(event);
  if (data === null || data.startsWith('[DONE]')) return true;
  return tap.item(JSON.parse(data));
}

/** The `data:` lines of one SSE event, joined as the SSE spec joins them; null when it has none. */
function sseData(event: string): string | null {
  const lines: string[] = [];
  for (const line of event.split(/\r\n|\r|\n/)) {
    if (line === 'data' || line.startsWith('data:')) lines.push(line.slice(5).replace(/^ /, ''));
  }
  return lines.length === 0 ? null : lines.join('\n');
}

/** A blank line ends an SSE event; CRLF counts as one line end. */
const EVENT_END = /(?:\r\n|\r(?!\n)|\n)(?:\r\n|\r(?!\n)|\n)/;

/** Splits SSE text into whole events, each with its terminating blank line, keeping the exact text. */
class SseSplitter {
  private buffer = '';

  push(text: string): string[] {
    this.buffer += text;
    const events: string[] = [];
    for (;;) {
      const match = EVENT_END.exec(this.buffer);
      if (match === null) break;
      const end = match.index + match[0].length;
      // A CR at the very end may be the first half of a CRLF still on its way.
      if (end === this.buffer.length && this.buffer.endsWith('\r')) break;
      events.push(this.buffer.slice(0, end));
      this.buffer = this.buffer.slice(end);
    }
    return events;
  }

  /** What is left when the body ends (an event without its blank line). */
  end(text: string): string {
    const rest = this.buffer + text;
    this.buffer = '';
    return rest;
  }
}
