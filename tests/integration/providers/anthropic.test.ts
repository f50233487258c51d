/**
 * wrapAnthropic with the real `@anthropic-ai/sdk` against a local server speaking the Messages API wire format.
 * Every case runs the same call through an unwrapped client on the same server and compares what the caller got.
 */
import Anthropic from '@anthropic-ai/sdk';
import { wrapAnthropic } from '../../../producers/providers';
import {
  MODEL,
  RESPONSE_MODEL,
  message,
  rateLimited,
  streamEvents,
  streamMessage,
  streamThenOverloaded,
  writeEvents,
} from './anthropic-wire';
import { expectEvent, FakeRecorder } from './fake-recorder';
import type { EventFields } from './fake-recorder';
import type { LocalServer } from './local-server';
import { closed, sendJson, startLocalServer, startSse, collect } from './local-server';

const params = { model: MODEL, max_tokens: 1024, messages: [{ role: 'user' as const, content: 'Hello' }] };

const CALL = {
  provider: 'anthropic',
  operation: 'chat',
  request_model: MODEL,
  response_model: RESPONSE_MODEL,
};

/** The streamed message's usage: message_start input 25 + cache write 1000 + cache read 3000; final output 15. */
const STREAM_TOKENS = {
  input_tokens: 4025,
  cache_read_input_tokens: 3000,
  cache_creation_input_tokens: 1000,
  output_tokens: 15,
  reasoning_output_tokens: 0,
};
/** Known before message_delta: message_start's counts, output 1. */
const START_TOKENS = { ...STREAM_TOKENS, output_tokens: 1 };

describe('wrapAnthropic', () => {
  let server: LocalServer;
  let plain: Anthropic;
  let recorder: FakeRecorder;
  let wrapped: Anthropic;
  let meteringErrors: unknown[];

  beforeAll(async () => {
    server = await startLocalServer();
  });
  afterAll(async () => {
    await server.close();
  });
  beforeEach(() => {
    plain = new Anthropic({ apiKey: 'sk-ant-test', baseURL: server.url, maxRetries: 0 });
    recorder = new FakeRecorder();
    meteringErrors = [];
    wrapped = wrapAnthropic(plain, recorder, { onError: (err) => meteringErrors.push(err) });
  });
  afterEach(() => {
    expect(meteringErrors).toEqual([]);
  });

  test('non-streaming: same Message; input normalised to include cache reads and writes', async () => {
    server.route = (_req, res) => sendJson(res, 200, message());
    const expected = await plain.messages.create(params);
    const got = await wrapped.messages.create(params);
    expect(got).toStrictEqual(expected);
    expectEvent(
      await recorder.nth(1),
      {
        ...CALL,
        streaming: false,
        service_tier: 'standard',
        status: 'ok',
        error_type: null,
        input_tokens: 12 + 2048 + 4096,
        cache_read_input_tokens: 4096,
        cache_creation_input_tokens: 2048,
        output_tokens: 96,
        reasoning_output_tokens: 64,
      },
      'null',
    );
    expect(recorder.events).toHaveLength(1);
  });

  test('create({ stream: true }): same events; usage from message_start and message_delta', async () => {
    server.route = (_req, res) => streamMessage(res);
    const expected = await collect(await plain.messages.create({ ...params, stream: true }));
    const got = await collect(await wrapped.messages.create({ ...params, stream: true }));
    expect(got).toStrictEqual(expected);
    expect(got.map((e) => e.type)).toEqual([
      'message_start',
      'content_block_start',
      'content_block_delta',
      'content_block_delta',
      'content_block_stop',
      'message_delta',
      'message_stop',
    ]);
    const expectedEvent: EventFields = {
      ...CALL,
      streaming: true,
      service_tier: 'priority',
      status: 'ok',
      error_type: null,
      ...STREAM_TOKENS,
    };
    expectEvent(await recorder.nth(1), expectedEvent, 'measured');
    expect(recorder.events).toHaveLength(1);
  });

  test('messages.stream() (MessageStream) goes through the metered create: same final message, one event', async () => {
    server.route = (_req, res) => streamMessage(res);
    const expected = await plain.messages.stream(params).finalMessage();
    const stream = wrapped.messages.stream(params);
    const texts: string[] = [];
    stream.on('text', (t) => texts.push(t));
    const got = await stream.finalMessage();
    expect(got).toStrictEqual(expected);
    expect(texts).toEqual(['Hello', '!']);
    expectEvent(
      await recorder.nth(1),
      {
        ...CALL,
        streaming: true,
        service_tier: 'priority',
        status: 'ok',
        error_type: null,
        ...STREAM_TOKENS,
      },
      'measured',
    );
    expect(recorder.events).toHaveLength(1);
  });

  test('HTTP 429: the SDK error is rethrown unchanged and one error event is recorded', async () => {
    server.route = (_req, res) => rateLimited(res);
    const plainError: unknown = await plain.messages.create(params).catch((e: unknown) => e);
    const error: unknown = await wrapped.messages.create(params).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Anthropic.RateLimitError);
    expect(Object.getPrototypeOf(error)).toBe(Object.getPrototypeOf(plainError));
    const fields = (e: unknown) => {
      const err = e as InstanceType<typeof Anthropic.APIError>;
      return { message: err.message, status: err.status, error: err.error, type: err.type };
    };
    expect(fields(error)).toStrictEqual(fields(plainError));
    expectEvent(
      await recorder.nth(1),
      {
        ...CALL,
        response_model: null,
        streaming: false,
        service_tier: null,
        status: 'error',
        error_type: '429',
        input_tokens: 0,
        cache_read_input_tokens: 0,
        cache_creation_input_tokens: 0,
        output_tokens: 0,
        reasoning_output_tokens: 0,
      },
      'null',
    );
    expect(recorder.events).toHaveLength(1);
  });

  test('an error event mid-stream: same error and events as unwrapped; error event keeps the usage known so far', async () => {
    server.route = (_req, res) => streamThenOverloaded(res);
    const run = async (client: Anthropic) => {
      const seen: unknown[] = [];
      let error: unknown;
      try {
        for await (const event of await client.messages.create({ ...params, stream: true })) seen.push(event);
      } catch (err) {
        error = err;
      }
      return { seen, error };
    };
    const expected = await run(plain);
    const got = await run(wrapped);
    expect(got.seen).toStrictEqual(expected.seen);
    expect(got.seen).toHaveLength(3);
    expect(got.error).toBeInstanceOf(Anthropic.APIError);
    expect(Object.getPrototypeOf(got.error)).toBe(Object.getPrototypeOf(expected.error));
    expect((got.error as Error).message).toBe((expected.error as Error).message);
    expectEvent(
      await recorder.nth(1),
      {
        ...CALL,
        streaming: true,
        service_tier: 'priority',
        status: 'error',
        error_type: 'overloaded_error',
        ...START_TOKENS,
      },
      'measured',
    );
    expect(recorder.events).toHaveLength(1);
  });

  test('the caller breaks out of the stream: request aborted, cancelled event with message_start usage', async () => {
    let serverSawClose: Promise<void> = Promise.resolve();
    server.route = (_req, res) => {
      startSse(res);
      writeEvents(res, streamEvents().head);
      serverSawClose = closed(res); // the rest never comes: only the client can end this
    };
    const stream = await wrapped.messages.create({ ...params, stream: true });
    for await (const event of stream) {
      if (event.type === 'content_block_delta') break;
    }
    await serverSawClose;
    expect(stream.controller.signal.aborted).toBe(true);
    expectEvent(
      await recorder.nth(1),
      {
        ...CALL,
        streaming: true,
        service_tier: 'priority',
        status: 'cancelled',
        error_type: 'closed_early',
        ...START_TOKENS,
      },
      'measured',
    );
    expect(recorder.events).toHaveLength(1);
  });

  test('MessageStream.abort(): same outcome as unwrapped, cancelled event "aborted"', async () => {
    server.route = (_req, res) => {
      startSse(res);
      writeEvents(res, streamEvents().head);
    };
    const run = async (client: Anthropic) => {
      const stream = client.messages.stream(params);
      stream.on('text', () => stream.abort());
      const error: unknown = await stream.done().catch((e: unknown) => e);
      return { error, aborted: stream.aborted };
    };
    const expected = await run(plain);
    const got = await run(wrapped);
    expect(got.aborted).toBe(true);
    expect(got.error).toBeInstanceOf(Anthropic.APIUserAbortError);
    expect(Object.getPrototypeOf(got.error)).toBe(Object.getPrototypeOf(expected.error));
    expectEvent(
      await recorder.nth(1),
      {
        ...CALL,
        streaming: true,
        service_tier: 'priority',
        status: 'cancelled',
        error_type: 'aborted',
        ...START_TOKENS,
      },
      'measured',
    );
    expect(recorder.events).toHaveLength(1);
  });
});
