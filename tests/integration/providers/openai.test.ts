/**
 * wrapOpenAI with the real `openai` SDK against a local server speaking OpenAI's wire format. Every case runs
 * the same call through an unwrapped client on the same server and checks the caller got the same thing.
 */
import OpenAI from 'openai';
import { Stream } from 'openai/streaming';
import { wrapOpenAI } from '../../../producers/providers';
import { expectEvent, FakeRecorder } from './fake-recorder';
import type { LocalServer } from './local-server';
import { closed, gate, sendJson, sseEvent, startLocalServer, startSse, collect } from './local-server';
import {
  CHAT_MODEL,
  CHAT_RESPONSE_MODEL,
  chatChunks,
  chatCompletion,
  openAIError,
  RESPONSES_MODEL,
  RESPONSES_RESPONSE_MODEL,
  responseObject,
  streamChat,
  streamResponse,
} from './openai-wire';

const messages = [{ role: 'user' as const, content: 'What is the answer?' }];

const CHAT_TOKENS = {
  input_tokens: 1536,
  cache_read_input_tokens: 1024,
  cache_creation_input_tokens: 0,
  output_tokens: 250,
  reasoning_output_tokens: 192,
};
const NO_TOKENS = {
  input_tokens: 0,
  cache_read_input_tokens: 0,
  cache_creation_input_tokens: 0,
  output_tokens: 0,
  reasoning_output_tokens: 0,
};

describe('wrapOpenAI', () => {
  let server: LocalServer;
  let plain: OpenAI;
  let recorder: FakeRecorder;
  let wrapped: OpenAI;
  let meteringErrors: unknown[];

  beforeAll(async () => {
    server = await startLocalServer();
  });
  afterAll(async () => {
    await server.close();
  });
  beforeEach(() => {
    server.requests.length = 0;
    plain = new OpenAI({ apiKey: 'sk-test', baseURL: `${server.url}/v1`, maxRetries: 0 });
    recorder = new FakeRecorder();
    meteringErrors = [];
    wrapped = wrapOpenAI(plain, recorder, { onError: (err) => meteringErrors.push(err) });
  });
  afterEach(() => {
    expect(meteringErrors).toEqual([]);
  });

  describe('chat.completions.create', () => {
    test('non-streaming: same completion, APIPromise helpers intact, one event with every token class', async () => {
      server.route = (_req, res) => sendJson(res, 200, chatCompletion());
      const expected = await plain.chat.completions.create({ model: CHAT_MODEL, messages });
      const got = await wrapped.chat.completions.create({ model: CHAT_MODEL, messages });
      expect(got).toStrictEqual(expected);
      expect(got._request_id).toBe('req_test_123');

      expectEvent(
        await recorder.nth(1),
        {
          provider: 'openai',
          operation: 'chat',
          request_model: CHAT_MODEL,
          response_model: CHAT_RESPONSE_MODEL,
          streaming: false,
          service_tier: 'default',
          status: 'ok',
          error_type: null,
          ...CHAT_TOKENS,
        },
        'null',
      );

      const { data, response, request_id } = await wrapped.chat.completions
        .create({ model: CHAT_MODEL, messages })
        .withResponse();
      expect(data).toStrictEqual(expected);
      expect(response.status).toBe(200);
      expect(request_id).toBe('req_test_123');
      expect((await recorder.nth(2)).status).toBe('ok');
      expect(recorder.events).toHaveLength(2);
    });

    test('streaming without include_usage: asks for usage, hides the usage chunk, caller sees the unwrapped chunks', async () => {
      server.route = streamChat;
      const expected = await collect(
        await plain.chat.completions.create({ model: CHAT_MODEL, messages, stream: true }),
      );
      const stream = await wrapped.chat.completions.create({ model: CHAT_MODEL, messages, stream: true });
      expect(stream).toBeInstanceOf(Stream);
      expect(stream.controller).toBeInstanceOf(AbortController);
      const got = await collect(stream);

      expect(got).toStrictEqual(expected);
      expect(got.every((c) => !('usage' in c))).toBe(true);
      expect(server.requests.map((r) => (r.body as { stream_options?: unknown }).stream_options)).toEqual([
        undefined,
        { include_usage: true },
      ]);
      expectEvent(
        await recorder.nth(1),
        {
          provider: 'openai',
          operation: 'chat',
          request_model: CHAT_MODEL,
          response_model: CHAT_RESPONSE_MODEL,
          streaming: true,
          service_tier: 'flex',
          status: 'ok',
          error_type: null,
          ...CHAT_TOKENS,
        },
        'measured',
      );
      expect(recorder.events).toHaveLength(1);
    });

    test('streaming with include_usage asked by the caller: the usage chunk reaches the caller', async () => {
      server.route = streamChat;
      const params = {
        model: CHAT_MODEL,
        messages,
        stream: true as const,
        stream_options: { include_usage: true },
      };
      const expected = await collect(await plain.chat.completions.create(params));
      const got = await collect(await wrapped.chat.completions.create(params));
      expect(got).toStrictEqual(expected);
      expect(got.at(-1)?.choices).toEqual([]);
      expect(got.at(-1)?.usage?.prompt_tokens).toBe(1536);
      expectEvent(
        await recorder.nth(1),
        {
          provider: 'openai',
          operation: 'chat',
          request_model: CHAT_MODEL,
          response_model: CHAT_RESPONSE_MODEL,
          streaming: true,
          service_tier: 'flex',
          status: 'ok',
          error_type: null,
          ...CHAT_TOKENS,
        },
        'measured',
      );
    });

    test('toReadableStream() on the wrapped stream gives the unwrapped bytes and one event', async () => {
      server.route = streamChat;
      const read = async (s: Stream<unknown>): Promise<string> =>
        new Response(s.toReadableStream() as ReadableStream<Uint8Array>).text();
      const expected = await read(
        await plain.chat.completions.create({ model: CHAT_MODEL, messages, stream: true }),
      );
      const got = await read(
        await wrapped.chat.completions.create({ model: CHAT_MODEL, messages, stream: true }),
      );
      expect(got).toBe(expected);
      expect(got.split('\n').filter(Boolean)).toHaveLength(4);
      expect(await recorder.nth(1)).toMatchObject({ status: 'ok', ...CHAT_TOKENS });
      expect(recorder.events).toHaveLength(1);
    });

    test('HTTP 429: the SDK error is rethrown unchanged and one error event is recorded', async () => {
      server.route = (_req, res) => openAIError(res, 429);
      const plainError: unknown = await plain.chat.completions
        .create({ model: CHAT_MODEL, messages })
        .catch((e: unknown) => e);
      const error: unknown = await wrapped.chat.completions
        .create({ model: CHAT_MODEL, messages })
        .catch((e: unknown) => e);

      expect(error).toBeInstanceOf(OpenAI.RateLimitError);
      expect(Object.getPrototypeOf(error)).toBe(Object.getPrototypeOf(plainError));
      const fields = (e: unknown) => {
        const err = e as InstanceType<typeof OpenAI.APIError>;
        return { message: err.message, status: err.status, error: err.error, code: err.code, type: err.type };
      };
      expect(fields(error)).toStrictEqual(fields(plainError));
      expectEvent(
        await recorder.nth(1),
        {
          provider: 'openai',
          operation: 'chat',
          request_model: CHAT_MODEL,
          response_model: null,
          streaming: false,
          service_tier: null,
          status: 'error',
          error_type: '429',
          ...NO_TOKENS,
        },
        'null',
      );
      expect(recorder.events).toHaveLength(1);
    });

    test('a 200 whose body does not parse: the same error as unwrapped, one error event', async () => {
      server.route = (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"id":"chatcmpl-B9MHDbslfkBeAs8l4b');
      };
      const plainError: unknown = await plain.chat.completions
        .create({ model: CHAT_MODEL, messages })
        .catch((e: unknown) => e);
      const error: unknown = await wrapped.chat.completions
        .create({ model: CHAT_MODEL, messages })
        .catch((e: unknown) => e);
      // (a SyntaxError of Node's realm, not of the test sandbox's: compared by prototype and name)
      expect(Object.getPrototypeOf(error)).toBe(Object.getPrototypeOf(plainError));
      expect((error as Error).name).toBe('SyntaxError');
      expect((error as Error).message).toBe((plainError as Error).message);
      expectEvent(
        await recorder.nth(1),
        {
          provider: 'openai',
          operation: 'chat',
          request_model: CHAT_MODEL,
          response_model: null,
          streaming: false,
          service_tier: null,
          status: 'error',
          error_type: 'SyntaxError',
          ...NO_TOKENS,
        },
        'null',
      );
      expect(recorder.events).toHaveLength(1);
    });

    test('HTTP 500 on a streaming request: error rethrown, error event with streaming true', async () => {
      server.route = (_req, res) => openAIError(res, 500);
      const error: unknown = await wrapped.chat.completions
        .create({ model: CHAT_MODEL, messages, stream: true })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(OpenAI.InternalServerError);
      expectEvent(
        await recorder.nth(1),
        {
          provider: 'openai',
          operation: 'chat',
          request_model: CHAT_MODEL,
          response_model: null,
          streaming: true,
          service_tier: null,
          status: 'error',
          error_type: '500',
          ...NO_TOKENS,
        },
        'null',
      );
    });

    test('the caller breaks out of the stream: request aborted, one cancelled event with what was known', async () => {
      let serverSawClose: Promise<void> = Promise.resolve();
      server.route = (req, res) => {
        const { content } = chatChunks(req);
        startSse(res);
        res.write(sseEvent(content[0]));
        res.write(sseEvent(content[1]));
        serverSawClose = closed(res); // the rest never comes: only the client can end this
      };
      const stream = await wrapped.chat.completions.create({ model: CHAT_MODEL, messages, stream: true });
      const seen: string[] = [];
      for await (const chunk of stream) {
        seen.push(chunk.choices[0]?.delta.content ?? '');
        if (seen.length === 2) break;
      }
      expect(seen).toEqual(['', 'The answer']);
      await serverSawClose;
      expect(stream.controller.signal.aborted).toBe(true);
      expectEvent(
        await recorder.nth(1),
        {
          provider: 'openai',
          operation: 'chat',
          request_model: CHAT_MODEL,
          response_model: CHAT_RESPONSE_MODEL,
          streaming: true,
          service_tier: 'flex',
          status: 'cancelled',
          error_type: 'closed_early',
          ...NO_TOKENS,
        },
        'measured',
      );
      expect(recorder.events).toHaveLength(1);
    });

    test('an abort signal mid-stream: the loop ends as without the wrapper, cancelled event "aborted"', async () => {
      server.route = (req, res) => {
        const { content } = chatChunks(req);
        startSse(res);
        res.write(sseEvent(content[0]));
        res.write(sseEvent(content[1]));
      };
      const run = async (client: OpenAI): Promise<unknown[]> => {
        const abort = new AbortController();
        const stream = await client.chat.completions.create(
          { model: CHAT_MODEL, messages, stream: true },
          { signal: abort.signal },
        );
        const seen: unknown[] = [];
        for await (const chunk of stream) {
          seen.push(chunk);
          if (seen.length === 2) abort.abort();
        }
        return seen;
      };
      const expected = await run(plain);
      const got = await run(wrapped);
      expect(got).toStrictEqual(expected);
      expect(got).toHaveLength(2);
      expectEvent(
        await recorder.nth(1),
        {
          provider: 'openai',
          operation: 'chat',
          request_model: CHAT_MODEL,
          response_model: CHAT_RESPONSE_MODEL,
          streaming: true,
          service_tier: 'flex',
          status: 'cancelled',
          error_type: 'aborted',
          ...NO_TOKENS,
        },
        'measured',
      );
      expect(recorder.events).toHaveLength(1);
    });

    test('a break on finish_reason still records the usage that follows it, status ok', async () => {
      const usageGate = gate();
      server.route = async (req, res) => {
        const { content, usage } = chatChunks(req);
        startSse(res);
        for (const c of content) res.write(sseEvent(c));
        await usageGate.opened; // the usage chunk is sent only after the caller has left the loop
        for (const c of usage) res.write(sseEvent(c));
        res.end(sseEvent('[DONE]'));
      };
      const stream = await wrapped.chat.completions.create({ model: CHAT_MODEL, messages, stream: true });
      let text = '';
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta.content ?? '';
        if (chunk.choices[0]?.finish_reason) break;
      }
      expect(text).toBe('The answer is 42.');
      expect(recorder.events).toHaveLength(0);
      usageGate.open();
      expectEvent(
        await recorder.nth(1),
        {
          provider: 'openai',
          operation: 'chat',
          request_model: CHAT_MODEL,
          response_model: CHAT_RESPONSE_MODEL,
          streaming: true,
          service_tier: 'flex',
          status: 'ok',
          error_type: null,
          ...CHAT_TOKENS,
        },
        'measured',
      );
    });

    test('chat.completions.parse() on the wrapped client goes through the metered create', async () => {
      server.route = (_req, res) => sendJson(res, 200, chatCompletion());
      const expected = await plain.chat.completions.parse({ model: CHAT_MODEL, messages });
      const got = await wrapped.chat.completions.parse({ model: CHAT_MODEL, messages });
      expect(got).toStrictEqual(expected);
      expect(await recorder.nth(1)).toMatchObject({ status: 'ok', streaming: false, ...CHAT_TOKENS });
      expect(recorder.events).toHaveLength(1);
    });
  });

  describe('responses.create', () => {
    const RESPONSES_TOKENS = {
      input_tokens: 2200,
      cache_read_input_tokens: 1920,
      cache_creation_input_tokens: 128,
      output_tokens: 87,
      reasoning_output_tokens: 0,
    };

    test('non-streaming: same response, one event', async () => {
      server.route = (_req, res) => sendJson(res, 200, responseObject('completed', true));
      const expected = await plain.responses.create({ model: RESPONSES_MODEL, input: 'Tell me a story' });
      const got = await wrapped.responses.create({ model: RESPONSES_MODEL, input: 'Tell me a story' });
      expect(got).toStrictEqual(expected);
      expect(got.output_text).toBe('In a peaceful grove...');
      expectEvent(
        await recorder.nth(1),
        {
          provider: 'openai',
          operation: 'chat',
          request_model: RESPONSES_MODEL,
          response_model: RESPONSES_RESPONSE_MODEL,
          streaming: false,
          service_tier: 'priority',
          status: 'ok',
          error_type: null,
          ...RESPONSES_TOKENS,
        },
        'null',
      );
    });

    test('streaming: same events, usage from response.completed', async () => {
      server.route = (_req, res) => streamResponse(res);
      const params = { model: RESPONSES_MODEL, input: 'Tell me a story', stream: true as const };
      const expected = await collect(await plain.responses.create(params));
      const got = await collect(await wrapped.responses.create(params));
      expect(got).toStrictEqual(expected);
      expect(got.map((e) => e.type).at(-1)).toBe('response.completed');
      expectEvent(
        await recorder.nth(1),
        {
          provider: 'openai',
          operation: 'chat',
          request_model: RESPONSES_MODEL,
          response_model: RESPONSES_RESPONSE_MODEL,
          streaming: true,
          service_tier: 'priority',
          status: 'ok',
          error_type: null,
          ...RESPONSES_TOKENS,
        },
        'measured',
      );
      expect(recorder.events).toHaveLength(1);
    });
  });

  test('withOptions() on the wrapped client returns a wrapped client of the same class', async () => {
    server.route = (_req, res) => sendJson(res, 200, chatCompletion());
    const derived = wrapped.withOptions({ timeout: 30_000 });
    expect(derived).toBeInstanceOf(OpenAI);
    await derived.chat.completions.create({ model: CHAT_MODEL, messages });
    expect(await recorder.nth(1)).toMatchObject({ status: 'ok', request_model: CHAT_MODEL, ...CHAT_TOKENS });
    expect(recorder.events).toHaveLength(1);
  });

  test('provider override and tags; a recorder that throws never reaches the caller', async () => {
    server.route = (_req, res) => sendJson(res, 200, chatCompletion());
    const failures: unknown[] = [];
    const broken = {
      record: () => {
        throw new Error('recorder exploded');
      },
    };
    const azure = wrapOpenAI(plain, recorder, { provider: 'azure.ai.openai', tags: { feature: 'search' } });
    const brokenClient = wrapOpenAI(plain, broken, { onError: (err) => failures.push(err) });

    const ok = await brokenClient.chat.completions.create({ model: CHAT_MODEL, messages });
    expect(ok.choices[0]?.message.content).toBe('The answer is 42.');
    expect(failures).toHaveLength(1);
    expect((failures[0] as Error).message).toBe('recorder exploded');

    await azure.chat.completions.create({ model: CHAT_MODEL, messages });
    expect(await recorder.nth(1)).toMatchObject({ provider: 'azure.ai.openai', tags: { feature: 'search' } });
  });
});
