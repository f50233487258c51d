/** The emitter against the real broker: what record() takes arrives in the topic, decoded exactly. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Registry } from 'prom-client';
import {
  Kafka,
  KafkaJSConnectionError,
  KafkaJSNumberOfRetriesExceeded,
  KafkaJSProtocolError,
  logLevel,
} from 'kafkajs';
import { waitUntil } from '../../../infra/process';
import { createEmitter } from '../../../producers/emitter';
import { isPermanentRejection } from '../../../producers/emitter/emitter';
import type { EmitterError } from '../../../producers/emitter';
import { usageEventRegistry } from '../../../schemas/usage-event/schema';
import type { UsageEvent } from '../../../schemas/usage-event/types';
import { consumeN, useTestKafka } from '../../helpers/kafka';
import { freePort, testLogger } from '../../helpers/env';

const k = useTestKafka();
const spoolDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenledger-emitter-test-'));
afterAll(() => fs.rmSync(spoolDir, { recursive: true, force: true }));

test('record() → Kafka: defaults, context, key team_id, every field; invalid events reported, not sent', async () => {
  const topic = await k.topic(3);
  const errors: EmitterError[] = [];
  const emitter = createEmitter({
    kafka: k.kafka,
    topic,
    logger: testLogger(),
    defaults: { org_id: 'acme', environment: 'test', tags: { repo: 'tokenledger' } },
    spool: { dir: spoolDir },
    onError: (e) => errors.push(e),
  });
  const returned = emitter.record({
    team_id: 'team-a',
    user_id: 'u1',
    provider: 'openai',
    request_model: 'gpt-4.1',
    response_model: 'gpt-4.1-2025-04-14',
    input_tokens: 1000,
    cache_read_input_tokens: 400,
    output_tokens: 200,
    reasoning_output_tokens: 50,
    duration_ms: 1234,
    tags: { ticket: 'T-1' },
  });
  expect(returned).toBeUndefined();
  await emitter.withContext({ team_id: 'team-b', user_id: 'svc' }, async () => {
    await Promise.resolve();
    for (let i = 0; i < 99; i++)
      emitter.record({
        provider: 'anthropic',
        request_model: 'claude-sonnet-4-5',
        input_tokens: i,
        output_tokens: 1,
      });
  });
  // invalid: negative tokens, no team at all
  emitter.record({ team_id: 'team-a', provider: 'openai', request_model: 'gpt-4.1', output_tokens: -5 });
  emitter.record({ provider: 'openai', request_model: 'gpt-4.1' });
  await emitter.flush();
  expect(emitter.metrics()).toMatchObject({
    recorded: 100,
    sent: 100,
    spooled: 0,
    dropped: { invalid: 2 },
    queueDepth: 0,
    inFlight: 0,
  });
  expect(errors.map((e) => (e.kind === 'invalid' ? e.issues[0]?.reason : e.kind))).toEqual([
    'tokens_negative',
    'team_missing',
  ]);
  expect(errors[0]?.kind === 'invalid' && errors[0].message).toContain(
    'output_tokens must not be negative, got -5',
  );
  await emitter.close();

  const got = await consumeN({
    kafka: k.kafka,
    config: k.config,
    topic,
    groupId: k.groupId(),
    count: 100,
    timeoutMs: 60_000,
  });
  const registry = usageEventRegistry();
  const events = got.map((c) => ({
    key: c.message.key?.toString(),
    partition: c.partition,
    ...registry.decode(c.message.value as Buffer),
  }));
  expect(new Set(events.map((e) => e.value.event_id)).size).toBe(100);
  for (const e of events) {
    expect(e.key).toBe(e.value.team_id);
    expect(e.writerVersion).toBe(registry.current.version);
  }
  const first = events.find((e) => e.value.team_id === 'team-a')?.value;
  expect(first).toMatchObject<Partial<UsageEvent>>({
    org_id: 'acme',
    team_id: 'team-a',
    user_id: 'u1',
    environment: 'test',
    provider: 'openai',
    operation: 'chat',
    request_model: 'gpt-4.1',
    response_model: 'gpt-4.1-2025-04-14',
    status: 'ok',
    input_tokens: 1000,
    cache_read_input_tokens: 400,
    cache_creation_input_tokens: 0,
    output_tokens: 200,
    reasoning_output_tokens: 50,
    duration_ms: 1234,
    tags: { repo: 'tokenledger', ticket: 'T-1' },
  });
  expect(first?.event_id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7/);
  expect(first?.sdk).toMatch(/^tokenledger-node\//);
  const fromContext = events.filter((e) => e.value.team_id === 'team-b');
  expect(fromContext).toHaveLength(99);
  expect(new Set(fromContext.map((e) => e.partition)).size).toBe(1);
  expect(fromContext.every((e) => e.value.user_id === 'svc' && e.value.org_id === 'acme')).toBe(true);
});

test('record() after close is counted as dropped, not thrown', async () => {
  const topic = await k.topic(1);
  const errors: EmitterError[] = [];
  const emitter = createEmitter({
    kafka: k.kafka,
    topic,
    logger: testLogger(),
    spool: false,
    onError: (e) => errors.push(e),
  });
  await emitter.close();
  expect(() => emitter.record({ team_id: 't', provider: 'openai', request_model: 'm' })).not.toThrow();
  expect(emitter.metrics().dropped.closed).toBe(1);
  expect(errors[0]).toMatchObject({ kind: 'dropped', reason: 'closed', count: 1 });
});

test('bad options are refused with every problem named', () => {
  expect(() =>
    createEmitter({
      kafka: k.kafka,
      batch: { maxEvents: 0, lingerMs: -1 },
      maxInFlight: 9,
      compression: 'lz5' as never,
    }),
  ).toThrow(
    /batch\.maxEvents must be a positive integer, got 0[\s\S]*batch\.lingerMs must be ≥ 0[\s\S]*maxInFlight must be at most 5[\s\S]*compression must be/,
  );
});

test('metrics as prom-client metrics too', async () => {
  const topic = await k.topic(1);
  const registry = new Registry();
  const emitter = createEmitter({
    kafka: k.kafka,
    topic,
    logger: testLogger(),
    spool: false,
    metricsRegistry: registry,
  });
  for (let i = 0; i < 5; i++)
    emitter.record({ team_id: 't', provider: 'openai', request_model: 'm', input_tokens: i });
  emitter.record({ team_id: '', provider: 'openai', request_model: 'm' });
  await emitter.flush();
  const text = await registry.metrics();
  expect(text).toContain('tokenledger_emitter_events_total{outcome="recorded"} 5');
  expect(text).toContain('tokenledger_emitter_events_total{outcome="sent"} 5');
  expect(text).toContain('tokenledger_emitter_dropped_events_total{reason="invalid"} 1');
  expect(text).toContain('tokenledger_emitter_queue_depth 0');
  await emitter.close();
});

test('memory is bounded: beyond queue.maxEvents, events are dropped with a count (no spool) and never thrown', async () => {
  const topic = await k.topic(1);
  const errors: EmitterError[] = [];
  const emitter = createEmitter({
    kafka: k.kafka,
    topic,
    logger: testLogger(),
    spool: false,
    queue: { maxEvents: 10 },
    batch: { lingerMs: 60_000, maxEvents: 1000 },
    onError: (e) => errors.push(e),
  });
  // record() is synchronous: nothing is sent while this loop runs, so the queue fills at 10
  for (let i = 0; i < 25; i++) emitter.record({ team_id: 't', provider: 'openai', request_model: 'm' });
  expect(emitter.metrics()).toMatchObject({ recorded: 25, queueDepth: 10, dropped: { queue_full: 15 } });
  expect(errors.filter((e) => e.kind === 'dropped' && e.reason === 'queue_full')).toHaveLength(15);
  await emitter.flush();
  expect(emitter.metrics().sent).toBe(10);
  await emitter.close();
});

/** A client for a port where nothing listens: every send fails fast, as during an outage. */
async function unreachableKafka(): Promise<Kafka> {
  return new Kafka({
    clientId: 'unreachable',
    brokers: [`127.0.0.1:${await freePort()}`],
    connectionTimeout: 300,
    retry: { retries: 1, initialRetryTime: 50 },
    logLevel: logLevel.NOTHING,
  });
}

test('queue full with a spool and Kafka healthy: the overflow goes through the spool and every event arrives once', async () => {
  const topic = await k.topic(2);
  const dir = fs.mkdtempSync(path.join(spoolDir, 'overflow-'));
  const emitter = createEmitter({
    kafka: k.kafka,
    topic,
    logger: testLogger(),
    spool: { dir },
    queue: { maxEvents: 100 },
  });
  const n = 3000;
  // record() is synchronous: the queue overflows many times before anything is sent
  for (let i = 0; i < n; i++)
    emitter.record({ team_id: 't', provider: 'openai', request_model: 'm', tags: { seq: String(i) } });
  const spooledWhileRecording = emitter.metrics().spooled;
  await waitUntil(
    'the overflow delivered through the spool',
    () => {
      const m = emitter.metrics();
      return Promise.resolve(m.sent === n && m.spoolBytes === 0 && m.queueDepth === 0);
    },
    { timeoutMs: 60_000, intervalMs: 50 },
  );
  const m = emitter.metrics();
  await emitter.close();
  expect(spooledWhileRecording).toBeGreaterThan(0);
  expect(Object.values(m.dropped).reduce((a, b) => a + b, 0)).toBe(0);
  expect(m.sendErrors).toBe(0);
  const got = await consumeN({
    kafka: k.kafka,
    config: k.config,
    topic,
    groupId: k.groupId(),
    count: n,
    timeoutMs: 60_000,
  });
  const registry = usageEventRegistry();
  const seqs = got.map((c) => registry.decode(c.message.value as Buffer).value.tags.seq);
  expect(new Set(seqs).size).toBe(n);
  expect(seqs).toHaveLength(n);
});

test('tags the caller mutates after record() do not change (or break) the recorded event', async () => {
  const topic = await k.topic(1);
  const emitter = createEmitter({ kafka: k.kafka, topic, logger: testLogger(), spool: false });
  const tags: Record<string, string> = { ticket: 'T-1' };
  emitter.record({ team_id: 't', provider: 'openai', request_model: 'm', tags });
  tags.ticket = 'T-2';
  for (let i = 0; i < 100; i++) tags[`k${i}`] = 'x'; // would now be over the tag limit
  await emitter.close();
  expect(emitter.metrics()).toMatchObject({ sent: 1, dropped: { invalid: 0 } });
  const [got] = await consumeN({
    kafka: k.kafka,
    config: k.config,
    topic,
    groupId: k.groupId(),
    count: 1,
    timeoutMs: 60_000,
  });
  expect(usageEventRegistry().decode(got?.message.value as Buffer).value.tags).toEqual({ ticket: 'T-1' });
});

test('without a spool, close() counts what it could not deliver as not_delivered (never silently)', async () => {
  const errors: EmitterError[] = [];
  const emitter = createEmitter({
    kafka: await unreachableKafka(),
    topic: 'nowhere',
    logger: testLogger(),
    spool: false,
    retryIntervalMs: 50,
    onError: (e) => errors.push(e),
  });
  for (let i = 0; i < 7; i++) emitter.record({ team_id: 't', provider: 'openai', request_model: 'm' });
  await emitter.close({ timeoutMs: 1500 });
  const m = emitter.metrics();
  expect(m.sent).toBe(0);
  expect(m.dropped.not_delivered).toBe(7);
  expect(errors.some((e) => e.kind === 'dropped' && e.reason === 'not_delivered' && e.count === 7)).toBe(
    true,
  );
});

test('a spool that cannot be written (folder gone) counts the events as spool_error; record() never throws', async () => {
  const dir = fs.mkdtempSync(path.join(spoolDir, 'broken-'));
  const emitter = createEmitter({
    kafka: await unreachableKafka(),
    topic: 'nowhere',
    logger: testLogger(),
    spool: { dir },
    retryIntervalMs: 50,
  });
  fs.rmSync(dir, { recursive: true });
  fs.writeFileSync(dir, 'not a folder'); // every new segment file now fails (ENOTDIR)
  for (let i = 0; i < 5; i++)
    expect(() => emitter.record({ team_id: 't', provider: 'openai', request_model: 'm' })).not.toThrow();
  await waitUntil(
    '5 events counted as spool_error',
    () => Promise.resolve(emitter.metrics().dropped.spool_error === 5),
    {
      timeoutMs: 60_000,
      intervalMs: 50,
    },
  );
  await emitter.close({ timeoutMs: 500 });
  expect(emitter.metrics()).toMatchObject({ sent: 0, spooled: 0 });
  fs.rmSync(dir, { force: true });
});

test('isPermanentRejection: only a refused batch is final; retries exhausted on a lost connection is not', () => {
  const connection = new KafkaJSConnectionError('Connection error: connect ECONNREFUSED');
  expect(
    isPermanentRejection(new KafkaJSNumberOfRetriesExceeded(connection, { retryCount: 5, retryTime: 100 })),
  ).toBe(false);
  expect(isPermanentRejection(connection)).toBe(false);
  const tooLarge = new KafkaJSProtocolError({
    type: 'MESSAGE_TOO_LARGE',
    code: 10,
    retriable: false,
    message: 'too large',
  } as never);
  expect(isPermanentRejection(tooLarge)).toBe(true);
  expect(
    isPermanentRejection(new KafkaJSNumberOfRetriesExceeded(tooLarge, { retryCount: 0, retryTime: 0 })),
  ).toBe(true);
  const auth = new KafkaJSProtocolError({
    type: 'TOPIC_AUTHORIZATION_FAILED',
    code: 29,
    retriable: false,
    message: 'denied',
  } as never);
  expect(isPermanentRejection(auth)).toBe(false); // an operator can grant it: keep the events
});
