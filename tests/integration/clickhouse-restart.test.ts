/**
 * The ClickHouse endpoint process stopped: the client gets a connection error (classified retriable);
 * started again on the same data directory: the data is still there. Uses a private endpoint (own home, own
 * port), so stopping it does not disturb other tests.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ClickHouseLogLevel, createClient } from '@clickhouse/client';
import { localClickHouse } from '../../infra/clickhouse/control';
import { classifyClickHouseError } from '../../lib/errors';
import { freePort } from '../helpers/env';

test('stop → connection error; restart → data still there', async () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenledger-ch-restart-'));
  const port = await freePort();
  const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'warn' };
  delete env.CLICKHOUSE_URL;
  delete env.CLICKHOUSE_USER;
  delete env.CLICKHOUSE_PASSWORD;
  const endpoint = localClickHouse({ home, port, startTimeoutMs: 60_000, env });
  const client = createClient({
    url: `http://127.0.0.1:${port}`,
    request_timeout: 5000,
    log: { level: ClickHouseLogLevel.OFF },
  });
  try {
    expect(await endpoint.start()).toBe('started');
    await client.command({ query: 'CREATE DATABASE IF NOT EXISTS keep' });
    await client.command({ query: 'CREATE TABLE keep.t (x UInt32) ENGINE = MergeTree ORDER BY x' });
    await client.insert({ table: 'keep.t', values: [{ x: 1 }, { x: 2 }, { x: 3 }], format: 'JSONEachRow' });

    expect(await endpoint.stop()).toBe('stopped');
    expect((await endpoint.status()).running).toBe(false);
    let failure: unknown;
    try {
      await client.query({ query: 'SELECT 1' });
    } catch (err) {
      failure = err;
    }
    expect(failure).toBeDefined();
    expect(classifyClickHouseError(failure)).toMatchObject({
      retriable: true,
      kind: 'connection',
      code: 'ECONNREFUSED',
    });

    expect(await endpoint.start()).toBe('started');
    const rs = await client.query({
      query: 'SELECT sum(x) AS s, count() AS c FROM keep.t',
      format: 'JSONEachRow',
    });
    expect((await rs.json<{ s: unknown; c: unknown }>()).map((r) => [Number(r.s), Number(r.c)])).toEqual([
      [6, 3],
    ]);
  } finally {
    await client.close();
    await endpoint.stop();
    fs.rmSync(home, { recursive: true, force: true });
  }
});
