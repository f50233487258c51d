/**
 * OpenAI wire formats as the API documents them: a chat completion, chat completion chunks (with the usage
 * chunk only when `stream_options.include_usage` is set, and then `usage: null` on every other chunk), a
 * Responses API response and its streamed events, and the error body.
 */
import type http from 'node:http';
import type { CapturedRequest } from './local-server';
import { sendJson, sseEvent, startSse } from './local-server';

export const CHAT_USAGE = {
  prompt_tokens: 1536,
  completion_tokens: 250,
  total_tokens: 1786,
  prompt_tokens_details: { cached_tokens: 1024, audio_tokens: 0 },
  completion_tokens_details: {
    reasoning_tokens: 192,
    audio_tokens: 0,
    accepted_prediction_tokens: 0,
    rejected_prediction_tokens: 0,
  },
};

export const CHAT_MODEL = 'o4-mini';
export const CHAT_RESPONSE_MODEL = 'o4-mini-2025-04-16';

export function chatCompletion(): unknown {
  return {
    id: 'chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG',
    object: 'chat.completion',
    created: 1741570283,
    model: CHAT_RESPONSE_MODEL,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: 'The answer is 42.', refusal: null, annotations: [] },
        logprobs: null,
        finish_reason: 'stop',
      },
    ],
    usage: CHAT_USAGE,
    service_tier: 'default',
    system_fingerprint: 'fp_fc9f1d7035',
  };
}

const CHUNK_BASE = {
  id: 'chatcmpl-123',
  object: 'chat.completion.chunk',
  created: 1694268190,
  model: CHAT_RESPONSE_MODEL,
  service_tier: 'flex',
  system_fingerprint: 'fp_44709d6fcb',
};

function chunk(delta: Record<string, unknown>, finish: string | null, withUsage: boolean): unknown {
  return {
    ...CHUNK_BASE,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    ...(withUsage ? { usage: null } : {}),
  };
}

/** The chunks of a streamed answer, as the API sends them for this request. */
export function chatChunks(req: CapturedRequest): { content: unknown[]; usage: unknown[] } {
  const withUsage = (req.body as { stream_options?: { include_usage?: boolean } }).stream_options
    ?.include_usage;
  const u = withUsage === true;
  return {
    content: [
      chunk({ role: 'assistant', content: '', refusal: null }, null, u),
      chunk({ content: 'The answer' }, null, u),
      chunk({ content: ' is 42.' }, null, u),
      chunk({}, 'stop', u),
    ],
    usage: u ? [{ ...CHUNK_BASE, choices: [], usage: CHAT_USAGE }] : [],
  };
}

/** Streams every chunk, then `[DONE]`. */
export function streamChat(req: CapturedRequest, res: http.ServerResponse): void {
  const { content, usage } = chatChunks(req);
  startSse(res);
  for (const c of [...content, ...usage]) res.write(sseEvent(c));
  res.end(sseEvent('[DONE]'));
}

export function openAIError(res: http.ServerResponse, status: number): void {
  sendJson(
    res,
    status,
    status === 429
      ? {
          error: {
            message:
              'Rate limit reached for o4-mini in organization org-abc on requests per min (RPM): Limit 3.',
            type: 'requests',
            param: null,
            code: 'rate_limit_exceeded',
          },
        }
      : {
          error: {
            message: 'The server had an error while processing your request. Sorry about that!',
            type: 'server_error',
            param: null,
            code: null,
          },
        },
  );
}

export const RESPONSES_MODEL = 'gpt-4.1';
export const RESPONSES_RESPONSE_MODEL = 'gpt-4.1-2025-04-14';
export const RESPONSES_USAGE = {
  input_tokens: 2200,
  input_tokens_details: { cached_tokens: 1920, cache_write_tokens: 128 },
  output_tokens: 87,
  output_tokens_details: { reasoning_tokens: 0 },
  total_tokens: 2287,
};

const MESSAGE_ITEM = {
  type: 'message',
  id: 'msg_67ccd2bf17f0819081ff3bb2cf6508e60bb6a6b452d3795b',
  status: 'completed',
  role: 'assistant',
  content: [{ type: 'output_text', text: 'In a peaceful grove...', annotations: [] }],
};

export function responseObject(
  status: 'in_progress' | 'completed',
  withUsage: boolean,
): Record<string, unknown> {
  return {
    id: 'resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b',
    object: 'response',
    created_at: 1741476542,
    status,
    error: null,
    incomplete_details: null,
    instructions: null,
    max_output_tokens: null,
    model: RESPONSES_RESPONSE_MODEL,
    output: status === 'completed' ? [MESSAGE_ITEM] : [],
    parallel_tool_calls: true,
    previous_response_id: null,
    reasoning: { effort: null, summary: null },
    service_tier: 'priority',
    store: true,
    temperature: 1.0,
    text: { format: { type: 'text' } },
    tool_choice: 'auto',
    tools: [],
    top_p: 1.0,
    truncation: 'disabled',
    usage: withUsage ? RESPONSES_USAGE : null,
    user: null,
    metadata: {},
  };
}

export function responseEvents(): unknown[] {
  const inProgress = responseObject('in_progress', false);
  const part = { type: 'output_text', text: '', annotations: [] };
  return [
    { type: 'response.created', response: inProgress, sequence_number: 0 },
    { type: 'response.in_progress', response: inProgress, sequence_number: 1 },
    {
      type: 'response.output_item.added',
      output_index: 0,
      item: { ...MESSAGE_ITEM, status: 'in_progress', content: [] },
      sequence_number: 2,
    },
    {
      type: 'response.content_part.added',
      item_id: MESSAGE_ITEM.id,
      output_index: 0,
      content_index: 0,
      part,
      sequence_number: 3,
    },
    {
      type: 'response.output_text.delta',
      item_id: MESSAGE_ITEM.id,
      output_index: 0,
      content_index: 0,
      delta: 'In a peaceful',
      sequence_number: 4,
    },
    {
      type: 'response.output_text.delta',
      item_id: MESSAGE_ITEM.id,
      output_index: 0,
      content_index: 0,
      delta: ' grove...',
      sequence_number: 5,
    },
    {
      type: 'response.output_text.done',
      item_id: MESSAGE_ITEM.id,
      output_index: 0,
      content_index: 0,
      text: 'In a peaceful grove...',
      sequence_number: 6,
    },
    {
      type: 'response.content_part.done',
      item_id: MESSAGE_ITEM.id,
      output_index: 0,
      content_index: 0,
      part: MESSAGE_ITEM.content[0],
      sequence_number: 7,
    },
    { type: 'response.output_item.done', output_index: 0, item: MESSAGE_ITEM, sequence_number: 8 },
    { type: 'response.completed', response: responseObject('completed', true), sequence_number: 9 },
  ];
}

/** Named SSE events, as the Responses API sends them (no `[DONE]`). */
export function streamResponse(res: http.ServerResponse): void {
  startSse(res);
  for (const e of responseEvents()) res.write(sseEvent(e, (e as { type: string }).type));
  res.end();
}
