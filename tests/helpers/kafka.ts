/**
 * Kafka for one test file: its own topics and consumer groups (random names), deleted and disconnected in
 * afterAll. Every wait is bounded and fails with a message naming what did not arrive and from where.
 */
import type { Consumer, Kafka, KafkaMessage } from 'kafkajs';
import { createKafka } from '../../lib/kafka';
import { kafkaBrokers } from '../../lib/config';
import type { Config } from '../../lib/config';
import { TokenledgerError } from '../../lib/errors';
import { testConfig, testLogger, uniqueName } from './env';

export interface TestKafka {
  readonly kafka: Kafka;
  readonly config: Config;
  /** Creates a topic with a random name; deleted after the file's tests. */
  topic(partitions?: number): Promise<string>;
  groupId(): string;
}

export function useTestKafka(config: Config = testConfig()): TestKafka {
  const kafka = createKafka({
    config,
    logger: testLogger(),
    overrides: { retry: { retries: 3, initialRetryTime: 200 } },
  });
  const admin = kafka.admin();
  const topics: string[] = [];
  let connected = false;
  afterAll(async () => {
    if (!connected) return;
    if (topics.length > 0) await admin.deleteTopics({ topics, timeout: 10_000 }).catch(() => undefined);
    await admin.disconnect();
  });
  return {
    kafka,
    config,
    async topic(partitions = 1) {
      if (!connected) {
        await admin.connect();
        connected = true;
      }
      const name = uniqueName('test.topic');
      await admin.createTopics({
        waitForLeaders: true,
        topics: [{ topic: name, numPartitions: partitions, replicationFactor: -1 }],
      });
      topics.push(name);
      return name;
    },
    groupId: () => uniqueName('test-group'),
  };
}

export interface Consumed {
  readonly partition: number;
  readonly message: KafkaMessage;
}

/**
 * Consumes `count` messages from `topic` with a consumer group, then disconnects. Rejects after `timeoutMs` with
 * a message that names the topic, the brokers and how many messages did arrive, instead of hanging when the
 * broker is gone.
 */
export async function consumeN(options: {
  kafka: Kafka;
  config: Config;
  topic: string;
  groupId: string;
  count: number;
  timeoutMs: number;
  /** Called after each message is received (e.g. to stop the broker mid-consume). */
  onMessage?: (received: number) => void;
}): Promise<Consumed[]> {
  const { kafka, topic, groupId, count, timeoutMs } = options;
  const consumer: Consumer = kafka.consumer({
    groupId,
    sessionTimeout: 10_000,
    heartbeatInterval: 1000,
  });
  const received: Consumed[] = [];
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  try {
    const done = new Promise<void>((resolve, reject) => {
      timer = setTimeout(() => {
        reject(
          new TokenledgerError(
            'TIMEOUT',
            `timed out after ${(timeoutMs / 1000).toFixed(1)} s waiting for ${count} messages from topic ${topic} on ${kafkaBrokers(options.config).join(',')} (got ${received.length}); is the broker up?`,
          ),
        );
      }, timeoutMs);
      consumer.on(consumer.events.CRASH, (e) => {
        if (!e.payload.restart) reject(e.payload.error);
      });
      const run = async (): Promise<void> => {
        await consumer.connect();
        await consumer.subscribe({ topic, fromBeginning: true });
        await consumer.run({
          eachMessage: async ({ partition, message }) => {
            received.push({ partition, message });
            options.onMessage?.(received.length);
            if (received.length >= count) resolve();
            return Promise.resolve();
          },
        });
      };
      running = run().catch((err: unknown) => {
        reject(err instanceof Error ? err : new Error(String(err)));
      });
    });
    await done;
    return received;
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    // Disconnecting from a dead broker can itself wait, and a connect still retrying cannot be cancelled: wait
    // (bounded) for both, so the failure above is what the test reports and nothing keeps running after it.
    let bound: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all([consumer.disconnect().catch(() => undefined), running]),
      new Promise((r) => (bound = setTimeout(r, 30_000))),
    ]);
    clearTimeout(bound);
  }
}

/**
 * Reads every message of `topic` up to the end offsets it has when called (duplicates included), with a
 * consumer group. Rejects after `timeoutMs` naming how far it got.
 */
export async function consumeAll(options: {
  kafka: Kafka;
  config: Config;
  topic: string;
  groupId: string;
  timeoutMs: number;
}): Promise<Consumed[]> {
  const admin = options.kafka.admin();
  await admin.connect();
  let total = 0;
  try {
    const ends = await admin.fetchTopicOffsets(options.topic);
    total = ends.reduce((a, p) => a + Number(p.high) - Number(p.low), 0);
  } finally {
    await admin.disconnect();
  }
  if (total === 0) return [];
  return consumeN({ ...options, count: total });
}
