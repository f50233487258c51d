/**
 * `tokenledger demo`. Until the full demo (issue 6) exists this is the smoke round trip the README promises:
 * bring the infrastructure up, produce one usage event to Kafka, consume it with a consumer group, write it to
 * ClickHouse with its Kafka coordinates, read it back, print it, and stop what it started (unless --keep).
 */
import { randomUUID } from 'node:crypto';
import type { Command } from 'commander';
import { Partitioners } from 'kafkajs';
import { loadConfig } from '../../lib/config';
import type { Config } from '../../lib/config';
import { createLogger } from '../../lib/logger';
import { createKafka } from '../../lib/kafka';
import { createClickHouse, ensureDatabase } from '../../lib/clickhouse';
import { TokenledgerError } from '../../lib/errors';
import { localInfra } from '../../infra/local';
import { say, table } from '../output';

const SMOKE_TOPIC = 'tokenledger.smoke.v1';

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description(
      'bring up the infrastructure and run an end-to-end smoke round trip (Kafka → consumer → ClickHouse)',
    )
    .option('--keep', 'leave the broker and the ClickHouse endpoint running afterwards')
    .option('--timeout-ms <ms>', 'give up on the round trip after this long', '60000')
    .action(async (opts: { keep?: boolean; timeoutMs: string }) => {
      const timeoutMs = Number(opts.timeoutMs);
      if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
        throw new TokenledgerError(
          'CLI_USAGE',
          `--timeout-ms must be a positive integer, got ${JSON.stringify(opts.timeoutMs)}`,
        );
      }
      const config = loadConfig();
      const infra = localInfra(config);
      say('▶ starting infrastructure (Kafka broker + ClickHouse endpoint) ...');
      const t0 = Date.now();
      const up = await infra.up();
      say(table([['service', 'address', 'outcome'], ...up.map((r) => [r.service, r.address, r.outcome])]));
      say(`  ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      try {
        await smokeRoundTrip(config, timeoutMs);
      } finally {
        if (opts.keep !== true) {
          // Stop only what this run started; a broker someone already had running stays up.
          const started = up.filter((r) => r.outcome === 'started').map((r) => r.service);
          for (const s of infra.services.filter((svc) => started.includes(svc.name))) await s.stop();
          if (started.length > 0) say(`▶ stopped ${started.join(' and ')}`);
        } else {
          say('▶ --keep: infrastructure left running (stop it with `tokenledger infra down`)');
        }
      }
    });
}

async function smokeRoundTrip(config: Config, timeoutMs: number): Promise<void> {
  const logger = createLogger({ level: config.logLevel === 'info' ? 'warn' : config.logLevel, name: 'demo' });
  const kafka = createKafka({ config, logger });
  const admin = kafka.admin();
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 5,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  const groupId = `tokenledger-smoke-${randomUUID()}`;
  const consumer = kafka.consumer({ groupId });
  await admin.connect();
  try {
    const topics = await admin.listTopics();
    if (!topics.includes(SMOKE_TOPIC)) {
      await admin.createTopics({
        waitForLeaders: true,
        topics: [
          {
            topic: SMOKE_TOPIC,
            numPartitions: 1,
            replicationFactor: -1,
            configEntries: [{ name: 'retention.ms', value: '3600000' }],
          },
        ],
      });
    }
    const event = {
      event_id: randomUUID(),
      occurred_at: new Date().toISOString(),
      team_id: 'team-smoke',
      provider: 'anthropic',
      request_model: 'claude-sonnet-4-5',
      input_tokens: 1200,
      output_tokens: 350,
    };
    say(`▶ producing event ${event.event_id} to ${SMOKE_TOPIC}`);
    await producer.connect();
    await producer.send({
      topic: SMOKE_TOPIC,
      acks: -1,
      messages: [{ key: event.team_id, value: JSON.stringify(event) }],
    });

    say(`▶ consuming it with consumer group ${groupId}`);
    await consumer.connect();
    await consumer.subscribe({ topic: SMOKE_TOPIC, fromBeginning: true });
    const received = await new Promise<{ partition: number; offset: string; value: typeof event }>(
      (resolve, reject) => {
        const timer = setTimeout(
          () =>
            reject(
              new TokenledgerError(
                'TIMEOUT',
                `the smoke event did not come back from ${SMOKE_TOPIC} within ${timeoutMs} ms`,
              ),
            ),
          timeoutMs,
        );
        consumer
          .run({
            eachMessage: async ({ partition, message }) => {
              const value = JSON.parse(message.value?.toString() ?? '{}') as typeof event;
              if (value.event_id === event.event_id) {
                clearTimeout(timer);
                resolve({ partition, offset: message.offset, value });
              }
              return Promise.resolve();
            },
          })
          .catch(reject);
      },
    );

    say(`▶ writing it to ClickHouse (${config.clickhouse.database}.smoke_events) and reading it back`);
    await ensureDatabase(config, logger);
    const ch = createClickHouse({ config, logger });
    try {
      await ch.command({
        query: `CREATE TABLE IF NOT EXISTS smoke_events (
          event_id UUID, occurred_at DateTime64(3, 'UTC'), team_id LowCardinality(String), provider LowCardinality(String),
          request_model LowCardinality(String), input_tokens UInt64, output_tokens UInt64,
          kafka_topic LowCardinality(String), kafka_partition UInt32, kafka_offset UInt64
        ) ENGINE = MergeTree ORDER BY (team_id, occurred_at, event_id)`,
      });
      await ch.insert({
        table: 'smoke_events',
        format: 'JSONEachRow',
        values: [
          {
            ...received.value,
            occurred_at: received.value.occurred_at.replace('T', ' ').replace('Z', ''),
            kafka_topic: SMOKE_TOPIC,
            kafka_partition: received.partition,
            kafka_offset: received.offset,
          },
        ],
        clickhouse_settings: { async_insert: 0 },
      });
      const rs = await ch.query({
        query: 'SELECT * FROM smoke_events WHERE event_id = {id:UUID}',
        query_params: { id: event.event_id },
        format: 'JSONEachRow',
      });
      const rows = await rs.json<Record<string, unknown>>();
      const row = rows[0];
      if (row === undefined)
        throw new TokenledgerError(
          'CLICKHOUSE_QUERY_FAILED',
          'the smoke event is not in ClickHouse after the insert',
        );
      say('▶ round trip complete; the row in ClickHouse:');
      say(table(Object.entries(row).map(([k, v]) => [`  ${k}`, String(v)])));
    } finally {
      await ch.close();
    }
  } finally {
    await consumer.disconnect().catch(() => undefined);
    await producer.disconnect().catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
  }
}
