/**
 * The local infrastructure as one unit: the Kafka broker and the ClickHouse endpoint, started together (in
 * parallel) and stopped together. A service whose cluster is named by KAFKA_BROKERS / CLICKHOUSE_URL is not
 * started locally.
 */
import type { Config } from '../lib/config';
import { clickhouseUrl, kafkaBrokers } from '../lib/config';
import { localClickHouse } from './clickhouse/control';
import { localBroker } from './kafka/broker';
import type { LocalService, ServiceStatus } from './service';
import { withHomeLock } from './process';

export interface InfraReport {
  readonly service: string;
  readonly address: string;
  readonly outcome: 'started' | 'already-running' | 'stopped' | 'not-running' | 'external';
  readonly ms: number;
}

export interface LocalInfra {
  readonly services: readonly LocalService[];
  up(): Promise<InfraReport[]>;
  down(): Promise<InfraReport[]>;
  status(): Promise<ServiceStatus[]>;
  /** Services configured to be external (KAFKA_BROKERS / CLICKHOUSE_URL set). */
  readonly external: readonly { service: string; address: string }[];
}

export function localInfra(config: Config, env: NodeJS.ProcessEnv = process.env): LocalInfra {
  const l = config.local;
  const broker = localBroker({
    home: l.home,
    port: l.kafkaPort,
    controllerPort: l.kafkaControllerPort,
    heapMb: l.kafkaHeapMb,
    javaHome: l.javaHome,
    startTimeoutMs: l.startTimeoutMs,
  });
  const clickhouse = localClickHouse({
    home: l.home,
    port: l.clickhousePort,
    startTimeoutMs: l.startTimeoutMs,
    env,
  });
  const all = [broker, clickhouse];
  const wanted = [
    ...(config.kafka.brokers === undefined ? [broker] : []),
    ...(config.clickhouse.url === undefined ? [clickhouse] : []),
  ];
  const external = [
    ...(config.kafka.brokers === undefined
      ? []
      : [{ service: 'kafka', address: kafkaBrokers(config).join(',') }]),
    ...(config.clickhouse.url === undefined
      ? []
      : [{ service: 'clickhouse', address: clickhouseUrl(config) }]),
  ];
  const timed = async (s: LocalService, op: 'start' | 'stop'): Promise<InfraReport> => {
    const t0 = Date.now();
    const outcome = await s[op]();
    const st = await s.status();
    return { service: s.name, address: st.address, outcome, ms: Date.now() - t0 };
  };
  async function up(): Promise<InfraReport[]> {
    // Both at once: the JVM and the engine start in parallel; a failure of either fails `up`.
    const results = await Promise.allSettled(wanted.map((s) => timed(s, 'start')));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) {
      // Leave nothing half-up: stop what this call started before reporting the failure.
      const startedHere = wanted.filter((_, i) => {
        const r = results[i];
        return r?.status === 'fulfilled' && r.value.outcome === 'started';
      });
      await Promise.all(startedHere.map((s) => s.stop()));
      throw failed.reason;
    }
    return [
      ...results.map((r) => (r as PromiseFulfilledResult<InfraReport>).value),
      ...external.map((e) => ({ ...e, outcome: 'external' as const, ms: 0 })),
    ];
  }
  return {
    services: all,
    external,
    // One infra command per home at a time: two racing `up`s would start processes one pid file cannot track.
    up: () => withHomeLock(l.home, up),
    // Stops whatever runs in this home, even a service now configured as external.
    down: () => withHomeLock(l.home, () => Promise.all(all.map((s) => timed(s, 'stop')))),
    async status() {
      return Promise.all(all.map((s) => s.status()));
    },
  };
}
