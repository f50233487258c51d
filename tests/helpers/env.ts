/** Where the integration infrastructure is (set by tests/setup/global-setup.ts), as a validated Config. */
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../../lib/config';
import type { Config } from '../../lib/config';
import { createLogger } from '../../lib/logger';
import type { Logger } from '../../lib/logger';

function required(name: string): string {
  const v = process.env[name];
  if (v === undefined) {
    throw new Error(
      `${name} is not set: integration tests must run through jest's integration project (npm test)`,
    );
  }
  return v;
}

export function testConfig(overrides: Record<string, string> = {}): Config {
  return loadConfig({
    KAFKA_BROKERS: required('TOKENLEDGER_TEST_KAFKA_BROKERS'),
    CLICKHOUSE_URL: required('TOKENLEDGER_TEST_CLICKHOUSE_URL'),
    CLICKHOUSE_USER: required('TOKENLEDGER_TEST_CLICKHOUSE_USER'),
    CLICKHOUSE_PASSWORD: required('TOKENLEDGER_TEST_CLICKHOUSE_PASSWORD'),
    KAFKA_CONNECTION_TIMEOUT_MS: '3000',
    KAFKA_REQUEST_TIMEOUT_MS: '10000',
    LOG_LEVEL: 'error',
    ...overrides,
  });
}

export function testLogger(): Logger {
  return createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
}

/** A name no other test (or earlier run) uses: prefix + 10 random hex chars (kafkajs `secureRandom()` topics). */
export function uniqueName(prefix: string): string {
  return `${prefix}_${randomBytes(5).toString('hex')}`;
}

/** A port nothing listens on right now, for private brokers and endpoints. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() =>
        typeof addr === 'object' && addr !== null ? resolve(addr.port) : reject(new Error('no port')),
      );
    });
  });
}

/** Two adjacent free ports (a broker and its controller). */
export async function freePortPair(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const p = await freePort();
    if (p < 65535 && (await isFree(p + 1))) return p;
  }
  throw new Error('no two adjacent free ports found');
}

async function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}
