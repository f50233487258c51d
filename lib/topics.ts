/**
 * The project's topics, created by the project itself with explicit partition count, retention,
 * cleanup.policy and min.insync.replicas (never the broker's auto-creation), and checked on start: a topic
 * that exists with other settings is reported, not silently used.
 */
import { ConfigResourceTypes } from 'kafkajs';
import type { Admin } from 'kafkajs';
import { TokenledgerError } from './errors';

export interface TopicSpec {
  readonly name: string;
  readonly partitions: number;
  readonly retentionMs: number;
  readonly cleanupPolicy: 'delete' | 'compact';
}

export const TOPICS = {
  usage: {
    name: 'tokenledger.usage.v1',
    partitions: 12,
    retentionMs: 7 * 24 * 3600_000,
    cleanupPolicy: 'delete',
  },
  dlq: {
    name: 'tokenledger.usage.dlq.v1',
    partitions: 3,
    retentionMs: 30 * 24 * 3600_000,
    cleanupPolicy: 'delete',
  },
  alerts: {
    name: 'tokenledger.alerts.v1',
    partitions: 3,
    retentionMs: 30 * 24 * 3600_000,
    cleanupPolicy: 'delete',
  },
} as const satisfies Record<string, TopicSpec>;

export interface EnsureReport {
  readonly topic: string;
  readonly outcome: 'created' | 'exists';
  readonly partitions: number;
}

/**
 * Creates missing topics; checks existing ones. Replication factor and min.insync.replicas follow the cluster
 * size (3 and 2 on three brokers or more, 1 and 1 on a single local broker).
 */
export async function ensureTopics(admin: Admin, specs: readonly TopicSpec[]): Promise<EnsureReport[]> {
  const cluster = await admin.describeCluster();
  const brokers = cluster.brokers.length;
  const replicationFactor = Math.min(3, brokers);
  const minIsr = Math.max(1, Math.min(2, replicationFactor - 1));
  const existing = new Set(await admin.listTopics());
  const missing = specs.filter((s) => !existing.has(s.name));
  if (missing.length > 0) {
    await admin.createTopics({
      waitForLeaders: true,
      topics: missing.map((s) => ({
        topic: s.name,
        numPartitions: s.partitions,
        replicationFactor,
        configEntries: [
          { name: 'retention.ms', value: String(s.retentionMs) },
          { name: 'cleanup.policy', value: s.cleanupPolicy },
          { name: 'min.insync.replicas', value: String(minIsr) },
        ],
      })),
    });
  }
  const present = specs.filter((s) => existing.has(s.name));
  const problems: string[] = [];
  const reports: EnsureReport[] = missing.map((s) => ({
    topic: s.name,
    outcome: 'created',
    partitions: s.partitions,
  }));
  if (present.length > 0) {
    const meta = await admin.fetchTopicMetadata({ topics: present.map((s) => s.name) });
    for (const s of present) {
      const t = meta.topics.find((m) => m.name === s.name);
      const partitions = t?.partitions.length ?? 0;
      if (partitions < 1) problems.push(`${s.name}: no partitions`);
      reports.push({ topic: s.name, outcome: 'exists', partitions });
    }
    const configs = await admin.describeConfigs({
      includeSynonyms: false,
      resources: present.map((s) => ({
        type: ConfigResourceTypes.TOPIC,
        name: s.name,
        configNames: ['cleanup.policy'],
      })),
    });
    for (const r of configs.resources) {
      const spec = present.find((s) => s.name === r.resourceName);
      const policy = r.configEntries.find((c) => c.configName === 'cleanup.policy')?.configValue;
      if (spec !== undefined && policy !== spec.cleanupPolicy) {
        problems.push(`${spec.name}: cleanup.policy is ${String(policy)}, expected ${spec.cleanupPolicy}`);
      }
    }
  }
  if (problems.length > 0) {
    throw new TokenledgerError(
      'TOPIC_MISCONFIGURED',
      `topics exist with unexpected settings:\n  - ${problems.join('\n  - ')}`,
    );
  }
  return reports;
}
