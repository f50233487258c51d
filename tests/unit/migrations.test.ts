/**
 * The migrations runner's pure parts: file names, statement splitting, checksums, ordering and the plan `up`
 * follows. The database side is in tests/integration/migrate-cli.test.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { TokenledgerError } from '../../lib/errors';
import {
  MIGRATIONS_DIR,
  checksumOf,
  compareWithApplied,
  parseMigrations,
  planUp,
  splitStatements,
} from '../../migrations/runner';
import type { AppliedMigration, Migration } from '../../migrations/runner';

function thrown(fn: () => unknown): TokenledgerError {
  try {
    fn();
  } catch (err) {
    return err as TokenledgerError;
  }
  throw new Error('expected an error');
}

const sql = (name: string): string => `CREATE TABLE IF NOT EXISTS ${name} (x UInt8) ENGINE = Memory;\n`;

function applied(m: Migration, checksum = m.checksum): AppliedMigration {
  return { version: m.version, file: m.file, checksum, appliedAt: '2026-01-01 00:00:00.000', statements: 1 };
}

describe('splitStatements', () => {
  test('splits at a ; that ends a line, drops full-line comments and the final ;', () => {
    const text = [
      '-- header comment;',
      '',
      'CREATE TABLE IF NOT EXISTS a',
      '(',
      "    x String COMMENT 'a; b'",
      '    -- a comment inside a statement;',
      ')',
      'ENGINE = MergeTree ORDER BY x;',
      '   ',
      '-- next',
      "CREATE VIEW IF NOT EXISTS v AS SELECT ';' AS s, 1;  ",
      '-- trailing comment',
      '',
    ].join('\n');
    expect(splitStatements(text)).toEqual([
      {
        sql: "CREATE TABLE IF NOT EXISTS a\n(\n    x String COMMENT 'a; b'\n)\nENGINE = MergeTree ORDER BY x",
        line: 3,
        firstLine: 'CREATE TABLE IF NOT EXISTS a',
      },
      {
        sql: "CREATE VIEW IF NOT EXISTS v AS SELECT ';' AS s, 1",
        line: 11,
        firstLine: "CREATE VIEW IF NOT EXISTS v AS SELECT ';' AS s, 1",
      },
    ]);
  });

  test('reads CRLF files the same way', () => {
    expect(splitStatements('-- c\r\nSELECT 1;\r\nSELECT\r\n 2;\r\n').map((s) => s.sql)).toEqual([
      'SELECT 1',
      'SELECT\n 2',
    ]);
  });

  test('a statement without a final ; is refused, naming the file, line and statement', () => {
    const err = thrown(() =>
      splitStatements('SELECT 1;\n\nCREATE TABLE IF NOT EXISTS b (x UInt8)\n', 'f.sql'),
    );
    expect(err.code).toBe('SCHEMA_INVALID');
    expect(err.message).toBe(
      "f.sql: the statement at line 3 (CREATE TABLE IF NOT EXISTS b (x UInt8)) does not end with ';' at the end of a line",
    );
  });
});

describe('checksumOf', () => {
  test('is the sha256 hex of the bytes, and any edit (a comment too) changes it', () => {
    expect(checksumOf('')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(checksumOf(Buffer.from('SELECT 1;\n'))).toBe(checksumOf('SELECT 1;\n'));
    expect(checksumOf('-- x\nSELECT 1;\n')).not.toBe(checksumOf('SELECT 1;\n'));
  });
});

describe('parseMigrations', () => {
  test('orders by version whatever the listing order, gaps allowed, other files ignored', () => {
    const list = parseMigrations([
      { file: '0010_later.sql', content: sql('c') },
      { file: 'runner.ts', content: 'export {};' },
      { file: 'README.md', content: '# x' },
      { file: '0001_first.sql', content: sql('a') },
      { file: '0002_second-one.sql', content: Buffer.from(sql('b')) },
    ]);
    expect(list.map((m) => [m.version, m.file, m.statements.length])).toEqual([
      [1, '0001_first.sql', 1],
      [2, '0002_second-one.sql', 1],
      [10, '0010_later.sql', 1],
    ]);
    expect(list[0]?.checksum).toBe(checksumOf(sql('a')));
  });

  test('bad names, duplicate versions and empty files are refused, all at once', () => {
    const err = thrown(() =>
      parseMigrations([
        { file: '0001_ok.sql', content: sql('a') },
        { file: '2_short.sql', content: sql('b') },
        { file: '0003-dash.sql', content: sql('c') },
        { file: '0004_Upper.sql', content: sql('d') },
        { file: '00005_long.sql', content: sql('e') },
        { file: '0006_x.SQL', content: sql('f') },
        { file: '0000_zero.sql', content: sql('g') },
        { file: '0007_typo.sq', content: sql('h') },
        { file: '0001_again.sql', content: sql('i') },
        { file: '0008_empty.sql', content: '-- nothing yet\n' },
      ]),
    );
    expect(err.code).toBe('SCHEMA_INVALID');
    const lines = err.message.split('\n');
    expect(lines[0]).toBe('invalid migrations (9 problems):');
    for (const bad of [
      '2_short.sql',
      '0003-dash.sql',
      '0004_Upper.sql',
      '00005_long.sql',
      '0006_x.SQL',
      '0000_zero.sql',
      '0007_typo.sq',
    ]) {
      expect(lines).toContain(
        `  - ${bad}: not a migration file name; expected NNNN_name.sql (0001 upwards, lower-case name with _ or -)`,
      );
    }
    expect(lines).toContain('  - 0001_again.sql and 0001_ok.sql: two migrations with version 0001');
    expect(lines).toContain('  - 0008_empty.sql: has no statements');
  });
});

describe('the repository migrations', () => {
  const migrations = parseMigrations(
    fs.readdirSync(MIGRATIONS_DIR).map((file) => ({
      file,
      content: fs.readFileSync(path.join(MIGRATIONS_DIR, file)),
    })),
  );

  test('0001_initial.sql is twelve statements', () => {
    expect(migrations[0]?.file).toBe('0001_initial.sql');
    expect(migrations[0]?.statements.map((s) => s.firstLine)).toEqual([
      'CREATE TABLE IF NOT EXISTS usage_events',
      'CREATE TABLE IF NOT EXISTS usage_minute',
      'CREATE MATERIALIZED VIEW IF NOT EXISTS usage_minute_mv TO usage_minute AS',
      'CREATE TABLE IF NOT EXISTS usage_hour',
      'CREATE MATERIALIZED VIEW IF NOT EXISTS usage_hour_mv TO usage_hour AS',
      'CREATE TABLE IF NOT EXISTS usage_day',
      'CREATE MATERIALIZED VIEW IF NOT EXISTS usage_day_mv TO usage_day AS',
      'CREATE TABLE IF NOT EXISTS usage_dlq',
      'CREATE TABLE IF NOT EXISTS price_catalog',
      'CREATE VIEW IF NOT EXISTS spend_by_team_day AS',
      'CREATE VIEW IF NOT EXISTS spend_by_model_day AS',
      'CREATE VIEW IF NOT EXISTS spend_by_user_day AS',
    ]);
  });

  test('every statement of every migration is idempotent (IF [NOT] EXISTS)', () => {
    for (const m of migrations) {
      for (const s of m.statements) {
        expect(`${m.file}:${s.line} ${/\bIF (NOT )?EXISTS\b/i.test(s.sql)}`).toBe(`${m.file}:${s.line} true`);
      }
    }
  });
});

describe('planUp and compareWithApplied', () => {
  const [m1, m2, m3] = parseMigrations([
    { file: '0001_a.sql', content: sql('a') },
    { file: '0002_b.sql', content: sql('b') },
    { file: '0003_c.sql', content: sql('c') },
  ]) as [Migration, Migration, Migration];

  test('pending migrations come after the applied ones, in order', () => {
    expect(planUp([m1, m2, m3], [applied(m1)]).pending.map((m) => m.file)).toEqual([
      '0002_b.sql',
      '0003_c.sql',
    ]);
    expect(planUp([m1, m2, m3], [applied(m1), applied(m2), applied(m3)]).pending).toEqual([]);
  });

  test('a changed applied migration is refused with the file and both checksums', () => {
    const err = thrown(() => planUp([m1, m2, m3], [applied(m1, 'f'.repeat(64))]));
    expect(err.code).toBe('SCHEMA_INCOMPATIBLE');
    expect(err.message).toBe(
      `0001_a.sql was changed after it was applied (sha256 applied ${'f'.repeat(64)}, file now ${m1.checksum}); applied migrations are never edited: put the change in a new migration, or restore the file`,
    );
  });

  test('a pending migration numbered below an applied one is refused', () => {
    const err = thrown(() => planUp([m1, m2, m3], [applied(m1), applied(m3)]));
    expect(err.message).toBe(
      '0002_b.sql pending but 0003_c.sql (a later version) is already applied: renumber after 0003_c.sql',
    );
  });

  test('a recorded migration without its file is reported, not refused', () => {
    expect(planUp([m2, m3], [applied(m1)])).toEqual({ pending: [m2, m3], missing: [applied(m1)] });
    const gone = { ...applied(m3), file: '0004_gone.sql', version: 4 };
    expect(
      compareWithApplied([m1, m2, m3], [applied(m1), applied(m2, 'x'), gone]).map((s) => [s.file, s.state]),
    ).toEqual([
      ['0001_a.sql', 'applied'],
      ['0002_b.sql', 'changed'],
      ['0003_c.sql', 'pending'],
      ['0004_gone.sql', 'missing'],
    ]);
  });
});
