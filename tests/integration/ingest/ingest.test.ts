/**
 * The ingest consumer against the real broker and ClickHouse (in this process): raw rows and every rollup exact,
 * client repeats counted once, poison input in the DLQ topic and table with the right reason while the valid
 * events of the same batches are written, metrics and health endpoints.
 */
import { Registry } from 'prom-client';
import { createIngest } from '../../../consumers/ingest';
import { waitUntil } from '../../../infra/process';
import type { Ingest, IngestOptions } from '../../../consumers/ingest';
import { DLQ_HEADERS } from '../../../consumers/ingest';
import { loadCatalog } from '../../../consumers/pricing';
import { ensureSchema } from '../../../migrations/runner';
import { usageEventRegistry } from '../../../schemas/usage-event/schema';
import type { UsageEvent } from '../../../schemas/usage-event/types';
import { useTestDatabase } from '../../helpers/clickhouse';
import { testLogger } from '../../helpers/env';
import { consumeN, useTestKafka } from '../../helpers/kafka';
import {
  actualTotals,
  describeTotals,
  encodeEvents,
  expectedTotals,
  makeEvent,
  produce,
} from '../../helpers/usage';

const k = useTestKafka();
const WAIT = { timeoutMs: 90_000 };
const db = useTestDatabase();

beforeAll(async () => {
  await ensureSchema(db.client(), testLogger());
});

function startIngest(
  topic: string,
  dlqTopic: string,
  groupId: string,
  registry = new Registry(),
  overrides: Partial<IngestOptions> = {},
): Ingest {
  return createIngest({
    kafka: k.kafka,
    clickhouse: db.client(),
    logger: testLogger(),
    catalog: loadCatalog(),
    topic,
    groupId,
    dlqTopic,
    batchMaxWaitMs: 100,
    batchMaxRows: 3000,
    metricsRegistry: registry,
    ...overrides,
  });
}

test('valid events land exactly once in raw and every rollup; 10% client repeats count once; poison goes to the DLQ with its reason', async () => {
  const topic = await k.topic(3);
  const dlqTopic = await k.topic(1);
  const base = Date.now() - 4 * 3600_000;
  const events = Array.from({ length: 20_000 }, (_, i) => makeEvent(i, base, 'valid'));
  const registry = usageEventRegistry();
  // 10% of events sent a second time with the same event_id (an emitter replaying its spool)
  const repeats = events.filter((_, i) => i % 10 === 3);
  const good = encodeEvents(events);
  const again = encodeEvents(repeats);

  // Poison: random bytes, an unknown fingerprint, and each semantic validation rule broken once
  const bad = (patch: Partial<UsageEvent>, i: number): UsageEvent => ({
    ...makeEvent(900_000 + i, base, 'bad'),
    ...patch,
  });
  const rules: [string, Partial<UsageEvent>][] = [
    ['team_missing', { team_id: '' }],
    ['event_id_invalid', { event_id: 'not-a-uuid' }],
    ['status_invalid', { status: 'weird' as never }],
    ['tokens_negative', { output_tokens: -1 }],
    ['cache_exceeds_input', { input_tokens: 10, cache_read_input_tokens: 8, cache_creation_input_tokens: 8 }],
    ['reasoning_exceeds_output', { output_tokens: 5, reasoning_output_tokens: 6 }],
    ['occurred_at_future', { occurred_at: Date.now() + 3600_000 }],
    ['occurred_at_too_old', { occurred_at: Date.UTC(2010, 0, 1) }],
    ['string_too_long', { request_model: 'm'.repeat(600) }],
    ['tags_too_many', { tags: Object.fromEntries(Array.from({ length: 70 }, (_, j) => [`k${j}`, 'v'])) }],
  ];
  const poison = [
    { key: 'team-1', value: Buffer.from('definitely not avro') },
    {
      key: 'team-2',
      value: Buffer.concat([Buffer.from([0xc3, 0x01]), Buffer.alloc(8, 0xab), Buffer.from('body')]),
    },
    ...rules.map(([, patch], i) => ({ key: 'team-3', value: registry.encode(bad(patch, i)) })),
  ];
  const expectedReasons = ['bad_magic', 'unknown_fingerprint', ...rules.map(([r]) => r)];

  // interleave: poison inside the same batches as valid events
  const all = [...good.slice(0, 10_000), ...poison, ...good.slice(10_000), ...again];
  await produce(k.kafka, topic, all, 2000);

  const metrics = new Registry();
  const ingest = startIngest(topic, dlqTopic, k.groupId(), metrics);
  await ingest.start();
  try {
    await waitUntil(
      'all events ingested',
      async () => {
        const s = await ingest.metrics.snapshot();
        return (s.written ?? 0) + (s.duplicate ?? 0) + (s.dead_letter ?? 0) >= all.length;
      },
      WAIT,
    );
    expect(ingest.ready()).toBe(true);
    const s = await ingest.metrics.snapshot();
    const t = await actualTotals(db.client());
    const want = expectedTotals(events);
    process.stdout.write(
      `[ingest exact] produced=${all.length} (valid ${events.length}, repeats ${repeats.length}, poison ${poison.length}) written=${s.written} duplicates=${s.duplicate} dead_letters=${s.dead_letter}\n` +
        `${describeTotals('  expected', want)}\n${describeTotals('  raw', t.raw)}\n${describeTotals('  minute', t.minute)}\n${describeTotals('  hour', t.hour)}\n${describeTotals('  day', t.day)}\n`,
    );
    expect(s.written).toBe(events.length);
    expect(s.duplicate).toBe(repeats.length);
    expect(s.dead_letter).toBe(poison.length);
    expect(t.distinct).toBe(events.length);
    expect(t.raw).toEqual(want);
    expect(t.minute).toEqual(want);
    expect(t.hour).toEqual(want);
    expect(t.day).toEqual(want);
    expect(want.cost_nanousd).toBeGreaterThan(0n);

    // the DLQ topic: original bytes and the reason headers, one per poison message
    const dead = await consumeN({
      kafka: k.kafka,
      config: k.config,
      topic: dlqTopic,
      groupId: k.groupId(),
      count: poison.length,
      timeoutMs: 30_000,
    });
    const reasons = dead.map((d) => d.message.headers?.[DLQ_HEADERS.reason]?.toString()).sort();
    expect(reasons).toEqual([...expectedReasons].sort());
    for (const d of dead) {
      expect(d.message.headers?.[DLQ_HEADERS.topic]?.toString()).toBe(topic);
      expect(d.message.headers?.[DLQ_HEADERS.message]?.toString().length).toBeGreaterThan(5);
      const offset = Number(d.message.headers?.[DLQ_HEADERS.offset]?.toString());
      expect(Number.isInteger(offset)).toBe(true);
    }
    expect(dead.some((d) => d.message.value?.toString() === 'definitely not avro')).toBe(true);
    // ... and queryable in ClickHouse
    const rows = await (
      await db.client().query({
        query: 'SELECT reason, count() AS n FROM usage_dlq GROUP BY reason ORDER BY reason',
        format: 'JSONEachRow',
      })
    ).json<{ reason: string; n: string }>();
    expect(rows.map((r) => r.reason)).toEqual([...expectedReasons].sort());
    expect(rows.every((r) => r.n === '1')).toBe(true);

    const text = await metrics.metrics();
    expect(text).toContain(`tokenledger_ingest_events_total{outcome="written"} ${events.length}`);
    expect(text).toContain('tokenledger_ingest_dead_letters_total{reason="tokens_negative"} 1');
  } finally {
    await ingest.stop();
  }
});

test('a restarted consumer (new group, committed offsets lost) skips what ClickHouse already has: nothing twice', async () => {
  const topic = await k.topic(2);
  const dlqTopic = await k.topic(1);
  const base = Date.now() - 2 * 3600_000;
  const events = Array.from({ length: 4000 }, (_, i) => makeEvent(i, base, 'restart'));
  await produce(k.kafka, topic, encodeEvents(events));
  const first = startIngest(topic, dlqTopic, k.groupId());
  await first.start();
  await waitUntil(
    'first pass',
    async () => ((await first.metrics.snapshot()).written ?? 0) >= events.length,
    WAIT,
  );
  await first.stop();
  // A new group starts from the beginning of the topic: every message is read again.
  const second = startIngest(topic, dlqTopic, k.groupId());
  await second.start();
  await waitUntil(
    'second pass',
    async () => ((await second.metrics.snapshot()).skipped_already_written ?? 0) >= events.length,
    WAIT,
  );
  const s = await second.metrics.snapshot();
  await second.stop();
  expect(s.written ?? 0).toBe(0);
  const t = await actualTotals(db.client(), `has(mapKeys(tags), 'run') AND tags['run'] = 'restart'`);
  expect(t.raw.events).toBe(events.length);
  expect(t.distinct).toBe(events.length);
});

test('a range whose events span two days (here two months) is written as one insert per UTC day, one part per table; totals exact', async () => {
  const topic = await k.topic(1);
  const dlqTopic = await k.topic(1);
  const now = new Date();
  const monthA = Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 2, 10);
  const monthB = Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 10);
  // runs of 100 events alternating between the two months, all in one partition (late events around a boundary)
  const events = Array.from({ length: 3000 }, (_, i) => ({
    ...makeEvent(i, monthA, 'months'),
    team_id: `months-${i % 3}`,
    occurred_at: (Math.floor(i / 100) % 2 === 0 ? monthA : monthB) + i * 1000,
  }));
  await produce(k.kafka, topic, encodeEvents(events));

  // Watch the raw inserts' dedup tokens (<topic>-<partition>-<first>-<last>) on their way to the real server.
  const real = db.client();
  const ranges: [number, number][] = [];
  const watched = new Proxy(real, {
    get(target, prop, receiver) {
      if (prop === 'exec')
        return (params: Parameters<typeof real.exec>[0]) => {
          const token = params.clickhouse_settings?.insert_deduplication_token;
          if (params.query.startsWith('INSERT INTO usage_events') && typeof token === 'string') {
            const m = /-(\d+)-(\d+)$/.exec(token);
            if (m !== null) ranges.push([Number(m[1]), Number(m[2])]);
          }
          return real.exec(params);
        };
      const v: unknown = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  const ingest = startIngest(topic, dlqTopic, k.groupId(), undefined, {
    clickhouse: watched,
    batchMaxRows: 50_000,
  });
  await ingest.start();
  try {
    await waitUntil(
      'all events ingested',
      async () => ((await ingest.metrics.snapshot()).written ?? 0) >= events.length,
      WAIT,
    );
  } finally {
    await ingest.stop();
  }
  const cuts = (await ingest.metrics.snapshot()).range_cuts ?? 0;
  const where = `tags['run'] = 'months'`;
  const months = await (
    await real.query({
      query: `SELECT kafka_offset AS o, toUInt32(toDate(occurred_at)) AS m FROM usage_events WHERE ${where}`,
      format: 'JSONEachRow',
    })
  ).json<{ o: string; m: number }>();
  const dayAt = new Map(months.map((r) => [Number(r.o), r.m]));
  const daysPerInsert = ranges.map(([a, b]) => {
    const seen = new Set<number>();
    for (let off = a; off <= b; off++) {
      const m = dayAt.get(off);
      if (m !== undefined) seen.add(m);
    }
    return seen.size;
  });
  const t = await actualTotals(real, where);
  const want = expectedTotals(events);
  const rollups = await (
    await real.query({
      // (not the minute rollup: its 35-day TTL drops rows this old, as designed)
      query: ['hour', 'day']
        .map(
          (r) =>
            `SELECT '${r}' AS rollup, toString(sum(requests)) AS events, toString(sum(input_tokens)) AS input, toString(sum(cost_nanousd)) AS cost FROM usage_${r} WHERE team_id LIKE 'months-%'`,
        )
        .join(' UNION ALL '),
      format: 'JSONEachRow',
    })
  ).json<{ rollup: string; events: string; input: string; cost: string }>();
  process.stdout.write(
    `[ingest months] ${events.length} events in 30 runs over 2 months → ${ranges.length} raw inserts, days per insert: ${[...new Set(daysPerInsert)].join(',')}, range cuts counted: ${cuts}\n` +
      `${describeTotals('  expected', want)}\n${describeTotals('  raw', t.raw)}\n` +
      rollups
        .map((r) => `  ${r.rollup}: events=${r.events} input=${r.input} cost_nanousd=${r.cost}\n`)
        .join(''),
  );
  expect(ranges.length).toBeGreaterThanOrEqual(30);
  expect(daysPerInsert.every((n) => n === 1)).toBe(true);
  expect(cuts).toBeGreaterThanOrEqual(29);
  expect(t.distinct).toBe(events.length);
  expect(t.raw).toEqual(want);
  for (const r of rollups)
    expect([r.rollup, r.events, r.input, r.cost]).toEqual([
      r.rollup,
      String(want.events),
      String(want.input_tokens),
      String(want.cost_nanousd),
    ]);
});

/** Starts `ingest`, waits until `done` (given its metrics) holds, stops it; its metrics. */
async function runUntil(
  ingest: Ingest,
  what: string,
  done: (m: Record<string, number>) => boolean | Promise<boolean>,
): Promise<Record<string, number>> {
  await ingest.start();
  try {
    await waitUntil(what, async () => done(await ingest.metrics.snapshot()), WAIT);
  } finally {
    await ingest.stop();
  }
  return ingest.metrics.snapshot();
}

/**
 * Ingests `tag` events until the first range's insert fails on usage_day. The engine commits the raw part and
 * each view's part separately: a constraint on usage_day makes the last view's part fail, so the first range's
 * raw, minute and hour parts land and its day part does not. The error is not retriable: ingest stops without
 * committing the range (as if it had been killed there). Returns what the next owner needs and the table sums.
 */
async function failFirstRangeOnDay(tag: string): Promise<{
  topic: string;
  dlqTopic: string;
  events: UsageEvent[];
  sums: () => Promise<Record<string, string>>;
  afterFailure: Record<string, string>;
}> {
  const topic = await k.topic(1);
  const dlqTopic = await k.topic(1);
  const base = Date.now() - 2 * 3600_000;
  const events = Array.from({ length: 5000 }, (_, i) => ({
    ...makeEvent(i, base, tag),
    team_id: `${tag}-${i % 3}`,
  }));
  await produce(k.kafka, topic, encodeEvents(events));
  const ch = db.client();
  await ch.command({ query: 'ALTER TABLE usage_day ADD CONSTRAINT replay_test_fail CHECK requests = 0' });
  let fatal: Error | undefined;
  const first = startIngest(topic, dlqTopic, k.groupId(), undefined, {
    onFatal: (err) => (fatal = err),
  });
  try {
    await runUntil(first, 'the first insert fails on usage_day', () => fatal !== undefined);
  } finally {
    await ch.command({ query: 'ALTER TABLE usage_day DROP CONSTRAINT replay_test_fail' });
  }
  const sums = async (): Promise<Record<string, string>> => {
    const rows = await (
      await ch.query({
        query: ['events', 'minute', 'hour', 'day']
          .map(
            (r) =>
              `SELECT '${r}' AS t, toString(${r === 'events' ? 'count()' : 'sum(requests)'}) AS n FROM usage_${r} WHERE team_id LIKE '${tag}-%'`,
          )
          .join(' UNION ALL '),
        format: 'JSONEachRow',
      })
    ).json<{ t: string; n: string }>();
    return Object.fromEntries(rows.map((r) => [r.t, r.n]));
  };
  const afterFailure = await sums();
  // the failure left the range in raw, minute and hour but not in day
  expect(Number(afterFailure.events)).toBeGreaterThan(0);
  expect(afterFailure.minute).toBe(afterFailure.events);
  expect(afterFailure.hour).toBe(afterFailure.events);
  expect(afterFailure.day ?? '0').toBe('0');
  return { topic, dlqTopic, events, sums, afterFailure };
}

/** The partition's next owner (same group: Kafka never got the commit) ingests the rest. */
async function nextOwner(
  f: Awaited<ReturnType<typeof failFirstRangeOnDay>>,
): Promise<Record<string, number>> {
  return runUntil(
    startIngest(f.topic, f.dlqTopic, k.groupId()),
    'every event in the raw table',
    async () => Number((await f.sums()).events) >= f.events.length,
  );
}

test('a range whose raw part landed but a rollup part did not, then abandoned, is written again by the next owner: every rollup exact', async () => {
  const f = await failFirstRangeOnDay('replay');
  const s = await nextOwner(f);
  const after = await f.sums();
  const t = await actualTotals(db.client(), `tags['run'] = 'replay'`);
  const want = expectedTotals(f.events);
  const { afterFailure: a } = f;
  process.stdout.write(
    `[ingest replay] ${f.events.length} events; after the failed insert raw/minute/hour/day = ${a.events}/${a.minute}/${a.hour}/${a.day}; ` +
      `after the next owner = ${after.events}/${after.minute}/${after.hour}/${after.day}; ranges replayed: ${s.ranges_replayed}\n` +
      `${describeTotals('  expected', want)}\n${describeTotals('  raw', t.raw)}\n`,
  );
  expect(s.ranges_replayed).toBe(1);
  expect(s.ranges_unconfirmed).toBe(0);
  expect(t.raw).toEqual(want);
  expect(t.distinct).toBe(f.events.length);
  const n = String(f.events.length);
  expect(after).toEqual({ events: n, minute: n, hour: n, day: n });
});

test('an unacknowledged range older than the dedup window is not replayed (that could double count): counted and logged instead', async () => {
  const f = await failFirstRangeOnDay('stale');
  // 5,000 ranges recorded since (other partitions): the token may have left a table's 10,000-block window
  await db.client().command({
    query: `INSERT INTO ingest_ranges (kafka_topic, kafka_partition, first_offset, last_offset, token, state, rows, at)
            SELECT 'elsewhere', 0, number, number, toString(number), 'intent', 1, now64(3) + INTERVAL 1 SECOND
            FROM numbers(5000)`,
  });
  const s = await nextOwner(f);
  const after = await f.sums();
  process.stdout.write(
    `[ingest stale range] after the next owner raw/minute/hour/day = ${after.events}/${after.minute}/${after.hour}/${after.day}; replayed ${s.ranges_replayed}, unconfirmed ${s.ranges_unconfirmed}\n`,
  );
  expect(s.ranges_replayed).toBe(0);
  expect(s.ranges_unconfirmed).toBe(1);
  // raw exact; the day rollup misses the range (the documented limit), nothing is counted twice
  const n = String(f.events.length);
  expect(after).toEqual({
    events: n,
    minute: n,
    hour: n,
    day: String(f.events.length - Number(f.afterFailure.events)),
  });
});

test("an abandoned intent whose offsets another owner's range wrote later is not replayed (those rows are not its own)", async () => {
  const topic = await k.topic(1);
  const dlqTopic = await k.topic(1);
  const base = Date.now() - 2 * 3600_000;
  const events = Array.from({ length: 5000 }, (_, i) => ({
    ...makeEvent(i, base, 'orphan'),
    team_id: `orphan-${i % 3}`,
  }));
  await produce(k.kafka, topic, encodeEvents(events));
  await runUntil(
    startIngest(topic, dlqTopic, k.groupId()),
    'all written',
    (m) => (m.written ?? 0) >= events.length,
  );
  // An owner recorded [3500, 4499] (1,000 rows), was cut off before its insert, and the next owner wrote those
  // offsets in its own ranges: the intent is the partition's highest and latest, never done, and the raw table
  // holds 1,000 rows in its offsets — not its rows. Replaying it would count them twice.
  await db.client().command({
    query: `INSERT INTO ingest_ranges (kafka_topic, kafka_partition, first_offset, last_offset, token, state, rows, at)
            VALUES ({topic:String}, 0, 3500, 4499, {token:String}, 'intent', 1000, now64(3) + INTERVAL 1 SECOND)`,
    query_params: { topic, token: `${topic}-0-3500-4499` },
  });
  const s = await runUntil(
    startIngest(topic, dlqTopic, k.groupId()),
    'every message read again',
    (m) => (m.skipped_already_written ?? 0) >= events.length,
  );
  const t = await actualTotals(db.client(), `tags['run'] = 'orphan'`);
  const day = await (
    await db.client().query({
      query: `SELECT toString(sum(requests)) AS n FROM usage_day WHERE team_id LIKE 'orphan-%'`,
      format: 'JSONEachRow',
    })
  ).json<{ n: string }>();
  process.stdout.write(
    `[ingest orphan intent] raw=${t.raw.events} day=${day[0]?.n} replayed=${s.ranges_replayed} unconfirmed=${s.ranges_unconfirmed}\n`,
  );
  expect(s.ranges_replayed).toBe(0);
  expect(s.ranges_unconfirmed).toBe(0);
  expect(t.raw).toEqual(expectedTotals(events));
  expect(day[0]?.n).toBe(String(events.length));
});
