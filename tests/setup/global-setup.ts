/**
 * Brings up (or finds) the infrastructure for the integration tests and tells the test workers where it is
 * through TOKENLEDGER_TEST_* environment variables (workers inherit this process's environment).
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { PROJECT_ROOT } from '../../lib/config';
import { localBroker } from '../../infra/kafka/broker';
import { localClickHouse } from '../../infra/clickhouse/control';
import type { LocalService } from '../../infra/service';
import { chooseProviders, dockerAnswers, requestedMode } from './infra-mode';
import { startContainers } from './testcontainers';

export interface TestInfraState {
  stops: (() => Promise<unknown>)[];
}

declare global {
  var __TOKENLEDGER_TEST_INFRA__: TestInfraState | undefined;
}

export default async function globalSetup(): Promise<void> {
  const env = process.env;
  const mode = requestedMode(env);
  const docker = mode === 'auto' || mode === 'testcontainers' ? await dockerAnswers(env) : false;
  const providers = chooseProviders(mode, env, docker);
  const state: TestInfraState = { stops: [] };
  globalThis.__TOKENLEDGER_TEST_INFRA__ = state;

  // Credentials the tests use; the local endpoint is started to accept exactly these (plus `default`).
  const user = env.CLICKHOUSE_USER ?? 'tokenledger_test';
  const password = env.CLICKHOUSE_PASSWORD ?? randomBytes(9).toString('base64url');

  let brokers = env.KAFKA_BROKERS;
  let clickhouseUrl = env.CLICKHOUSE_URL;
  let chUser = env.CLICKHOUSE_USER ?? 'default';
  let chPassword = env.CLICKHOUSE_PASSWORD ?? '';

  if (providers.kafka === 'testcontainers' || providers.clickhouse === 'testcontainers') {
    const c = await startContainers({
      kafka: providers.kafka === 'testcontainers',
      clickhouse: providers.clickhouse === 'testcontainers',
    });
    state.stops.push(() => c.stop());
    if (c.brokers !== undefined) brokers = c.brokers;
    if (c.clickhouseUrl !== undefined) {
      clickhouseUrl = c.clickhouseUrl;
      chUser = c.user;
      chPassword = c.password;
    }
  }

  const local: LocalService[] = [];
  if (providers.kafka === 'local' || providers.clickhouse === 'local') {
    const home = env.TOKENLEDGER_TEST_HOME ?? path.join(PROJECT_ROOT, '.tokenledger', 'test');
    const kafkaPort = Number(env.TOKENLEDGER_TEST_KAFKA_PORT ?? 19092);
    const chPort = Number(env.TOKENLEDGER_TEST_CLICKHOUSE_PORT ?? 18123);
    const timeout = Number(env.TOKENLEDGER_INFRA_START_TIMEOUT_MS ?? 120_000);
    if (providers.kafka === 'local') {
      const broker = localBroker({
        home,
        port: kafkaPort,
        controllerPort: kafkaPort + 1,
        heapMb: 768,
        javaHome: env.JAVA_HOME,
        startTimeoutMs: timeout,
      });
      // A clean slate: a broker left over from an interrupted run is stopped and its data removed.
      await broker.stop();
      fs.rmSync(path.join(home, 'kafka'), { recursive: true, force: true });
      local.push(broker);
      brokers = `127.0.0.1:${kafkaPort}`;
    }
    if (providers.clickhouse === 'local') {
      const endpointEnv: NodeJS.ProcessEnv = {
        ...env,
        CLICKHOUSE_USER: user,
        CLICKHOUSE_PASSWORD: password,
        LOG_LEVEL: 'info',
      };
      delete endpointEnv.CLICKHOUSE_URL;
      delete endpointEnv.KAFKA_BROKERS;
      const ch = localClickHouse({ home, port: chPort, startTimeoutMs: timeout, env: endpointEnv });
      await ch.stop();
      fs.rmSync(path.join(home, 'clickhouse'), { recursive: true, force: true });
      local.push(ch);
      clickhouseUrl = `http://127.0.0.1:${chPort}`;
      chUser = user;
      chPassword = password;
    }
    const t0 = Date.now();
    state.stops.push(() => Promise.all(local.map((s) => s.stop())));
    try {
      await Promise.all(local.map((s) => s.start()));
    } catch (err) {
      // jest skips globalTeardown when globalSetup throws: stop what did start before failing.
      await Promise.all(local.map((s) => s.stop().catch(() => undefined)));
      throw err;
    }
    process.stdout.write(
      `\n[tokenledger tests] local ${local.map((s) => s.name).join(' + ')} up in ${((Date.now() - t0) / 1000).toFixed(1)} s (home ${home})\n`,
    );
  }

  if (brokers === undefined || clickhouseUrl === undefined)
    throw new Error('test infrastructure: no Kafka or ClickHouse');
  env.TOKENLEDGER_TEST_KAFKA_BROKERS = brokers;
  env.TOKENLEDGER_TEST_CLICKHOUSE_URL = clickhouseUrl;
  env.TOKENLEDGER_TEST_CLICKHOUSE_USER = chUser;
  env.TOKENLEDGER_TEST_CLICKHOUSE_PASSWORD = chPassword;
  env.TOKENLEDGER_TEST_PROVIDERS = JSON.stringify(providers);
  process.stdout.write(
    `[tokenledger tests] kafka=${providers.kafka} (${brokers}) clickhouse=${providers.clickhouse} (${clickhouseUrl})\n`,
  );
}
