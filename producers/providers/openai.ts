/**
 * Usage events for the `openai` npm SDK (v6): `chat.completions.create` and `responses.create`, streaming or
 * not, and the SDK helpers built on them (`chat.completions.parse/stream/runTools`, `responses.parse/stream`),
 * which call the wrapped `create` through the wrapped client.
 *
 * The caller gets what the SDK returns: the same `APIPromise` (`.withResponse()`, `.asResponse()` work), the
 * same values, streams of the SDK's own `Stream` class, and the SDK's errors rethrown unchanged.
 *
 * Streaming chat: OpenAI reports usage only when `stream_options.include_usage` is set, in an extra last chunk
 * with `choices: []` (and `usage: null` on every other chunk). When the caller did not ask for it, the wrapper
 * asks (unless `injectStreamUsage: false`) and hides both from the caller, so its loop sees the chunks it would
 * have seen without the wrapper — including code that reads `chunk.choices[0]` unguarded.
 *
 * Only types are imported from the SDK: wrapping does not load it.
 */
import type { OpenAI } from 'openai';
import type { RequestOptions } from 'openai/internal/request-options';
import type { ChatCompletionCreateParams } from 'openai/resources/chat/completions';
import type { ResponseCreateParams } from 'openai/resources/responses/responses';
import type { UsageRecorder } from '../emitter/types';
import type { StreamTap } from './sdk-observe';
import type { WrapperOptions } from './meter';
import { asString, chunkTap, get, openAIUsage } from './provider-json';
import { CallMeter, DEFAULT_DRAIN_TIMEOUT_MS } from './meter';
import { meterCall, overlay, tapIfStream } from './sdk-observe';

export interface OpenAIWrapperOptions extends WrapperOptions {
  /**
   * Add `stream_options.include_usage` to streaming chat requests that do not set it (the extra usage chunk is
   * hidden from the caller). Default true; turn off for servers that reject `stream_options` — their streamed
   * calls are then recorded without token counts.
   */
  injectStreamUsage?: boolean;
}

/**
 * Returns a view of `client` whose chat completions and responses record one usage event per model call.
 * The view has the client's type; `withOptions()` on it returns a wrapped client too.
 */
export function wrapOpenAI<C extends OpenAI>(
  client: C,
  recorder: UsageRecorder,
  options: OpenAIWrapperOptions = {},
): C {
  const provider = options.provider ?? 'openai';
  const drainMs = options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS;
  const inject = options.injectStreamUsage ?? true;

  function chatCreate(params: ChatCompletionCreateParams, requestOptions?: RequestOptions): unknown {
    const streaming = params.stream === true;
    const meter = new CallMeter(
      recorder,
      { provider, operation: 'chat', request_model: asString(params.model), streaming },
      options,
    );
    const callerAsked = params.stream_options?.include_usage === true;
    const hide = streaming && inject && !callerAsked;
    const sent: ChatCompletionCreateParams = hide
      ? { ...params, stream_options: { ...params.stream_options, include_usage: true } }
      : params;
    return meterCall(
      meter,
      () => client.chat.completions.create(sent, requestOptions),
      (value) => {
        if (streaming)
          return tapIfStream(value, client, meter, chunkTap(meter, callerAsked || hide, hide), drainMs);
        meter.response(get(value, 'model'), get(value, 'service_tier'));
        meter.setUsage(openAIUsage(get(value, 'usage')));
        meter.ok();
        return value;
      },
    );
  }

  function responsesCreate(params: ResponseCreateParams, requestOptions?: RequestOptions): unknown {
    const streaming = params.stream === true;
    const meter = new CallMeter(
      recorder,
      { provider, operation: 'chat', request_model: asString(params.model), streaming },
      options,
    );
    return meterCall(
      meter,
      () => client.responses.create(params, requestOptions),
      (value) => {
        if (streaming) return tapIfStream(value, client, meter, responsesTap(meter), drainMs);
        const failure = readResponse(meter, value);
        if (failure === null) meter.ok();
        else meter.failWith(failure);
        return value;
      },
    );
  }

  // Resources run their helpers with the view as `this`, so `this._client.chat.completions.create` inside
  // `parse()` / `stream()` reaches the wrapped create.
  const completions = overlay(
    client.chat.completions,
    { create: () => chatCreate, _client: () => view },
    false,
  );
  const chat = overlay(client.chat, { completions: () => completions }, false);
  const responses = overlay(client.responses, { create: () => responsesCreate, _client: () => view }, false);
  const withOptions = (clientOptions: Parameters<OpenAI['withOptions']>[0]): C =>
    wrapOpenAI(client.withOptions(clientOptions), recorder, options);
  const view: C = overlay(
    client,
    { chat: () => chat, responses: () => responses, withOptions: () => withOptions },
    true,
  );
  return view;
}

/** Model, tier and usage of a Responses API `Response` object; returns the failure code when it failed. */
function readResponse(meter: CallMeter, response: unknown): string | null {
  meter.response(get(response, 'model'), get(response, 'service_tier'));
  const usage = get(response, 'usage');
  if (typeof usage === 'object' && usage !== null) meter.setUsage(openAIUsage(usage));
  if (get(response, 'status') !== 'failed') return null;
  return asString(get(response, 'error', 'code')) ?? 'response_failed';
}

/**
 * Responses API events: usage arrives with the terminal event (`response.completed`, `response.incomplete`,
 * `response.failed`); the first `*.delta` event is the first token.
 */
function responsesTap(meter: CallMeter): StreamTap<unknown> {
  let failure: string | null = null;
  let terminal = false;
  return {
    item(event) {
      const type = asString(get(event, 'type')) ?? '';
      if (type.endsWith('.delta')) meter.firstToken();
      const response = get(event, 'response');
      if (typeof response === 'object' && response !== null) {
        const failed = readResponse(meter, response);
        if (failed !== null) failure = failed;
      }
      if (type === 'response.completed' || type === 'response.incomplete' || type === 'response.failed') {
        terminal = true;
      }
      if (type === 'error') failure = asString(get(event, 'code')) ?? 'error';
      return true;
    },
    closedEarly: () => (terminal ? 'ok' : 'cancel'),
    failure: () => failure,
  };
}
