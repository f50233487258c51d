/**
 * createMeteredFetch against a local server speaking vLLM's OpenAI-compatible wire format. Each case makes the
 * same request with plain fetch and compares what the caller received, byte for byte.
 */
import OpenAI from 'openai';
import { createMeteredFetch } from '../../../producers/providers';
import type { FetchFunction } from '../../../producers/providers';
import { expectEvent, FakeRecorder } from './fake-recorder';
import type { EventFields } from './fake-recorder';
import type { LocalServer } from './local-server';
import { closed, sendJson, startLocalServer, startSse } from './local-server';
import { chatCompletion, chatEvents, embeddings, MODEL, streamChat, streamCompletion } from './vllm-wire';

const NO_TOKENS = {
  input_tokens: 0,
  cache_read_input_tokens: 0,
  cache_creation_input_tokens: 0,
  output_tokens: 0,
  reasoning_output_tokens: 0,
};
const CHAT_TOKENS = { ...NO_TOKENS, input_tokens: 42, cache_read_input_tokens: 32, output_tokens: 3 };
const CHAT_EVENT: EventFields = {
  provider: 'vllm',
  operation: 'chat',
  request_model: MODEL,
  response_model: MODEL,
  streaming: false,
  service_tier: null,
  status: 'ok',
  error_type: null,
  ...CHAT_TOKENS,
};

function post(body: unknown): RequestInit {
  return { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
}

const chatBody = { model: MODEL, messages: [{ role: 'user', content: 'Capital of France?' }] };

describe('createMeteredFetch', () => {
  let server: LocalServer;
  let recorder: FakeRecorder;
  let metered: FetchFunction;
  let meteringErrors: unknown[];

  beforeAll(async () => {
    server = await startLocalServer();
  });
  afterAll(async () => {
    await server.close();
  });
  beforeEach(() => {
    server.requests.length = 0;
    recorder = new FakeRecorder();
    meteringErrors = [];
    metered = createMeteredFetch(recorder, { provider: 'vllm', onError: (err) => meteringErrors.push(err) });
  });
  afterEach(() => {
    expect(meteringErrors).toEqual([]);
  });

  test('JSON chat completion: the caller gets the same Response; usage from the body', async () => {
    server.route = (_req, res) => sendJson(res, 200, chatCompletion());
    const url = `${server.url}/v1/chat/completions`;
    const plain = await fetch(url, post(chatBody));
    const got = await metered(url, post(chatBody));
    expect(got.status).toBe(plain.status);
    expect(got.url).toBe(url);
    expect(got.headers.get('content-type')).toBe(plain.headers.get('content-type'));
    expect(await got.text()).toBe(await plain.text());
    expectEvent(await recorder.nth(1), CHAT_EVENT, 'null');
    expect(recorder.events).toHaveLength(1);
  });

  test('SSE chat without include_usage: asks for it, hides the usage event, other bytes unchanged', async () => {
    server.route = streamChat;
    const url = `${server.url}/v1/chat/completions`;
    const body = { ...chatBody, stream: true };
    const plainText = await (await fetch(url, post(body))).text();
    const got = await metered(url, post(body));
    expect(got.url).toBe(url);
    expect(got.headers.get('content-type')).toContain('text/event-stream');
    expect(await got.text()).toBe(plainText);
    expect(plainText).not.toContain('"usage"');
    expect(server.requests.map((r) => (r.body as { stream_options?: unknown }).stream_options)).toEqual([
      undefined,
      { include_usage: true },
    ]);
    expectEvent(await recorder.nth(1), { ...CHAT_EVENT, streaming: true }, 'measured');
    expect(recorder.events).toHaveLength(1);
  });

  test('SSE chat with include_usage from the caller: the stream is passed through whole', async () => {
    server.route = streamChat;
    const url = `${server.url}/v1/chat/completions`;
    const body = { ...chatBody, stream: true, stream_options: { include_usage: true } };
    const plainText = await (await fetch(url, post(body))).text();
    const gotText = await (await metered(url, post(body))).text();
    expect(gotText).toBe(plainText);
    expect(gotText).toContain('"choices":[],"usage"');
    expectEvent(await recorder.nth(1), { ...CHAT_EVENT, streaming: true }, 'measured');
  });

  test('SSE text completion (/v1/completions): operation text_completion', async () => {
    server.route = streamCompletion;
    const url = `${server.url}/v1/completions`;
    const body = { model: MODEL, prompt: 'The capital of France is', max_tokens: 2, stream: true };
    const plainText = await (await fetch(url, post(body))).text();
    expect(await (await metered(url, post(body))).text()).toBe(plainText);
    expectEvent(
      await recorder.nth(1),
      {
        ...CHAT_EVENT,
        operation: 'text_completion',
        streaming: true,
        ...NO_TOKENS,
        input_tokens: 5,
        output_tokens: 2,
      },
      'measured',
    );
  });

  test('embeddings: input tokens only', async () => {
    server.route = (_req, res) => embeddings(res);
    const url = `${server.url}/v1/embeddings`;
    const body = { model: 'BAAI/bge-m3', input: 'hello world' };
    const plainText = await (await fetch(url, post(body))).text();
    expect(await (await metered(url, post(body))).text()).toBe(plainText);
    expectEvent(
      await recorder.nth(1),
      {
        ...CHAT_EVENT,
        operation: 'embeddings',
        request_model: 'BAAI/bge-m3',
        response_model: 'BAAI/bge-m3',
        ...NO_TOKENS,
        input_tokens: 7,
      },
      'null',
    );
  });

  test('other requests pass through untouched and record nothing', async () => {
    server.route = (_req, res) =>
      sendJson(res, 200, { object: 'list', data: [{ id: MODEL, object: 'model' }] });
    const got = await metered(`${server.url}/v1/models`);
    expect(await got.json()).toEqual({ object: 'list', data: [{ id: MODEL, object: 'model' }] });
    expect(server.requests[0]?.method).toBe('GET');
    expect(recorder.events).toHaveLength(0);
  });

  test('HTTP 500: the response is returned as it is, one error event', async () => {
    const errorBody = {
      object: 'error',
      message: 'CUDA out of memory',
      type: 'InternalServerError',
      param: null,
      code: 500,
    };
    server.route = (_req, res) => sendJson(res, 500, errorBody);
    const got = await metered(`${server.url}/v1/chat/completions`, post(chatBody));
    expect(got.status).toBe(500);
    expect(await got.json()).toEqual(errorBody);
    expectEvent(
      await recorder.nth(1),
      { ...CHAT_EVENT, response_model: null, status: 'error', error_type: '500', ...NO_TOKENS },
      'null',
    );
  });

  test('the caller cancels the SSE body mid-stream: the request is cancelled, one cancelled event', async () => {
    let serverSawClose: Promise<void> = Promise.resolve();
    server.route = (req, res) => {
      startSse(res);
      const events = chatEvents(req);
      res.write(events[0]);
      res.write(events[1]);
      serverSawClose = closed(res); // the rest never comes: only the client can end this
    };
    const got = await metered(`${server.url}/v1/chat/completions`, post({ ...chatBody, stream: true }));
    const reader = (got.body as ReadableStream<Uint8Array>).getReader();
    let text = '';
    while (!text.includes('Paris')) {
      const next = await reader.read();
      if (next.done) throw new Error('stream ended before the first content event');
      text += new TextDecoder().decode(next.value);
    }
    await reader.cancel();
    await serverSawClose;
    expectEvent(
      await recorder.nth(1),
      { ...CHAT_EVENT, streaming: true, status: 'cancelled', error_type: 'closed_early', ...NO_TOKENS },
      'measured',
    );
    expect(recorder.events).toHaveLength(1);
  });

  test('SSE split at arbitrary bytes (CRLF, multi-byte UTF-8): caller bytes exact, usage found', async () => {
    const usage = { prompt_tokens: 9, completion_tokens: 4, total_tokens: 13 };
    const events = [
      `data: ${JSON.stringify({ model: MODEL, choices: [{ index: 0, delta: { content: 'Ça va 🙂' }, finish_reason: null }] })}\r\n\r\n`,
      `: keep-alive comment\r\n\r\n`,
      `data: ${JSON.stringify({ model: MODEL, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\r\n\r\n`,
    ];
    const usageEvent = `data: ${JSON.stringify({ model: MODEL, choices: [], usage })}\r\n\r\n`;
    const done = 'data: [DONE]\r\n\r\n';
    const bytes = new TextEncoder().encode([...events, usageEvent, done].join(''));
    const source: FetchFunction = () => {
      let offset = 0;
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (offset >= bytes.length) controller.close();
          else controller.enqueue(bytes.slice(offset, (offset += 5)));
        },
      });
      return Promise.resolve(new Response(body, { headers: { 'content-type': 'text/event-stream' } }));
    };
    const fetchVia = createMeteredFetch(recorder, { provider: 'internal', fetch: source });
    const got = await fetchVia(
      'http://models.internal/v1/chat/completions',
      post({ ...chatBody, stream: true }),
    );
    expect(await got.text()).toBe([...events, done].join(''));
    expect(await recorder.nth(1)).toMatchObject({
      provider: 'internal',
      status: 'ok',
      ...NO_TOKENS,
      input_tokens: 9,
      output_tokens: 4,
    });
  });

  test('as the openai SDK fetch: chunks as the SDK gives them without the metered fetch, one event', async () => {
    server.route = streamChat;
    const plain = new OpenAI({ apiKey: 'none', baseURL: `${server.url}/v1`, maxRetries: 0 });
    const viaMetered = new OpenAI({
      apiKey: 'none',
      baseURL: `${server.url}/v1`,
      maxRetries: 0,
      fetch: metered,
    });
    const collect = async (client: OpenAI) => {
      const chunks: unknown[] = [];
      const stream = await client.chat.completions.create({
        model: MODEL,
        messages: [{ role: 'user', content: 'Capital of France?' }],
        stream: true,
      });
      for await (const chunk of stream) chunks.push(chunk);
      return chunks;
    };
    const expected = await collect(plain);
    expect(await collect(viaMetered)).toStrictEqual(expected);
    expectEvent(await recorder.nth(1), { ...CHAT_EVENT, streaming: true }, 'measured');
    expect(recorder.events).toHaveLength(1);
  });
});
