/**
 * The local ClickHouse endpoint process: config → logger → engine → HTTP server; owns SIGTERM.
 * Started and stopped by `tokenledger infra up|down` (control.ts); run directly with
 *   node --require tsx/cjs infra/clickhouse/main.ts
 */
import './threadpool';
import path from 'node:path';
import { loadConfig } from '../../lib/config';
import { createLogger } from '../../lib/logger';
import { openEngine } from './engine';
import { createEndpoint } from './server';

function main(): void {
  // The endpoint reads only what it uses: a bad Kafka setting must not stop ClickHouse from starting.
  const config = loadConfig(process.env, ['clickhouse', 'local', 'log']);
  const logger = createLogger({ level: config.logLevel, name: 'clickhouse-endpoint' });
  const dataDir = path.join(config.local.home, 'clickhouse', 'data');
  const users = new Map([['default', '']]);
  // The credentials the rest of the system is configured with are accepted too.
  users.set(config.clickhouse.user, config.clickhouse.password);
  const engine = openEngine(dataDir);
  const endpoint = createEndpoint({ engine, logger, users });
  const port = config.local.clickhousePort;

  endpoint.server.on('error', (err: NodeJS.ErrnoException) => {
    logger.fatal({ err, port }, err.code === 'EADDRINUSE' ? 'port already in use' : 'server error');
    process.exit(2);
  });
  endpoint.server.listen(port, '127.0.0.1', () => {
    logger.info({ port, dataDir, engine: engine.version }, 'ClickHouse HTTP endpoint ready');
  });

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping: finishing requests in flight');
    endpoint
      .close()
      .then(() => engine.close())
      .then(() => {
        logger.info('stopped');
        logger.flush();
        process.exit(0);
      })
      .catch((err: unknown) => {
        logger.error({ err }, 'unclean stop');
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

try {
  main();
} catch (err) {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
}
