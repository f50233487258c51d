/**
 * The ClickHouse client factory. Every component, CLI command and test talks to ClickHouse one way only:
 * `@clickhouse/client` over HTTP to `CLICKHOUSE_URL`, or to the local endpoint when it is unset (DESIGN.md).
 */
import { createClient } from '@clickhouse/client';
import type { ClickHouseClient, ClickHouseSettings } from '@clickhouse/client';
import type { Config } from './config';
import { clickhouseUrl } from './config';
import type { Logger } from './logger';
import { clickhouseLogging } from './logger';

export type { ClickHouseClient };

export interface ClickHouseDeps {
  readonly config: Config;
  readonly logger: Logger;
  /** Database for unqualified names; defaults to the configured one. `null`: the server's default. */
  readonly database?: string | null;
  readonly settings?: ClickHouseSettings;
  readonly application?: string;
}

export function createClickHouse({
  config,
  logger,
  database,
  settings,
  application,
}: ClickHouseDeps): ClickHouseClient {
  const c = config.clickhouse;
  const db = database === undefined ? c.database : database;
  return createClient({
    url: clickhouseUrl(config),
    username: c.user,
    password: c.password,
    ...(db === null ? {} : { database: db }),
    request_timeout: c.requestTimeoutMs,
    max_open_connections: c.maxOpenConnections,
    application: application ?? 'tokenledger',
    log: clickhouseLogging(logger),
    // 64-bit integers (token counts, nano-USD money) arrive as JSON strings, never as lossy JS numbers: newer
    // servers changed this default to unquoted, so it is pinned here (docs/decisions/0003-clickhouse-client.md).
    clickhouse_settings: { output_format_json_quote_64bit_integers: 1, ...settings },
  });
}

/** Creates the configured database if it is missing (before migrations run: they need a database to record in). */
export async function ensureDatabase(config: Config, logger: Logger): Promise<void> {
  const admin = createClickHouse({ config, logger, database: null });
  try {
    await admin.command({
      query: `CREATE DATABASE IF NOT EXISTS ${quoteIdentifier(config.clickhouse.database)}`,
    });
  } finally {
    await admin.close();
  }
}

/**
 * One query's rows as objects (JSONEachRow). User values reach ClickHouse only through `params` ({name:Type} in
 * the query); 64-bit integers arrive as strings (the client factory pins that).
 */
export async function queryRows<T>(
  ch: ClickHouseClient,
  query: string,
  params: Record<string, unknown> = {},
): Promise<T[]> {
  const rs = await ch.query({ query, query_params: params, format: 'JSONEachRow' });
  return rs.json<T>();
}

/** Backquotes an identifier for ClickHouse SQL. */
export function quoteIdentifier(name: string): string {
  return '`' + name.replace(/\\/g, '\\\\').replace(/`/g, '\\`') + '`';
}
