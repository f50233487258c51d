/** The Kafka client factory: every component builds kafkajs clients here, from config. */
import fs from 'node:fs';
import { Kafka } from 'kafkajs';
import type { KafkaConfig as KafkaJsConfig, SASLOptions } from 'kafkajs';
import type { Config } from './config';
import { kafkaBrokers } from './config';
import type { Logger } from './logger';
import { kafkaLogCreator, kafkaLogLevel } from './logger';

export interface KafkaDeps {
  readonly config: Config;
  readonly logger: Logger;
  /** Overrides for tests and tools, e.g. a short retry policy. */
  readonly overrides?: Partial<KafkaJsConfig>;
}

export function kafkaClientConfig({ config, logger, overrides }: KafkaDeps): KafkaJsConfig {
  const k = config.kafka;
  const sasl: SASLOptions | undefined = k.sasl === undefined ? undefined : { ...k.sasl };
  return {
    clientId: k.clientId,
    brokers: [...kafkaBrokers(config)],
    connectionTimeout: k.connectionTimeoutMs,
    requestTimeout: k.requestTimeoutMs,
    ...(k.ssl === false
      ? {}
      : {
          ssl: {
            rejectUnauthorized: k.ssl.rejectUnauthorized,
            ...(k.ssl.caFile === undefined ? {} : { ca: [fs.readFileSync(k.ssl.caFile, 'utf8')] }),
            ...(k.ssl.certFile === undefined ? {} : { cert: fs.readFileSync(k.ssl.certFile, 'utf8') }),
            ...(k.ssl.keyFile === undefined ? {} : { key: fs.readFileSync(k.ssl.keyFile, 'utf8') }),
          },
        }),
    ...(sasl === undefined ? {} : { sasl }),
    logLevel: kafkaLogLevel(logger),
    logCreator: kafkaLogCreator(logger),
    ...overrides,
  };
}

export function createKafka(deps: KafkaDeps): Kafka {
  return new Kafka(kafkaClientConfig(deps));
}
