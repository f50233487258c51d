/**
 * `tokenledger ingest`: the long-running ingest consumer (consumers/ingest), with /metrics, /healthz and
 * /readyz, a progress line every 10 s, and a graceful stop on SIGTERM/SIGINT (the batches in progress are
 * written first; their commit may be lost, which costs the next owner a re-read that ClickHouse's progress skips).
 * `tokenledger dlq tail`: shows what ingest sent to the dead-letter topic, with reason and source coordinates.
 */
import type { Command } from 'commander';
import { Registry } from 'prom-client';
import { loadConfig } from '../../lib/config';
import { TokenledgerError } from '../../lib/errors';
import { createKafka } from '../../lib/kafka';
import { createLogger } from '../../lib/logger';
import { TOPICS } from '../../lib/topics';
import { createIngest, DLQ_HEADERS } from '../../consumers/ingest';
import type { Ingest } from '../../consumers/ingest';
import { writePriceTable } from '../../consumers/pricing';
import { prepareConsumer, serveConsumer } from '../consumer-startup';
import { EXIT, parsePortFlag, say } from '../output';

export function registerIngest(program: Command): void {
  program
    .command('ingest')
    .description('consume usage events from Kafka into ClickHouse (raw events + rollups), until stopped')
    .option('--http-port <port>', 'port of /metrics, /healthz, /readyz (default INGEST_HTTP_PORT or 9464)')
    .addHelpText(
      'after',
      `
Settings (environment): INGEST_TOPIC, INGEST_GROUP_ID, INGEST_DLQ_TOPIC, INGEST_BATCH_MAX_ROWS,
INGEST_BATCH_MAX_WAIT_MS, INGEST_DEDUPE_HORIZON_MS, INGEST_PARTITIONS_CONCURRENTLY,
INGEST_CONSUMERS, INGEST_SESSION_TIMEOUT_MS, PRICES_OVERRIDES_FILE, plus the Kafka and
ClickHouse ones (tokenledger config check --list).
Run several copies with the same INGEST_GROUP_ID to share the partitions (each runs
INGEST_CONSUMERS group members: give the topic at least copies × members partitions).
SIGTERM/SIGINT: finish the batches in progress (written to ClickHouse), exit 0.`,
    )
    .action(async (opts: { httpPort?: string }) => {
      process.exitCode = await runIngest(opts);
    });

  program
    .command('dlq')
    .description('the dead-letter topic: messages ingest refused, with the reason')
    .command('tail')
    .description('print the last dead letters (reason, message, source topic/partition/offset)')
    .option('-n, --count <n>', 'how many per partition, from the end', '20')
    .option('-f, --follow', 'keep printing new dead letters until interrupted')
    .option('--json', 'one JSON object per line (with the value as hex)')
    .action(async (opts: { count: string; follow?: boolean; json?: boolean }) => {
      process.exitCode = await dlqTail(opts);
    });
}

async function runIngest(opts: { httpPort?: string }): Promise<number> {
  const config = loadConfig(process.env, ['kafka', 'clickhouse', 'local', 'ingest', 'log']);
  const httpPort = parsePortFlag('--http-port', opts.httpPort, config.ingest.httpPort);
  const logger = createLogger({ level: config.logLevel });
  const { catalog, clickhouse, kafka } = await prepareConsumer({
    config,
    logger,
    application: 'tokenledger-ingest',
    topics: [
      { ...TOPICS.usage, name: config.ingest.topic },
      { ...TOPICS.dlq, name: config.ingest.dlqTopic },
    ],
  });
  await writePriceTable(clickhouse, catalog);

  const registry = new Registry();
  let ingest: Ingest | undefined;
  let last: Record<string, number> = {};
  return serveConsumer({
    name: 'ingest',
    registry,
    port: httpPort,
    logger,
    clickhouse,
    create: (onFatal) =>
      (ingest = createIngest({
        kafka,
        clickhouse,
        logger,
        catalog,
        topic: config.ingest.topic,
        groupId: config.ingest.groupId,
        dlqTopic: config.ingest.dlqTopic,
        batchMaxRows: config.ingest.batchMaxRows,
        batchMaxWaitMs: config.ingest.batchMaxWaitMs,
        dedupeHorizonMs: config.ingest.dedupeHorizonMs,
        partitionsConcurrently: config.ingest.partitionsConcurrently,
        consumers: config.ingest.consumers,
        sessionTimeoutMs: config.ingest.sessionTimeoutMs,
        metricsRegistry: registry,
        onFatal,
      })),
    progress: async () => {
      const now = (await ingest?.metrics.snapshot()) ?? {};
      const rate = ((now.written ?? 0) - (last.written ?? 0)) / 10;
      const mem = process.memoryUsage();
      const mb = (n: number): number => Math.round(n / 1048576);
      logger.info(
        {
          written: now.written ?? 0,
          perSecond: rate,
          duplicates: now.duplicate ?? 0,
          deadLetters: now.dead_letter ?? 0,
          rssMb: mb(mem.rss),
          heapUsedMb: mb(mem.heapUsed),
          heapTotalMb: mb(mem.heapTotal),
          externalMb: mb(mem.external),
          arrayBuffersMb: mb(mem.arrayBuffers),
          dedupeMb: mb(now.dedupe_bytes ?? 0),
        },
        'ingest progress',
      );
      last = now;
    },
  });
}

async function dlqTail(opts: { count: string; follow?: boolean; json?: boolean }): Promise<number> {
  const n = Number(opts.count);
  if (!Number.isInteger(n) || n < 1) {
    throw new TokenledgerError(
      'CLI_USAGE',
      `--count must be a whole number ≥ 1, got ${JSON.stringify(opts.count)}`,
    );
  }
  const config = loadConfig(process.env, ['kafka', 'local', 'ingest', 'log']);
  const logger = createLogger({ level: 'warn' });
  const kafka = createKafka({ config, logger });
  const topic = config.ingest.dlqTopic;
  const admin = kafka.admin();
  await admin.connect();
  let offsets: { partition: number; low: string; high: string }[];
  try {
    if (!(await admin.listTopics()).includes(topic)) {
      say(`no dead letters: topic ${topic} does not exist yet`);
      return EXIT.ok;
    }
    offsets = await admin.fetchTopicOffsets(topic);
  } finally {
    await admin.disconnect();
  }
  const pending = new Map<number, number>();
  for (const o of offsets) {
    const high = Number(o.high);
    const start = Math.max(Number(o.low), high - n);
    if (high > start) pending.set(o.partition, high - 1);
  }
  if (pending.size === 0 && opts.follow !== true) {
    say(`no dead letters in ${topic}`);
    return EXIT.ok;
  }
  const consumer = kafka.consumer({ groupId: `tokenledger-dlq-tail-${process.pid}-${Date.now()}` });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let done: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (done = resolve));
  process.once('SIGINT', () => done());
  let printed = 0;
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      const h = (name: string): string => message.headers?.[name]?.toString() ?? '';
      if (opts.json === true) {
        say(
          JSON.stringify({
            dlq_partition: partition,
            dlq_offset: message.offset,
            reason: h(DLQ_HEADERS.reason),
            message: h(DLQ_HEADERS.message),
            source: {
              topic: h(DLQ_HEADERS.topic),
              partition: h(DLQ_HEADERS.partition),
              offset: h(DLQ_HEADERS.offset),
            },
            at: h(DLQ_HEADERS.at),
            key: message.key?.toString() ?? null,
            value_hex: message.value?.toString('hex') ?? null,
          }),
        );
      } else {
        say(
          `${h(DLQ_HEADERS.at)}  ${h(DLQ_HEADERS.reason).padEnd(24)} ${h(DLQ_HEADERS.topic)}[${h(DLQ_HEADERS.partition)}]@${h(DLQ_HEADERS.offset)}  ${h(DLQ_HEADERS.message)}`,
        );
      }
      printed++;
      const lastWanted = pending.get(partition);
      if (lastWanted !== undefined && Number(message.offset) >= lastWanted) pending.delete(partition);
      if (pending.size === 0 && opts.follow !== true) done();
      return Promise.resolve();
    },
  });
  for (const o of offsets) {
    consumer.seek({
      topic,
      partition: o.partition,
      offset: String(Math.max(Number(o.low), Number(o.high) - n)),
    });
  }
  await finished;
  await consumer.disconnect();
  if (opts.json !== true) process.stderr.write(`${printed} dead letter(s) shown from ${topic}\n`);
  return EXIT.ok;
}
