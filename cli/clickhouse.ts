/** ClickHouse failures as the CLI tells them: where it tried, and what to do. */
import { clickhouseUrl } from '../lib/config';
import type { Config } from '../lib/config';
import { classifyClickHouseError, TokenledgerError } from '../lib/errors';

/** Turns "nothing listens there" into a message that says where and what to do; other errors pass through. */
export async function reachable<T>(config: Config, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const failure = classifyClickHouseError(err);
    if (failure.kind === 'connection' || failure.kind === 'timeout') {
      throw new TokenledgerError(
        'CLICKHOUSE_UNAVAILABLE',
        `cannot reach ClickHouse at ${clickhouseUrl(config)} (${failure.code}): start the local one with \`tokenledger infra up\`, or set CLICKHOUSE_URL`,
        { cause: err, retriable: true },
      );
    }
    throw err;
  }
}
