/** Reading untyped provider JSON (usage objects, OpenAI-style chunks) without trusting its shape. */
import type { CallMeter, TokenUsage } from './meter';
import type { StreamTap } from './sdk-observe';

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
