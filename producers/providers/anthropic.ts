/**
 * Usage events for `@anthropic-ai/sdk`: `messages.create`, streaming (`stream: true`) or not, and the helpers
 * built on it — `messages.stream()` (the MessageStream) and `messages.parse()` call the wrapped `create`.
 *
 * Token normalisation: Anthropic's `input_tokens` EXCLUDE cache reads and writes, so DESIGN's input_tokens is
 * input + cache_creation + cache_read. Streaming splits usage: `message_start` carries input, cache and an
 * initial output count; `message_delta` carries the final, cumulative output count (and, when present,
 * cumulative input/cache counts, which replace the earlier ones). Thinking tokens are in `output_tokens`, and
 * `output_tokens_details.thinking_tokens` gives the reasoning subset when the API reports it.
 *
 * Only types are imported from the SDK: wrapping does not load it.
 */
import type { Anthropic } from '@anthropic-ai/sdk';
import type { RequestOptions } from '@anthropic-ai/sdk/internal/request-options';
import type { MessageCreateParams } from '@anthropic-ai/sdk/resources/messages/messages';
import type { UsageRecorder } from '../emitter/types';
import type { StreamTap } from './sdk-observe';
import type { TokenUsage, WrapperOptions } from './meter';
import { asString, get } from './provider-json';
import { CallMeter, DEFAULT_DRAIN_TIMEOUT_MS } from './meter';
import { meterCall, overlay, tapIfStream } from './sdk-observe';

export type AnthropicWrapperOptions = WrapperOptions;

/**
 * Returns a view of `client` whose `messages` record one usage event per model call. The view has the
 * client's type; `withOptions()` on it returns a wrapped client too.
 */
export function wrapAnthropic<C extends Anthropic>(
  client: C,
  recorder: UsageRecorder,
  options: AnthropicWrapperOptions = {},
): C {
  const provider = options.provider ?? 'anthropic';
  const drainMs = options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS;

  function create(params: MessageCreateParams, requestOptions?: RequestOptions): unknown {
    const streaming = params.stream === true;
    const meter = new CallMeter(
      recorder,
      { provider, operation: 'chat', request_model: asString(params.model), streaming },
      options,
    );
    return meterCall(
      meter,
      () => client.messages.create(params, requestOptions),
      (value) => {
        if (streaming) return tapIfStream(value, client, meter, eventTap(meter), drainMs);
        const usage = get(value, 'usage');
        meter.response(get(value, 'model'), get(usage, 'service_tier'));
        const raw = emptyRaw();
        applyUsage(raw, usage);
        meter.setUsage(normalise(raw));
        meter.ok();
        return value;
      },
    );
  }

  // `messages.stream()` and `messages.parse()` run with the view as `this` and so call the wrapped create.
  const messages = overlay(client.messages, { create: () => create, _client: () => view }, false);
  const withOptions = (clientOptions: Parameters<Anthropic['withOptions']>[0]): C =>
    wrapAnthropic(client.withOptions(clientOptions), recorder, options);
  const view: C = overlay(client, { messages: () => messages, withOptions: () => withOptions }, true);
  return view;
}

/** Anthropic's own counts, as last reported. */
interface RawUsage {
  input: number;
  cacheRead: number;
  cacheWrite: number;
  output: number;
  thinking: number;
}

function emptyRaw(): RawUsage {
  return { input: 0, cacheRead: 0, cacheWrite: 0, output: 0, thinking: 0 };
}

/** Takes every count `usage` reports; null or absent counts (not reported in this event) keep the earlier value. */
function applyUsage(raw: RawUsage, usage: unknown): void {
  const take = (value: unknown, previous: number): number =>
    typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : previous;
  raw.input = take(get(usage, 'input_tokens'), raw.input);
  raw.cacheRead = take(get(usage, 'cache_read_input_tokens'), raw.cacheRead);
  raw.cacheWrite = take(get(usage, 'cache_creation_input_tokens'), raw.cacheWrite);
  raw.output = take(get(usage, 'output_tokens'), raw.output);
  raw.thinking = take(get(usage, 'output_tokens_details', 'thinking_tokens'), raw.thinking);
}

function normalise(raw: RawUsage): TokenUsage {
  return {
    input_tokens: raw.input + raw.cacheRead + raw.cacheWrite,
    cache_read_input_tokens: raw.cacheRead,
    cache_creation_input_tokens: raw.cacheWrite,
    output_tokens: raw.output,
    reasoning_output_tokens: raw.thinking,
  };
}

/** Raw stream events: `message_start` → `content_block_*` → `message_delta` (final usage) → `message_stop`. */
function eventTap(meter: CallMeter): StreamTap<unknown> {
  const raw = emptyRaw();
  let finalUsage = false;
  return {
    item(event) {
      switch (get(event, 'type')) {
        case 'message_start': {
          const message = get(event, 'message');
          meter.response(get(message, 'model'), get(message, 'usage', 'service_tier'));
          applyUsage(raw, get(message, 'usage'));
          meter.setUsage(normalise(raw));
          break;
        }
        case 'content_block_delta':
          meter.firstToken();
          break;
        case 'message_delta':
          applyUsage(raw, get(event, 'usage'));
          meter.setUsage(normalise(raw));
          finalUsage = true;
          break;
        default:
          break;
      }
      return true;
    },
    closedEarly: () => (finalUsage ? 'ok' : 'cancel'),
  };
}
