/**
 * ClickHouse for one test file: its own database (random name), created in beforeAll and dropped in afterAll,
 * and a client bound to it.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { createClickHouse } from '../../lib/clickhouse';
import type { Config } from '../../lib/config';
import { testConfig, testLogger, uniqueName } from './env';

export interface TestDatabase {
  readonly name: string;
  readonly config: Config;
  /** A client whose default database is this one. Valid inside tests (after beforeAll). */
  client(): ClickHouseClient;
}

export function useTestDatabase(base: Config = testConfig()): TestDatabase {
  const name = uniqueName('test_db');
  const config: Config = { ...base, clickhouse: { ...base.clickhouse, database: name } };
  const logger = testLogger();
  const admin = createClickHouse({ config, logger, database: null });
  let client: ClickHouseClient | undefined;
  beforeAll(async () => {
    await admin.command({ query: `CREATE DATABASE ${name}` });
    client = createClickHouse({ config, logger });
  });
  afterAll(async () => {
    await client?.close();
    await admin.command({ query: `DROP DATABASE IF EXISTS ${name}` }).catch(() => undefined);
    await admin.close();
  });
  return {
    name,
    config,
    client: () => {
      if (client === undefined) throw new Error('useTestDatabase(): client() called before beforeAll ran');
      return client;
    },
  };
}
