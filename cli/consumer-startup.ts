/**
 * What `tokenledger ingest` and `tokenledger detect` do before they consume: the price catalog (with
 * PRICES_OVERRIDES_FILE), the database and the schema, and their topics created or checked.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import type { Kafka } from 'kafkajs';
import { createClickHouse, ensureDatabase } from '../lib/clickhouse';
import type { Config } from '../lib/config';
import { createKafka } from '../lib/kafka';
import type { Logger } from '../lib/logger';
import { ensureTopics } from '../lib/topics';
import type { TopicSpec } from '../lib/topics';
import { loadCatalog } from '../consumers/pricing';
import type { Catalog } from '../consumers/pricing';
import { ensureSchema } from '../migrations/runner';

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
