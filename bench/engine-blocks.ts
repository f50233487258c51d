/**
 * `npm run bench -- engine-blocks`: what one insert into the raw table costs the engine, by rows per insert, with
 * and without the rollup views — the lever behind ingest's drain rate (BENCHMARKS.md). In-process (chdb Session,
 * no HTTP, no parsing: INSERT … SELECT from a staging table), on the real migration 0001, with the drain
 * benchmark's event shape (17 teams, 101 users, 5 models, 3,000 events/s of event time, rows taken per Kafka
 * partition in offset order as ingest takes them). Variants: the real schema (raw → minute → hour → day),
 * the minute view only, the raw table alone, and the schema without its latency-quantile states, run in turn for each size in every round (best of the rounds is
 * reported). Deduplication is off (`insert_deduplicate = 0`): ingest's inserts pay that too, so this is a floor.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Session } from 'chdb';
import { PROJECT_ROOT } from '../lib/config';
import { MIGRATIONS_DIR, splitStatements } from '../migrations/runner';

const VARIANTS: Record<string, (sql: string) => string | null> = {
  rollups: (sql) => sql,
  minute_only: (sql) => (/MATERIALIZED VIEW IF NOT EXISTS usage_(hour|day)_mv/.test(sql) ? null : sql),
  raw_only: (sql) => (/MATERIALIZED VIEW/.test(sql) ? null : sql),
  // The schema without the two latency-quantile states (t-digest) in the rollups and views: what they cost.
  no_quantiles: (sql) =>
    sql
      .replace(
        /,\s*\n\s*duration_ms_quantiles\s+AggregateFunction[^\n]*\n\s*ttft_ms_quantiles\s+AggregateFunction\([^\n]*\)\n/g,
        '\n',
      )
      .replace(
        /,\s*\n\s*quantilesTDigest[^\n]*duration_ms_quantiles,\s*\n\s*quantilesTDigest[^\n]*ttft_ms_quantiles\n/g,
        '\n',
      ),
};

function arg(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(`--${name}`);
  const v = i >= 0 ? Number(args[i + 1]) : fallback;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number`);
  return v;
}

export function engineBlocksBench(args: string[]): Promise<void> {
  return Promise.resolve().then(() => run(args));
}

function run(args: string[]): void {
  const total = arg(args, 'rows', 600_000);
  const rounds = arg(args, 'rounds', 2);
  const sizes = [15_000, 30_000, 60_000, 120_000];
  const log = (s: string): void => void process.stderr.write(`bench engine-blocks: ${s}\n`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenledger-bench-blocks-'));
  const session = new Session(dir);
  const q = (sql: string): string => session.query(sql, 'TSV');
  try {
    const migration = fs.readFileSync(path.join(MIGRATIONS_DIR, '0001_initial.sql'), 'utf8');
    for (const [name, keep] of Object.entries(VARIANTS)) {
      q(`CREATE DATABASE ${name}`);
      for (const st of splitStatements(migration)) {
        const sql = keep(st.sql);
        if (sql === null) continue;
        q(
          sql
            .replace(
              /CREATE (TABLE|MATERIALIZED VIEW|VIEW) IF NOT EXISTS /,
              `CREATE $1 IF NOT EXISTS ${name}.`,
            )
            .replace(/ TO usage_/, ` TO ${name}.usage_`)
            .replace(/FROM usage_/g, `FROM ${name}.usage_`),
        );
      }
    }
    log(`staging ${total} events ...`);
    q(
      `CREATE TABLE stage AS rollups.usage_events ENGINE = MergeTree ORDER BY (kafka_partition, kafka_offset)`,
    );
    q(`INSERT INTO stage SELECT * FROM (SELECT generateUUIDv4(), toDateTime64(now() - 86400, 3) + intDiv(number, 3) / 1000,
       now64(3), 'acme', concat('team-', toString(number % 17)), concat('user-', toString(number % 101)),
       if(number % 2 = 0, 'search', ''), 'tests', 'test', ['openai','openai','anthropic','anthropic','acme'][number % 5 + 1],
       'chat', ['gpt-4.1','gpt-4.1-mini','claude-sonnet-4-5','claude-haiku-4-5','internal-model-x'][number % 5 + 1], '',
       number % 2 = 1, '', if(number % 50 = 0, 'error', 'ok'), if(number % 50 = 0, 'rate_limit', ''), 200 + number % 5000,
       if(number % 2 = 1, 50 + number % 400, NULL), 100 + number % 997, 0, 0, 10 + number % 211, 0, NULL, 1234567 + number,
       'v1', 'priced', map('run', 'bench'), 'sdk', 'fp', 'usage', (number % 17) % 6 AS p,
       row_number() OVER (PARTITION BY p ORDER BY number) - 1 FROM numbers(${total}))`);
    const perPartition = q('SELECT kafka_partition, count() FROM stage GROUP BY 1 ORDER BY 1')
      .trim()
      .split('\n')
      .map((l) => l.split('\t').map(Number) as [number, number]);
    const results = new Map<string, number[]>();
    for (let round = 0; round < rounds; round++) {
      for (const size of sizes) {
        const ranges: [number, number][] = [];
        for (const [p, n] of perPartition) for (let off = 0; off < n; off += size) ranges.push([p, off]);
        ranges.sort((a, b) => a[1] - b[1] || a[0] - b[0]);
        for (const name of Object.keys(VARIANTS)) {
          for (const t of ['usage_events', 'usage_minute', 'usage_hour', 'usage_day'])
            q(`TRUNCATE TABLE IF EXISTS ${name}.${t}`);
          const t0 = process.hrtime.bigint();
          for (const [p, off] of ranges)
            q(`INSERT INTO ${name}.usage_events SETTINGS insert_deduplicate = 0, max_insert_block_size = 1048576,
               min_insert_block_size_rows = 0, min_insert_block_size_bytes = 0
               SELECT * FROM stage WHERE kafka_partition = ${p} AND kafka_offset >= ${off} AND kafka_offset < ${off + size}`);
          const rate = total / (Number(process.hrtime.bigint() - t0) / 1e9);
          const key = `${name}/${size}`;
          results.set(key, [...(results.get(key) ?? []), rate]);
          log(
            `round ${round + 1}: ${name}, ${size} rows per insert (${ranges.length} inserts): ${Math.round(rate)} rows/s`,
          );
        }
      }
    }
    const best = (k: string): number => Math.max(...(results.get(k) ?? [NaN]));
    const fmt = (x: number): string => Math.round(x).toLocaleString('en-US');
    const lines = [
      `Command: \`npm run bench -- engine-blocks${args.length > 0 ? ` ${args.join(' ')}` : ''}\` (${os.cpus().length} cores, ${fmt(total)} rows, best of ${rounds} rounds, ${new Date().toISOString().slice(0, 10)})`,
      '',
      '| rows per insert | raw → minute → hour → day (the schema), rows/s | raw → minute only, rows/s | raw table only, rows/s | the schema without latency quantiles, rows/s |',
      '|---:|---:|---:|---:|---:|',
      ...sizes.map(
        (s) =>
          `| ${fmt(s)} | ${fmt(best(`rollups/${s}`))} | ${fmt(best(`minute_only/${s}`))} | ${fmt(best(`raw_only/${s}`))} | ${fmt(best(`no_quantiles/${s}`))} |`,
      ),
    ];
    const outDir = path.join(PROJECT_ROOT, '.tokenledger', 'bench');
    fs.mkdirSync(outDir, { recursive: true });
    fs.writeFileSync(
      path.join(outDir, 'engine-blocks.json'),
      JSON.stringify(Object.fromEntries(results), null, 2),
    );
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    session.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
