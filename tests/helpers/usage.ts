/**
 * Usage events for ingest tests: deterministic, encoded exactly as the emitter does (Avro single-object,
 * key team_id), with the totals the raw table and every rollup must end up with.
 */
import type { Kafka, Message } from 'kafkajs';
import type { ClickHouseClient } from '@clickhouse/client';
import { usageEventRegistry } from '../../schemas/usage-event/schema';
import type { UsageEvent } from '../../schemas/usage-event/types';
import { uuidv7 } from '../../producers/emitter/uuid';
import { loadCatalog, priceEvent } from '../../consumers/pricing';

const MODELS: readonly [string, string][] = [
  ['openai', 'gpt-4.1'],
  ['openai', 'gpt-4.1-mini'],
  ['anthropic', 'claude-sonnet-4-5'],
  ['anthropic', 'claude-haiku-4-5'],
  ['acme', 'internal-model-x'], // not in the catalog: unpriced
];

/** Event i of a run: spread over teams, users, models and the last few hours. */
export function makeEvent(i: number, baseMs: number, run = 'r'): UsageEvent {
  const [provider, model] = MODELS[i % MODELS.length] ?? ['openai', 'gpt-4.1'];
  const input = 100 + (i % 997);
  const cacheRead = i % 3 === 0 ? Math.floor(input / 2) : 0;
  const cacheWrite = i % 7 === 0 ? Math.floor(input / 5) : 0;
  const output = 10 + (i % 211);
  return {
    event_id: uuidv7(baseMs + i),
    occurred_at: baseMs + (i % 10_800) * 1000 + (i % 1000),
    org_id: 'acme',
    team_id: `team-${i % 17}`,
    user_id: `user-${i % 101}`,
    project_id: i % 2 === 0 ? 'search' : null,
    application: 'tests',
    environment: 'test',
    provider,
    operation: 'chat',
    request_model: model,
    response_model: null,
    streaming: i % 2 === 1,
    service_tier: null,
    status: i % 50 === 0 ? 'error' : 'ok',
    error_type: i % 50 === 0 ? 'rate_limit' : null,
    duration_ms: 200 + (i % 5000),
    time_to_first_token_ms: i % 2 === 1 ? 50 + (i % 400) : null,
    input_tokens: input,
    cache_read_input_tokens: cacheRead,
    cache_creation_input_tokens: cacheWrite,
    output_tokens: output,
    reasoning_output_tokens: i % 5 === 0 ? Math.floor(output / 3) : 0,
    client_cost_nanousd: null,
    tags: { run, seq: String(i) },
    sdk: 'tokenledger-tests/1',
  };
}

export interface Expected {
  events: number;
  input_tokens: bigint;
  cache_read_input_tokens: bigint;
  cache_creation_input_tokens: bigint;
  output_tokens: bigint;
  reasoning_output_tokens: bigint;
  cost_nanousd: bigint;
  errors: number;
}

export function expectedTotals(events: readonly UsageEvent[]): Expected {
  const catalog = loadCatalog();
  const e: Expected = {
    events: 0,
    input_tokens: 0n,
    cache_read_input_tokens: 0n,
    cache_creation_input_tokens: 0n,
    output_tokens: 0n,
    reasoning_output_tokens: 0n,
    cost_nanousd: 0n,
    errors: 0,
  };
  for (const ev of events) {
    e.events++;
    e.input_tokens += BigInt(ev.input_tokens);
    e.cache_read_input_tokens += BigInt(ev.cache_read_input_tokens);
    e.cache_creation_input_tokens += BigInt(ev.cache_creation_input_tokens);
    e.output_tokens += BigInt(ev.output_tokens);
    e.reasoning_output_tokens += BigInt(ev.reasoning_output_tokens);
    e.cost_nanousd += priceEvent(catalog, ev).cost_nanousd;
    if (ev.status === 'error') e.errors++;
  }
  return e;
}

export function encodeEvents(events: readonly UsageEvent[]): Message[] {
  const registry = usageEventRegistry();
  const values = registry.encodeMany(events);
  return events.map((ev, i) => ({ key: ev.team_id, value: values[i] ?? Buffer.alloc(0) }));
}

/** Produces messages in batches (acks=all), fast. */
export async function produce(
  kafka: Kafka,
  topic: string,
  messages: readonly Message[],
  batch = 5000,
): Promise<void> {
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  try {
    const sends: Promise<unknown>[] = [];
    for (let i = 0; i < messages.length; i += batch) {
      sends.push(producer.send({ topic, acks: -1, messages: messages.slice(i, i + batch) }));
      if (sends.length >= 4) await Promise.all(sends.splice(0));
    }
    await Promise.all(sends);
  } finally {
    await producer.disconnect();
  }
}

const SUMS = `count() AS events, sum(input_tokens) AS input_tokens, sum(cache_read_input_tokens) AS cache_read_input_tokens,
  sum(cache_creation_input_tokens) AS cache_creation_input_tokens, sum(output_tokens) AS output_tokens,
  sum(reasoning_output_tokens) AS reasoning_output_tokens, sum(cost_nanousd) AS cost_nanousd, countIf(status = 'error') AS errors`;
const ROLLUP_SUMS = `sum(requests) AS events, sum(input_tokens) AS input_tokens, sum(cache_read_input_tokens) AS cache_read_input_tokens,
  sum(cache_creation_input_tokens) AS cache_creation_input_tokens, sum(output_tokens) AS output_tokens,
  sum(reasoning_output_tokens) AS reasoning_output_tokens, sum(cost_nanousd) AS cost_nanousd, sum(errors) AS errors`;

type Row = Record<keyof Expected, string>;
function toExpected(r: Row | undefined): Expected {
  return {
    events: Number(r?.events ?? 0),
    input_tokens: BigInt(r?.input_tokens ?? 0),
    cache_read_input_tokens: BigInt(r?.cache_read_input_tokens ?? 0),
    cache_creation_input_tokens: BigInt(r?.cache_creation_input_tokens ?? 0),
    output_tokens: BigInt(r?.output_tokens ?? 0),
    reasoning_output_tokens: BigInt(r?.reasoning_output_tokens ?? 0),
    cost_nanousd: BigInt(r?.cost_nanousd ?? 0),
    errors: Number(r?.errors ?? 0),
  };
}

/** Totals of the raw table, of each rollup (plain sum, no FINAL), and the raw table's distinct event_ids. */
export async function actualTotals(
  ch: ClickHouseClient,
  where = '1',
): Promise<{ raw: Expected; distinct: number; minute: Expected; hour: Expected; day: Expected }> {
  const one = async (sql: string): Promise<Row | undefined> =>
    (await (await ch.query({ query: sql, format: 'JSONEachRow' })).json<Row>())[0];
  const distinct = await one(`SELECT uniqExact(event_id) AS events FROM usage_events WHERE ${where}`);
  return {
    raw: toExpected(await one(`SELECT ${SUMS} FROM usage_events WHERE ${where}`)),
    distinct: Number(distinct?.events ?? 0),
    minute: toExpected(await one(`SELECT ${ROLLUP_SUMS} FROM usage_minute`)),
    hour: toExpected(await one(`SELECT ${ROLLUP_SUMS} FROM usage_hour`)),
    day: toExpected(await one(`SELECT ${ROLLUP_SUMS} FROM usage_day`)),
  };
}

/** A printable line of totals for the tests' logs ("the invariant tests print the counts they compared"). */
export function describeTotals(label: string, t: Expected): string {
  return `${label}: events=${t.events} input=${t.input_tokens} output=${t.output_tokens} cost_nanousd=${t.cost_nanousd} errors=${t.errors}`;
}
