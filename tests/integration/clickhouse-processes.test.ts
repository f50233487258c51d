/** One process querying while another inserts, through the same ClickHouse endpoint. */
import path from 'node:path';
import readline from 'node:readline';
import { spawn } from 'node:child_process';
import { clickhouseUrl } from '../../lib/config';
import { PROJECT_ROOT } from '../../lib/config';
import { useTestDatabase } from '../helpers/clickhouse';

const db = useTestDatabase();

test('a second process inserts while this one queries; every query sees a consistent, growing count', async () => {
  const c = db.client();
  await c.command({
    query: 'CREATE TABLE t (batch UInt32, i UInt32) ENGINE = MergeTree ORDER BY (batch, i)',
  });
  const batches = 40;
  const rows = 500;
  const child = spawn(
    process.execPath,
    ['--require', require.resolve('tsx/cjs'), path.join(PROJECT_ROOT, 'tests/fixtures/inserter.ts')],
    {
      env: {
        ...process.env,
        INSERT_URL: clickhouseUrl(db.config),
        INSERT_USER: db.config.clickhouse.user,
        INSERT_PASSWORD: db.config.clickhouse.password,
        INSERT_DATABASE: db.name,
        INSERT_TABLE: 't',
        INSERT_BATCHES: String(batches),
        INSERT_ROWS: String(rows),
      },
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  const out = readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]();

  const count = async (): Promise<{ n: number; complete: number }> => {
    const rs = await c.query({
      query:
        'SELECT count() AS n, countIf(cnt = {rows:UInt32}) AS complete FROM (SELECT batch, count() AS cnt FROM t GROUP BY batch)',
      query_params: { rows },
      format: 'JSONEachRow',
    });
    const r = (await rs.json<{ n: string; complete: string }>())[0];
    return { n: Number(r?.n), complete: Number(r?.complete) };
  };

  // Phase 1: poll while the first half is being inserted.
  const seen: number[] = [];
  let line = out.next();
  let half = false;
  while (!half) {
    const raced = await Promise.race([line, new Promise<'tick'>((r) => setTimeout(() => r('tick'), 20))]);
    const { n, complete } = await count();
    // Inserts are atomic: every batch is either fully visible or not at all.
    expect(complete).toBe(n);
    seen.push(n);
    if (raced !== 'tick') {
      expect(raced.value).toBe('half');
      half = true;
    }
  }
  // At the pause the other process has written exactly the first half, and this one reads it.
  expect((await count()).n).toBe(batches / 2);
  child.stdin.write('go\n');
  line = out.next();
  // Phase 2: keep querying until the other process finishes.
  let done = false;
  while (!done) {
    const raced = await Promise.race([line, new Promise<'tick'>((r) => setTimeout(() => r('tick'), 20))]);
    seen.push((await count()).n);
    if (raced !== 'tick') done = true;
  }
  expect(await exited).toBe(0);
  const final = await count();
  expect(final).toEqual({ n: batches, complete: batches });
  // Counts never went backwards, and this process saw states between empty and full.
  expect(seen).toEqual([...seen].sort((a, b) => a - b));
  expect(seen.some((n) => n > 0 && n < batches)).toBe(true);
});
