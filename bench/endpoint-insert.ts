/**
 * The local ClickHouse endpoint's overhead: rows/s inserted through @clickhouse/client (JSONEachRow batches of
 * 10k, 50k and 100k rows) into the endpoint process, side by side in the same run with the same rows inserted
 * directly on the engine in this process (chdb Session, the same raw-bytes path the endpoint uses). Both sides
 * serialize the same JS rows to JSONEachRow, so the ratio is what HTTP + the client + the endpoint cost.
 * Rounds alternate between the two sides so machine noise hits both.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { createClient } from '@clickhouse/client';
import { Session } from 'chdb';
import { localClickHouse } from '../infra/clickhouse/control';
import { PROJECT_ROOT } from '../lib/config';
import { freePort } from '../tests/helpers/env';

const TABLE_DDL = `CREATE TABLE IF NOT EXISTS bench.usage (
  event_id UUID, occurred_at DateTime64(3, 'UTC'), team_id LowCardinality(String), user_id String,
  model LowCardinality(String), input_tokens UInt64, output_tokens UInt64, cost_nanousd Int64
) ENGINE = MergeTree ORDER BY (team_id, occurred_at)`;

interface Row {
  event_id: string;
  occurred_at: string;
  team_id: string;
  user_id: string;
  model: string;
  input_tokens: number;
  output_tokens: number;
  cost_nanousd: number;
}

function makeRows(n: number): Row[] {
  const models = ['gpt-4.1', 'claude-sonnet-4-5', 'gemini-2.5-pro', 'llama-3.3-70b'];
  const t0 = Date.UTC(2026, 10, 1);
  return Array.from({ length: n }, (_, i) => ({
    event_id: randomUUID(),
    occurred_at: new Date(t0 + i * 37).toISOString().replace('T', ' ').replace('Z', ''),
    team_id: `team-${i % 40}`,
    user_id: `user-${i % 900}`,
    model: models[i % models.length] ?? 'x',
    input_tokens: 1000 + (i % 5000),
    output_tokens: 100 + (i % 700),
    cost_nanousd: 1_234_567 + i,
  }));
}

function arg(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(`--${name}`);
  const v = i >= 0 ? Number(args[i + 1]) : fallback;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number`);
  return v;
}

export async function endpointInsertBench(args: string[]): Promise<void> {
  const rowsPerSize = arg(args, 'rows', 400_000);
  const rounds = arg(args, 'rounds', 3);
  const sizes = [10_000, 50_000, 100_000];
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenledger-bench-endpoint-'));
  const port = await freePort();
  const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'warn' };
  delete env.CLICKHOUSE_URL;
  const endpoint = localClickHouse({ home, port, startTimeoutMs: 60_000, env });
  const inProcessDir = path.join(home, 'in-process');
  let session: Session | undefined;
  const client = createClient({ url: `http://127.0.0.1:${port}`, request_timeout: 60_000 });
  const results: {
    batch: number;
    side: 'endpoint' | 'in-process';
    round: number;
    rows: number;
    seconds: number;
  }[] = [];
  try {
    process.stderr.write(`bench endpoint: starting a private endpoint on :${port} ...\n`);
    await endpoint.start();
    await client.command({ query: 'CREATE DATABASE IF NOT EXISTS bench' });
    await client.command({ query: TABLE_DDL });
    fs.mkdirSync(inProcessDir, { recursive: true });
    session = new Session(inProcessDir);
    await session.queryAsync(`CREATE DATABASE IF NOT EXISTS bench; ${TABLE_DDL}`);
    const s = session;

    for (const batch of sizes) {
      const batches = Math.max(1, Math.round(rowsPerSize / batch));
      const data = Array.from({ length: batches }, () => makeRows(batch));
      for (let round = 1; round <= rounds; round++) {
        // in-process: serialize the same rows, hand the bytes to the engine (async_insert off, as the endpoint does)
        let t = process.hrtime.bigint();
        for (const rows of data) {
          const body = Buffer.from(rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
          await s.queryAsync('SET async_insert = 0');
          await s.insert({ table: 'bench.usage', values: body, format: 'JSONEachRow' });
        }
        results.push({
          batch,
          side: 'in-process',
          round,
          rows: batch * batches,
          seconds: Number(process.hrtime.bigint() - t) / 1e9,
        });
        // endpoint: the same rows through @clickhouse/client over HTTP
        t = process.hrtime.bigint();
        for (const rows of data) {
          await client.insert({
            table: 'bench.usage',
            values: rows,
            format: 'JSONEachRow',
            clickhouse_settings: { async_insert: 0 },
          });
        }
        results.push({
          batch,
          side: 'endpoint',
          round,
          rows: batch * batches,
          seconds: Number(process.hrtime.bigint() - t) / 1e9,
        });
        process.stderr.write(`  batch ${batch}: round ${round}/${rounds} done\n`);
      }
    }
    // Sanity: both sides hold every row they were given.
    const ep = await (
      await client.query({ query: 'SELECT count() AS c FROM bench.usage', format: 'JSONEachRow' })
    ).json<{ c: string }>();
    const ip = (await s.queryAsync('SELECT count() FROM bench.usage', { format: 'TabSeparated' }))
      .text()
      .trim();
    const expected = results.filter((r) => r.side === 'endpoint').reduce((a, r) => a + r.rows, 0);
    if (Number(ep[0]?.c) !== expected || Number(ip) !== expected) {
      throw new Error(`row counts differ: endpoint ${ep[0]?.c}, in-process ${ip}, expected ${expected}`);
    }
  } finally {
    await client.close();
    session?.close();
    await endpoint.stop();
    fs.rmSync(home, { recursive: true, force: true });
  }

  const median = (xs: number[]): number => {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.floor(s.length / 2)] ?? NaN;
  };
  const lines = [
    `Command: \`npm run bench:endpoint -- --rows ${rowsPerSize} --rounds ${rounds}\` (${os.cpus().length} cores, Node ${process.version}, ${new Date().toISOString().slice(0, 10)})`,
    '',
    '| batch rows | in-process engine rows/s | endpoint via @clickhouse/client rows/s | endpoint / in-process |',
    '|---:|---:|---:|---:|',
  ];
  const summary: Record<string, unknown>[] = [];
  for (const batch of sizes) {
    const rate = (side: string): number =>
      median(results.filter((r) => r.batch === batch && r.side === side).map((r) => r.rows / r.seconds));
    const ip = rate('in-process');
    const ep = rate('endpoint');
    summary.push({
      batch,
      inProcessRowsPerSec: Math.round(ip),
      endpointRowsPerSec: Math.round(ep),
      ratio: ep / ip,
    });
    lines.push(
      `| ${batch.toLocaleString('en-US')} | ${Math.round(ip).toLocaleString('en-US')} | ${Math.round(ep).toLocaleString('en-US')} | ${(ep / ip).toFixed(2)} |`,
    );
  }
  lines.push(
    '',
    `Median of ${rounds} alternating rounds; ${rowsPerSize.toLocaleString('en-US')} rows per batch size per round.`,
  );
  const outDir = path.join(PROJECT_ROOT, '.tokenledger', 'bench');
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, 'endpoint.json'), JSON.stringify({ summary, results }, null, 2));
  process.stdout.write(`${lines.join('\n')}\n`);
}
