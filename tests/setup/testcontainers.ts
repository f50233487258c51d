/**
 * The testcontainers path, for machines with a Docker engine: Apache Kafka (KRaft, single node) and a ClickHouse
 * server. Kept thin on purpose: CI here has no Docker engine and runs the local path, so this code is not
 * exercised by CI (see docs/decisions/0002-test-infrastructure.md).
 */
export interface Containers {
  readonly brokers: string | undefined;
  readonly clickhouseUrl: string | undefined;
  readonly user: string;
  readonly password: string;
  stop(): Promise<void>;
}

export async function startContainers(want: { kafka: boolean; clickhouse: boolean }): Promise<Containers> {
  const { GenericContainer, Wait } = await import('testcontainers');
  const started: { stop(): Promise<unknown> }[] = [];
  let brokers: string | undefined;
  let clickhouseUrl: string | undefined;
  const password = 'tokenledger';
  if (want.kafka) {
    // apache/kafka listens on 9092 and advertises localhost:9092; bind the same host port so the advertised
    // address works from the host.
    const kafka = await new GenericContainer('apache/kafka:4.1.0')
      .withExposedPorts({ container: 9092, host: 9092 })
      .withEnvironment({
        KAFKA_AUTO_CREATE_TOPICS_ENABLE: 'false',
        KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS: '0',
      })
      .withWaitStrategy(Wait.forLogMessage(/Kafka Server started/))
      .start();
    started.push(kafka);
    brokers = `${kafka.getHost()}:9092`;
  }
  if (want.clickhouse) {
    const ch = await new GenericContainer('clickhouse/clickhouse-server:24.8')
      .withExposedPorts(8123)
      .withEnvironment({
        CLICKHOUSE_USER: 'tokenledger',
        CLICKHOUSE_PASSWORD: password,
        CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT: '1',
      })
      .withWaitStrategy(Wait.forHttp('/ping', 8123).forStatusCode(200))
      .start();
    started.push(ch);
    clickhouseUrl = `http://${ch.getHost()}:${ch.getMappedPort(8123)}`;
  }
  return {
    brokers,
    clickhouseUrl,
    user: 'tokenledger',
    password,
    stop: async () => {
      await Promise.all(started.map((c) => c.stop()));
    },
  };
}
