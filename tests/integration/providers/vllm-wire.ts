/**
 * vLLM's OpenAI-compatible server wire formats: chat completion, chat and text-completion chunks (the usage
 * chunk with `choices: []` only when `stream_options.include_usage` is set), embeddings.
 */
import type http from 'node:http';
import type { CapturedRequest } from './local-server';
import { sendJson, sseEvent, startSse } from './local-server';

export const MODEL = 'meta-llama/Llama-3.1-8B-Instruct';
export const USAGE = {
  prompt_tokens: 42,
  total_tokens: 45,
  completion_tokens: 3,
  prompt_tokens_details: { cached_tokens: 32 },
};

export function chatCompletion(): unknown {
  return {
    id: 'chatcmpl-b3f6c0e4a1d34b8c9a0e2f7d5c6b1a20',
    object: 'chat.completion',
    created: 1752000000,
    model: MODEL,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', reasoning_content: null, content: 'Paris.', tool_calls: [] },
        logprobs: null,
        finish_reason: 'stop',
        stop_reason: null,
      },
    ],
    usage: USAGE,
    prompt_logprobs: null,
    kv_transfer_params: null,
  };
}

const CHAT_CHUNK = {
  id: 'chatcmpl-5d1e0c8f9a7b4e3c8d2f1a0b9c8d7e6f',
  object: 'chat.completion.chunk',
  created: 1752000001,
  model: MODEL,
};

function usageRequested(req: CapturedRequest): boolean {
  return (
    (req.body as { stream_options?: { include_usage?: boolean } }).stream_options?.include_usage === true
  );
}

export function chatEvents(req: CapturedRequest): string[] {
  const choice = (delta: unknown, finish: string | null) => ({
    ...CHAT_CHUNK,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
  });
  return [
    sseEvent(choice({ role: 'assistant', content: '' }, null)),
    sseEvent(choice({ content: 'Paris' }, null)),
    sseEvent(choice({ content: '.' }, null)),
    sseEvent(choice({}, 'stop')),
    ...(usageRequested(req) ? [sseEvent({ ...CHAT_CHUNK, choices: [], usage: USAGE })] : []),
    sseEvent('[DONE]'),
  ];
}

export function streamChat(req: CapturedRequest, res: http.ServerResponse): void {
  startSse(res);
  for (const e of chatEvents(req)) res.write(e);
  res.end();
}

export function streamCompletion(req: CapturedRequest, res: http.ServerResponse): void {
  const base = {
    id: 'cmpl-0f1e2d3c4b5a69788796a5b4c3d2e1f0',
    object: 'text_completion',
    created: 1752000002,
    model: MODEL,
  };
  const text = (t: string, finish: string | null) => ({
    ...base,
    choices: [{ index: 0, text: t, logprobs: null, finish_reason: finish, stop_reason: null }],
  });
  startSse(res);
  res.write(sseEvent(text(' Paris', null)));
  res.write(sseEvent(text('.', 'length')));
  if (usageRequested(req)) {
    res.write(
      sseEvent({ ...base, choices: [], usage: { prompt_tokens: 5, total_tokens: 7, completion_tokens: 2 } }),
    );
  }
  res.end(sseEvent('[DONE]'));
}

export function embeddings(res: http.ServerResponse): void {
  sendJson(res, 200, {
    id: 'embd-8c7b6a5d4e3f2a1b0c9d8e7f6a5b4c3d',
    object: 'list',
    created: 1752000003,
    model: 'BAAI/bge-m3',
    data: [{ index: 0, object: 'embedding', embedding: [0.0123, -0.0456, 0.0789] }],
    usage: { prompt_tokens: 7, total_tokens: 7, completion_tokens: 0, prompt_tokens_details: null },
  });
}
