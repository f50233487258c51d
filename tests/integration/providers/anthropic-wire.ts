/**
 * Anthropic Messages API wire formats as documented: a Message, the streamed events (`message_start` with
 * input/cache usage and an initial output count, `content_block_*`, `ping`, `message_delta` with the final
 * cumulative output count, `message_stop`), an in-stream `error` event and the error body.
 */
import type http from 'node:http';
import { sendJson, sseEvent, startSse } from './local-server';

export const MODEL = 'claude-sonnet-4-6';
export const RESPONSE_MODEL = 'claude-sonnet-4-6-20260217';

export function message(): unknown {
  return {
    id: 'msg_01XFDUDYJgAACzvnptvVoYEL',
    type: 'message',
    role: 'assistant',
    model: RESPONSE_MODEL,
    content: [
      { type: 'thinking', thinking: 'The user greets me.', signature: 'EqQBCgIYAhIM1gbcDa9GJwZA2b3h' },
      { type: 'text', text: 'Hello! How can I help?' },
    ],
    stop_reason: 'end_turn',
    stop_sequence: null,
    usage: {
      input_tokens: 12,
      cache_creation_input_tokens: 2048,
      cache_read_input_tokens: 4096,
      cache_creation: { ephemeral_5m_input_tokens: 2048, ephemeral_1h_input_tokens: 0 },
      output_tokens: 96,
      output_tokens_details: { thinking_tokens: 64 },
      server_tool_use: null,
      service_tier: 'standard',
    },
  };
}

export function streamEvents(): { head: [string, unknown][]; tail: [string, unknown][] } {
  return {
    head: [
      [
        'message_start',
        {
          type: 'message_start',
          message: {
            id: 'msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY',
            type: 'message',
            role: 'assistant',
            content: [],
            model: RESPONSE_MODEL,
            stop_reason: null,
            stop_sequence: null,
            usage: {
              input_tokens: 25,
              cache_creation_input_tokens: 1000,
              cache_read_input_tokens: 3000,
              output_tokens: 1,
              service_tier: 'priority',
            },
          },
        },
      ],
      [
        'content_block_start',
        { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
      ],
      ['ping', { type: 'ping' }],
      [
        'content_block_delta',
        { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Hello' } },
      ],
    ],
    tail: [
      [
        'content_block_delta',
        { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: '!' } },
      ],
      ['content_block_stop', { type: 'content_block_stop', index: 0 }],
      [
        'message_delta',
        {
          type: 'message_delta',
          delta: { stop_reason: 'end_turn', stop_sequence: null },
          usage: { output_tokens: 15 },
        },
      ],
      ['message_stop', { type: 'message_stop' }],
    ],
  };
}

export function writeEvents(res: http.ServerResponse, events: [string, unknown][]): void {
  for (const [name, data] of events) res.write(sseEvent(data, name));
}

export function streamMessage(res: http.ServerResponse): void {
  const { head, tail } = streamEvents();
  startSse(res);
  writeEvents(res, [...head, ...tail]);
  res.end();
}

/** message_start and a first delta, then an `error` event (e.g. overloaded) instead of the rest. */
export function streamThenOverloaded(res: http.ServerResponse): void {
  startSse(res);
  writeEvents(res, streamEvents().head);
  res.end(sseEvent({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } }, 'error'));
}

export function rateLimited(res: http.ServerResponse): void {
  sendJson(res, 429, {
    type: 'error',
    error: {
      type: 'rate_limit_error',
      message: 'Number of request tokens has exceeded your per-minute rate limit',
    },
    request_id: 'req_011CSHoEeqs5C35K2UUqR7Fy',
  });
}
