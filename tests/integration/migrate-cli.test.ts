/**
 * `tokenledger migrate up|status` as a user runs it: the real CLI in a child process against the real ClickHouse,
 * every test in its own database, temporary migration folders (`--dir`) for the edited, missing and broken
 * cases. Then the schema of 0001 at work: rollups and BI views from two events, and a retried block dropped by
 * every table through insert_deduplication_token.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { createClickHouse } from '../../lib/clickhouse';
import { clickhouseUrl } from '../../lib/config';
import { checksumOf, ensureSchema, listMigrations, MIGRATIONS_DIR } from '../../migrations/runner';
import { runCli, isolatedEnv } from '../helpers/cli';
import type { CliResult } from '../helpers/cli';
import { useTestDatabase } from '../helpers/clickhouse';
import { testConfig, testLogger, uniqueName } from '../helpers/env';

const config = testConfig();
const admin = createClickHouse({ config, logger: testLogger(), database: null });
const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups) await c();
  await admin.close();
});

/** A database name no one uses (created by `migrate up`, dropped after the file) and the CLI env pointing at it. */
function freshDatabase(): { db: string; migrate: (...args: string[]) => Promise<CliResult> } {
  const db = uniqueName('test_migrate');
  cleanups.push(async () => {
    await admin.command({ query: `DROP DATABASE IF EXISTS ${db}` });
  });
  const env = isolatedEnv({
    CLICKHOUSE_URL: clickhouseUrl(config),
    CLICKHOUSE_USER: config.clickhouse.user,
    CLICKHOUSE_PASSWORD: config.clickhouse.password,
    CLICKHOUSE_DATABASE: db,
  });
  return { db, migrate: (...args) => runCli(['migrate', ...args], env) };
}

function tempDir(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenledger-migrations-'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
  return dir;
}

async function rows<T>(query: string): Promise<T[]> {
  const rs = await admin.query({ query, format: 'JSONEachRow' });
  return rs.json<T>();
}

async function tables(db: string): Promise<string[]> {
  const r = await rows<{ name: string }>(
    `SELECT name FROM system.tables WHERE database = '${db}' ORDER BY name`,
  );
  return r.map((t) => t.name);
}

async function recorded(
  db: string,
): Promise<{ version: number; name: string; checksum: string; statements: number }[]> {
  return rows(`SELECT version, name, checksum, statements FROM ${db}.schema_migrations ORDER BY version`);
}

/** stdout split into lines, each line's columns split on runs of 2+ spaces (the table). */
const cells = (stdout: string): string[][] =>
  stdout
    .trimEnd()
    .split('\n')
    .map((l) => l.split(/\s{2,}/));

const table = (name: string): string =>
  `CREATE TABLE IF NOT EXISTS ${name} (x String) ENGINE = MergeTree ORDER BY x;\n`;

test('up applies every migration in order, a second up is a no-op, status shows each', async () => {
  const { db, migrate } = freshDatabase();
  const repo = listMigrations(MIGRATIONS_DIR);

  const before = await migrate('status');
  expect([before.code, before.stderr]).toEqual([0, '']);
  expect(before.stdout.split('\n')[0]).toBe(
    `database ${db}: 0 applied, ${repo.length} pending, 0 changed, 0 missing`,
  );
  expect(cells(before.stdout)[2]).toEqual([
    '0001',
    '0001_initial.sql',
    'pending',
    '-',
    repo[0]?.checksum.slice(0, 12),
  ]);

  const up = await migrate('up');
  expect([up.code, up.stderr]).toEqual([0, '']);
  const lines = up.stdout.trimEnd().split('\n');
  expect(lines.slice(0, -1).map((l) => l.replace(/, [\d.]+ s\)$/, ')'))).toEqual(
    repo.map(
      (m) => `applied ${m.file} (${m.statements.length} statement${m.statements.length === 1 ? '' : 's'})`,
    ),
  );
  expect(lines.at(-1)).toBe(
    `database ${db} is up to date: applied ${repo.length} now, ${repo.length} migration(s) in all`,
  );
  expect(await tables(db)).toEqual(
    expect.arrayContaining([
      'schema_migrations',
      'usage_events',
      'usage_minute',
      'usage_minute_mv',
      'usage_hour',
      'usage_day',
      'usage_dlq',
      'price_catalog',
      'spend_by_team_day',
      'spend_by_model_day',
      'spend_by_user_day',
    ]),
  );
  const initial = fs.readFileSync(path.join(MIGRATIONS_DIR, '0001_initial.sql'));
  expect((await recorded(db))[0]).toEqual({
    version: 1,
    name: '0001_initial.sql',
    checksum: checksumOf(initial),
    statements: 12,
  });

  const again = await migrate('up');
  expect([again.code, again.stderr, again.stdout]).toEqual([
    0,
    '',
    `database ${db} is up to date: ${repo.length} migration(s) applied, nothing to do\n`,
  ]);
  expect(await recorded(db)).toHaveLength(repo.length);

  const after = await migrate('status');
  expect([after.code, after.stderr]).toEqual([0, '']);
  expect(after.stdout.split('\n')[0]).toBe(
    `database ${db}: ${repo.length} applied, 0 pending, 0 changed, 0 missing`,
  );
  const row = cells(after.stdout)[2];
  expect(row?.slice(0, 3)).toEqual(['0001', '0001_initial.sql', 'applied']);
  expect(row?.[3]).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$/);
});

test('an edited applied migration is refused naming the file and both checksums; status shows every state', async () => {
  const { db, migrate } = freshDatabase();
  const dir = tempDir({ '0001_a.sql': `-- a\n${table('a')}`, '0002_b.sql': table('b') });
  const first = await migrate('up', '--dir', dir);
  expect([first.code, first.stderr]).toEqual([0, '']);
  const applied = checksumOf(fs.readFileSync(path.join(dir, '0001_a.sql')));

  fs.appendFileSync(path.join(dir, '0001_a.sql'), '-- only a comment, still a change\n');
  const edited = checksumOf(fs.readFileSync(path.join(dir, '0001_a.sql')));
  fs.writeFileSync(path.join(dir, '0003_c.sql'), table('c'));
  fs.rmSync(path.join(dir, '0002_b.sql'));

  const refused = await migrate('up', '--dir', dir);
  expect(refused.code).toBe(1);
  expect(refused.stdout).toBe('');
  expect(refused.stderr).toBe(
    `tokenledger: 0001_a.sql was changed after it was applied (sha256 applied ${applied}, file now ${edited}); applied migrations are never edited: put the change in a new migration, or restore the file\n`,
  );
  expect(await tables(db)).toEqual(['a', 'b', 'schema_migrations']); // nothing after it was applied
  expect((await recorded(db)).map((r) => r.name)).toEqual(['0001_a.sql', '0002_b.sql']);

  const status = await migrate('status', '--dir', dir);
  expect([status.code, status.stderr]).toEqual([0, '']);
  const out = cells(status.stdout);
  expect(out[0]).toEqual([`database ${db}: 0 applied, 1 pending, 1 changed, 1 missing`]);
  expect(out.slice(1, 5).map((r) => r.slice(0, 3))).toEqual([
    ['version', 'file', 'state'],
    ['0001', '0001_a.sql', 'changed'],
    ['0002', '0002_b.sql', 'missing'],
    ['0003', '0003_c.sql', 'pending'],
  ]);
  expect(status.stdout).toContain(
    `0001_a.sql changed after it was applied: sha256 applied ${applied}, file now ${edited}\n`,
  );
  expect(status.stdout).toContain(`0002_b.sql is recorded as applied but is not in ${dir}\n`);

  // Restoring the file lets up go on; the missing one is a warning.
  fs.writeFileSync(path.join(dir, '0001_a.sql'), `-- a\n${table('a')}`);
  const restored = await migrate('up', '--dir', dir);
  expect(restored.code).toBe(0);
  expect(restored.stdout).toMatch(/^applied 0003_c\.sql \(1 statement, [\d.]+ s\)\n/);
  expect(restored.stderr).toMatch(
    /^tokenledger: warning: 0002_b\.sql is recorded as applied \(.* UTC\) but is not in /,
  );
});

test('a failing statement names the file and its first line; after the fix, up completes the migration', async () => {
  const { db, migrate } = freshDatabase();
  const broken = `${table('b1')}\n-- the type is misspelt\nCREATE TABLE IF NOT EXISTS b2\n(x Strin) ENGINE = MergeTree ORDER BY x;\n`;
  const dir = tempDir({ '0001_a.sql': table('a'), '0002_broken.sql': broken });

  const failed = await migrate('up', '--dir', dir);
  expect(failed.code).toBe(1);
  expect(failed.stdout).toMatch(/^applied 0001_a\.sql /);
  expect(failed.stderr).toMatch(
    /^tokenledger: migration 0002_broken\.sql failed at statement 2 of 2 \(line 4: CREATE TABLE IF NOT EXISTS b2\): .*Strin.*\(ClickHouse error 50 UNKNOWN_TYPE\)\n$/,
  );
  // Half applied and not recorded: b1 exists, 0002 is still pending.
  expect(await tables(db)).toEqual(['a', 'b1', 'schema_migrations']);
  expect((await recorded(db)).map((r) => r.name)).toEqual(['0001_a.sql']);

  fs.writeFileSync(path.join(dir, '0002_broken.sql'), broken.replace('Strin)', 'String)'));
  const fixed = await migrate('up', '--dir', dir);
  expect([fixed.code, fixed.stderr]).toEqual([0, '']);
  expect(fixed.stdout).toMatch(/^applied 0002_broken\.sql \(2 statements, [\d.]+ s\)\n/);
  expect(await tables(db)).toEqual(['a', 'b1', 'b2', 'schema_migrations']);
});

test('bad migration files are refused before anything is created; a bad --dir is a usage error', async () => {
  const { db, migrate } = freshDatabase();
  const dir = tempDir({ '0001_a.sql': table('a'), '2_b.sql': table('b'), '0003_c.sql': 'SELECT 1\n' });
  const r = await migrate('up', '--dir', dir);
  expect([r.code, r.stdout]).toEqual([1, '']);
  expect(r.stderr).toBe(
    [
      'tokenledger: invalid migrations (2 problems):',
      "  - 0003_c.sql: the statement at line 1 (SELECT 1) does not end with ';' at the end of a line",
      '  - 2_b.sql: not a migration file name; expected NNNN_name.sql (0001 upwards, lower-case name with _ or -)',
      '',
    ].join('\n'),
  );
  expect(await rows(`SELECT name FROM system.databases WHERE name = '${db}'`)).toEqual([]);

  const nowhere = path.join(dir, 'nope');
  const bad = await migrate('status', '--dir', nowhere);
  expect([bad.code, bad.stderr]).toEqual([
    2,
    `tokenledger: --dir ${JSON.stringify(nowhere)} is not a folder\n`,
  ]);
});

test('--help explains the commands and the rules', async () => {
  const { migrate } = freshDatabase();
  const help = await migrate('--help');
  expect(help.code).toBe(0);
  expect(help.stdout).toMatch(/^\s+up \[options\]\s+create the database if needed and apply every pending/m);
  expect(help.stdout).toMatch(/^\s+status \[options\]\s+list every migration as applied, pending, changed/m);
  expect(help.stdout).toContain('schema_migrations');
  expect(help.stdout).toContain('There are no down migrations.');
  const upHelp = await migrate('up', '--help');
  expect(upHelp.stdout).toContain('--dir <folder>');
});

describe('the 0001 schema', () => {
  const db = useTestDatabase();

  test('rollups and views sum two events; a retried block changes no table', async () => {
    const client = db.client();
    const result = await ensureSchema(client, testLogger());
    expect(result.applied.map((m) => m.file)).toEqual(listMigrations().map((m) => m.file));

    const team = uniqueName('team');
    const now = new Date();
    const occurredAt = now.toISOString().replace('T', ' ').replace('Z', '');
    const base = {
      occurred_at: occurredAt,
      team_id: team,
      user_id: 'u1',
      project_id: 'p1',
      provider: 'openai',
      request_model: 'gpt-4.1',
      response_model: 'gpt-4.1-2025-04-14',
      cost_status: 'priced',
      price_version: 'test',
      kafka_topic: 'tokenledger.usage.v1',
      kafka_partition: 0,
    };
    const block = [
      {
        ...base,
        event_id: randomUUID(),
        status: 'ok',
        duration_ms: 1200,
        input_tokens: 1000,
        output_tokens: 200,
        cost_nanousd: 3_600_000,
        kafka_offset: 0,
      },
      {
        ...base,
        event_id: randomUUID(),
        status: 'error',
        duration_ms: null,
        input_tokens: 500,
        output_tokens: 0,
        cost_nanousd: 1_000_000,
        kafka_offset: 1,
      },
    ];
    const insert = (token: string): Promise<unknown> =>
      client.insert({
        table: 'usage_events',
        format: 'JSONEachRow',
        values: block,
        clickhouse_settings: {
          async_insert: 0,
          insert_deduplication_token: token,
          deduplicate_blocks_in_dependent_materialized_views: 1,
        },
      });
    const totals = async (): Promise<Record<string, string>> => {
      const parts = ['usage_events', 'usage_minute', 'usage_hour', 'usage_day'].map(
        (t) =>
          `SELECT '${t}' AS t, ${t === 'usage_events' ? 'count()' : 'sum(requests)'} AS requests,
                  sum(input_tokens) AS input, sum(output_tokens) AS output, sum(cost_nanousd) AS cost
           FROM ${t} WHERE team_id = {team:String}`,
      );
      const rs = await client.query({
        query: parts.join(' UNION ALL '),
        query_params: { team },
        format: 'JSONEachRow',
      });
      const list = await rs.json<{
        t: string;
        requests: string;
        input: string;
        output: string;
        cost: string;
      }>();
      return Object.fromEntries(
        list.map((r) => [r.t, `${r.requests} req, ${r.input} in, ${r.output} out, ${r.cost} nUSD`]),
      );
    };
    const every = (s: string): Record<string, string> => ({
      usage_events: s,
      usage_minute: s,
      usage_hour: s,
      usage_day: s,
    });

    await insert(`tokenledger.usage.v1-0-0-1`);
    expect(await totals()).toEqual(every('2 req, 1500 in, 200 out, 4600000 nUSD'));
    const spend = await client.query({
      query: `SELECT toString(day) AS day, requests, errors, input_tokens, output_tokens, cost_nanousd,
                     toString(cost_usd) AS cost_usd, unpriced_requests
              FROM spend_by_team_day WHERE team_id = {team:String}`,
      query_params: { team },
      format: 'JSONEachRow',
    });
    expect(await spend.json()).toEqual([
      {
        day: now.toISOString().slice(0, 10),
        requests: '2',
        errors: '1',
        input_tokens: '1500',
        output_tokens: '200',
        cost_nanousd: '4600000',
        cost_usd: '0.0046',
        unpriced_requests: '0',
      },
    ]);

    // The same block again with the same token (a retried Kafka offset range): dropped by every table.
    await insert(`tokenledger.usage.v1-0-0-1`);
    expect(await totals()).toEqual(every('2 req, 1500 in, 200 out, 4600000 nUSD'));
    // A different token is a different block: counted (so the retry above was deduplicated, not lost).
    await insert(`tokenledger.usage.v1-0-2-3`);
    expect(await totals()).toEqual(every('4 req, 3000 in, 400 out, 9200000 nUSD'));
  });
});
