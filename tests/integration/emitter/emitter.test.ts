/** The emitter against the real broker: what record() takes arrives in the topic, decoded exactly. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Registry } from 'prom-client';
import { createEmitter } from '../../../producers/emitter';
import type { EmitterError } from '../../../producers/emitter';
import { usageEventRegistry } from '../../../schemas/usage-event/schema';
import type { UsageEvent } from '../../../schemas/usage-event/types';
import { consumeN, useTestKafka } from '../../helpers/kafka';
import { testLogger } from '../../helpers/env';

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
