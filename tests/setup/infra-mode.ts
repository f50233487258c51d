/**
 * Which infrastructure the integration tests run against, in DESIGN.md's order:
 *   1. the cluster named by KAFKA_BROKERS / CLICKHOUSE_URL (each independently),
 *   2. testcontainers, when a Docker engine answers,
 *   3. the local broker + local ClickHouse endpoint (what CI runs on machines without Docker).
 * TOKENLEDGER_TEST_INFRA forces one: env | testcontainers | local | auto (default). Anything else fails loudly.
 */
import fs from 'node:fs';
import http from 'node:http';

export const TEST_MODES = ['auto', 'env', 'testcontainers', 'local'] as const;
export type TestMode = (typeof TEST_MODES)[number];
export type Provider = 'env' | 'testcontainers' | 'local';

export function requestedMode(env: NodeJS.ProcessEnv): TestMode {
  const raw = env.TOKENLEDGER_TEST_INFRA ?? 'auto';
  if (!(TEST_MODES as readonly string[]).includes(raw)) {
    throw new Error(`TOKENLEDGER_TEST_INFRA=${JSON.stringify(raw)} is not one of ${TEST_MODES.join(', ')}`);
  }
  return raw as TestMode;
}

/** Picks a provider for Kafka and for ClickHouse. */
export function chooseProviders(
  mode: TestMode,
  env: NodeJS.ProcessEnv,
  dockerAnswers: boolean,
): { kafka: Provider; clickhouse: Provider } {
  const fallback: Provider = dockerAnswers ? 'testcontainers' : 'local';
  switch (mode) {
    case 'env':
      if (env.KAFKA_BROKERS === undefined || env.CLICKHOUSE_URL === undefined) {
        throw new Error('TOKENLEDGER_TEST_INFRA=env needs both KAFKA_BROKERS and CLICKHOUSE_URL');
      }
      return { kafka: 'env', clickhouse: 'env' };
    case 'testcontainers':
      if (!dockerAnswers)
        throw new Error('TOKENLEDGER_TEST_INFRA=testcontainers but no Docker engine answers');
      return { kafka: 'testcontainers', clickhouse: 'testcontainers' };
    case 'local':
      return { kafka: 'local', clickhouse: 'local' };
    case 'auto':
      return {
        kafka: env.KAFKA_BROKERS === undefined ? fallback : 'env',
        clickhouse: env.CLICKHOUSE_URL === undefined ? fallback : 'env',
      };
  }
}

/** True when a Docker engine answers /_ping on DOCKER_HOST (unix socket) or /var/run/docker.sock. */
export async function dockerAnswers(env: NodeJS.ProcessEnv): Promise<boolean> {
  const host = env.DOCKER_HOST;
  let socketPath = '/var/run/docker.sock';
  if (host !== undefined) {
    if (!host.startsWith('unix://')) return true; // a TCP engine: let testcontainers find out
    socketPath = host.slice('unix://'.length);
  }
  if (!fs.existsSync(socketPath)) return false;
  return new Promise((resolve) => {
    const req = http.get({ socketPath, path: '/_ping', timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
  });
}
