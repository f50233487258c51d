/**
 * What `tokenledger ingest` and `tokenledger detect` share: before they consume, the price catalog (with
 * PRICES_OVERRIDES_FILE), the database and the schema, and their topics created or checked; then the run until
 * stopped, with health endpoints, progress lines and a graceful stop.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import type { Kafka } from 'kafkajs';
import type { Registry } from 'prom-client';
import { createClickHouse, ensureDatabase } from '../lib/clickhouse';
import type { Config } from '../lib/config';
import { createKafka } from '../lib/kafka';
import type { Logger } from '../lib/logger';
import { ensureTopics } from '../lib/topics';
import type { TopicSpec } from '../lib/topics';
import { loadCatalog } from '../consumers/pricing';
import type { Catalog } from '../consumers/pricing';
import { startHealthServer } from '../consumers/shared/health-server';
import { ensureSchema } from '../migrations/runner';
import { EXIT } from './output';

export interface ConsumerDeps {
  readonly catalog: Catalog;
  readonly clickhouse: ClickHouseClient;
  readonly kafka: Kafka;
}

export async function prepareConsumer(o: {
  readonly config: Config;
  readonly logger: Logger;
  /** the ClickHouse client's application name, e.g. tokenledger-ingest */
  readonly application: string;
  readonly topics: readonly TopicSpec[];
}): Promise<ConsumerDeps> {
  const { config, logger } = o;
  const file = config.ingest.pricesOverridesFile;
  const catalog = loadCatalog(file === undefined ? {} : { overridesPath: file });
  await ensureDatabase(config, logger);
  const clickhouse = createClickHouse({ config, logger, application: o.application });
  await ensureSchema(clickhouse, logger);
  const kafka = createKafka({ config, logger });
  const admin = kafka.admin();
  await admin.connect();
  try {
    await ensureTopics(admin, o.topics);
  } finally {
    await admin.disconnect();
  }
  return { catalog, clickhouse, kafka };
}

/** What `serveConsumer` runs: ingest or the detector. */
export interface ConsumerService {
  start(): Promise<void>;
  stop(): Promise<void>;
  healthy(): boolean;
  ready(): boolean;
}

/**
 * Runs a long-running consumer until SIGTERM/SIGINT or a fatal error: /metrics /healthz /readyz on `port`, a
 * progress line every 10 s, then a graceful stop. `create` gets the callback the consumer calls on a fatal error.
 * Returns the exit code (failure after a fatal error, with the reason on stderr).
 */
export async function serveConsumer(o: {
  /** for logs and the error line: ingest, detect */
  readonly name: string;
  readonly create: (onFatal: (err: Error) => void) => ConsumerService;
  readonly registry: Registry;
  readonly port: number;
  readonly logger: Logger;
  readonly clickhouse: ClickHouseClient;
  /** logs one progress line */
  readonly progress: () => Promise<void>;
}): Promise<number> {
  let fatal: Error | undefined;
  let wake: () => void = () => undefined;
  const service = o.create((err) => {
    fatal = err;
    wake();
  });
  const health = await startHealthServer({
    port: o.port,
    registry: o.registry,
    healthy: () => service.healthy(),
    ready: () => service.ready(),
  });
  o.logger.info({ port: health.port }, `${o.name}: /metrics /healthz /readyz listening`);
  const stopped = new Promise<string>((resolve) => {
    wake = () => resolve('fatal');
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  try {
    await service.start();
  } catch (err) {
    // Nothing half-started stays behind (the health server would keep the process alive).
    await service.stop().catch(() => undefined);
    await health.close();
    await o.clickhouse.close();
    throw err;
  }
  const progress = setInterval(() => void o.progress(), 10_000);
  progress.unref();
  const why = await stopped;
  o.logger.info({ why }, `${o.name} stopping`);
  clearInterval(progress);
  await service.stop();
  await health.close();
  await o.clickhouse.close();
  if (fatal !== undefined) {
    process.stderr.write(`tokenledger: ${o.name} stopped: ${fatal.message}\n`);
    return EXIT.failure;
  }
  return EXIT.ok;
}
