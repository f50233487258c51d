/**
 * The migrations runner (docs/decisions/0010-migrations.md). Migrations are the files `NNNN_name.sql` in this
 * folder: full-line `--` comments, statements separated by a `;` at the end of a line, every statement
 * idempotent (IF NOT EXISTS). They are applied in order, ONE STATEMENT PER REQUEST (ClickHouse's HTTP interface
 * refuses several statements in one request), and a migration is recorded in `schema_migrations` only after all
 * of its statements succeeded, so a half-applied migration is simply run again. A recorded migration whose file
 * changed since (sha256 of the file) is refused; there are no down migrations.
 *
 * Parsing and planning are pure (`parseMigrations`, `splitStatements`, `compareWithApplied`, `planUp`); the
 * functions that touch the folder or ClickHouse are `listMigrations`, `migrationStatus`, `migrateUp` and
 * `ensureSchema`.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ClickHouseError } from '@clickhouse/client';
import type { ClickHouseClient } from '@clickhouse/client';
import { TokenledgerError, classifyClickHouseError } from '../lib/errors';
import type { Logger } from '../lib/logger';

/** The project's migrations: this folder. */
export const MIGRATIONS_DIR = __dirname;

/** `NNNN_name.sql`: four digits from 0001, then lower-case words joined by `_` or `-`. */
const FILE_NAME = /^(\d{4})_([a-z0-9]+(?:[_-][a-z0-9]+)*)\.sql$/;

export interface Statement {
  /** The SQL sent to ClickHouse: comment lines and the final `;` removed. */
  readonly sql: string;
  /** 1-based line of the file the statement starts on. */
  readonly line: number;
  /** That line, trimmed: how errors name the statement. */
  readonly firstLine: string;
}

export interface Migration {
  readonly version: number;
  /** The file name, e.g. `0001_initial.sql`; recorded as `name` in schema_migrations. */
  readonly file: string;
  /** sha256 hex of the file's bytes. */
  readonly checksum: string;
  readonly statements: readonly Statement[];
}

/** A row of schema_migrations (the first record of a version, if concurrent runs recorded it twice). */
export interface AppliedMigration {
  readonly version: number;
  readonly file: string;
  readonly checksum: string;
  /** `YYYY-MM-DD hh:mm:ss.sss`, UTC. */
  readonly appliedAt: string;
  readonly statements: number;
}

export type MigrationState = 'applied' | 'pending' | 'changed' | 'missing';

export interface MigrationStatus {
  readonly version: number;
  readonly file: string;
  readonly state: MigrationState;
  /** Checksum of the file on disk (undefined: missing). */
  readonly checksum: string | undefined;
  /** The applied record (undefined: pending). */
  readonly applied: AppliedMigration | undefined;
}

export function checksumOf(content: string | Buffer): string {
  return createHash('sha256').update(content).digest('hex');
}

/** Splits a migration into statements; `where` names the file in errors. */
export function splitStatements(text: string, where = 'migration'): Statement[] {
  const statements: Statement[] = [];
  let current: string[] = [];
  let start = 0;
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (/^\s*--/.test(line)) return; // full-line comment, even if it ends with ';'
    if (current.length === 0) {
      if (line.trim() === '') return;
      start = i + 1;
    }
    current.push(line);
    if (line.trimEnd().endsWith(';')) {
      const sql = current.join('\n').trim().replace(/;$/, '').trim();
      if (sql !== '') statements.push({ sql, line: start, firstLine: firstLineOf(sql) });
      current = [];
    }
  });
  if (current.length > 0) {
    throw new TokenledgerError(
      'SCHEMA_INVALID',
      `${where}: the statement at line ${start} (${firstLineOf(current.join('\n').trim())}) does not end with ';' at the end of a line`,
      { context: { migration: where, line: start } },
    );
  }
  return statements;
}

function firstLineOf(sql: string): string {
  return (sql.split('\n')[0] ?? '').trim();
}

/**
 * Parses the files of a migrations folder (name → content). Files that end in `.sql` or start with a digit must
 * be well-named migrations; other files (this runner, a README) are ignored. Every problem is reported at once.
 */
export function parseMigrations(
  files: readonly { readonly file: string; readonly content: string | Buffer }[],
): Migration[] {
  const problems: string[] = [];
  const byVersion = new Map<number, Migration>();
  for (const { file, content } of [...files].sort((a, b) => (a.file < b.file ? -1 : 1))) {
    if (!/\.sql$/i.test(file) && !/^\d/.test(file)) continue;
    const m = FILE_NAME.exec(file);
    const version = Number(m?.[1]);
    if (m === null || version === 0) {
      problems.push(
        `${file}: not a migration file name; expected NNNN_name.sql (0001 upwards, lower-case name with _ or -)`,
      );
      continue;
    }
    const other = byVersion.get(version);
    if (other !== undefined) {
      problems.push(`${other.file} and ${file}: two migrations with version ${m[1]}`);
      continue;
    }
    try {
      const statements = splitStatements(content.toString(), file);
      if (statements.length === 0) problems.push(`${file}: has no statements`);
      else byVersion.set(version, { version, file, checksum: checksumOf(content), statements });
    } catch (err) {
      problems.push(err instanceof Error ? err.message : String(err));
    }
  }
  if (problems.length > 0) {
    throw new TokenledgerError(
      'SCHEMA_INVALID',
      `invalid migrations (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n  - ${problems.join('\n  - ')}`,
    );
  }
  return [...byVersion.values()].sort((a, b) => a.version - b.version);
}

/** Reads and parses the migrations in `dir`, in version order. */
export function listMigrations(dir: string = MIGRATIONS_DIR): Migration[] {
  let names: string[];
  try {
    names = fs
      .readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isFile() && !e.name.startsWith('.'))
      .map((e) => e.name);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new TokenledgerError('SCHEMA_INVALID', `cannot read the migrations folder ${dir} (${code})`, {
      cause: err,
    });
  }
  return parseMigrations(names.map((file) => ({ file, content: fs.readFileSync(path.join(dir, file)) })));
}

/** Every migration on disk or on record, by version, with its state. */
export function compareWithApplied(
  migrations: readonly Migration[],
  applied: readonly AppliedMigration[],
): MigrationStatus[] {
  const files = new Map(migrations.map((m) => [m.version, m]));
  const records = new Map(applied.map((a) => [a.version, a]));
  const versions = [...new Set([...files.keys(), ...records.keys()])].sort((a, b) => a - b);
  return versions.map((version) => {
    const m = files.get(version);
    const a = records.get(version);
    const state: MigrationState =
      m === undefined
        ? 'missing'
        : a === undefined
          ? 'pending'
          : a.checksum === m.checksum
            ? 'applied'
            : 'changed';
    return { version, file: m?.file ?? a?.file ?? '', state, checksum: m?.checksum, applied: a };
  });
}

/**
 * What `up` will apply, in order, or why it will not apply anything: a recorded migration whose file changed,
 * or a pending migration numbered below one already applied (it would run after the later ones). Missing files
 * (a database migrated by newer code) are returned for a warning, not refused.
 */
export function planUp(
  migrations: readonly Migration[],
  applied: readonly AppliedMigration[],
): { pending: Migration[]; missing: AppliedMigration[] } {
  const status = compareWithApplied(migrations, applied);
  const changed = status.filter((s) => s.state === 'changed');
  if (changed.length > 0) {
    throw new TokenledgerError(
      'SCHEMA_INCOMPATIBLE',
      changed
        .map(
          (s) =>
            `${s.file} was changed after it was applied (sha256 applied ${s.applied?.checksum ?? '?'}, file now ${s.checksum ?? '?'}); applied migrations are never edited: put the change in a new migration, or restore the file`,
        )
        .join('\n'),
      { context: { migration: changed[0]?.file } },
    );
  }
  const lastApplied = Math.max(0, ...applied.map((a) => a.version));
  const pending = migrations.filter((m) => !applied.some((a) => a.version === m.version));
  const early = pending.filter((m) => m.version < lastApplied);
  if (early.length > 0) {
    const last = status.find((s) => s.version === lastApplied)?.file ?? String(lastApplied);
    throw new TokenledgerError(
      'SCHEMA_INCOMPATIBLE',
      `${early.map((m) => m.file).join(', ')} pending but ${last} (a later version) is already applied: renumber after ${last}`,
      { context: { migration: early[0]?.file } },
    );
  }
  return { pending, missing: applied.filter((a) => !migrations.some((m) => m.version === a.version)) };
}

const SCHEMA_MIGRATIONS_DDL = `CREATE TABLE IF NOT EXISTS schema_migrations
(
    version    UInt32,
    name       String COMMENT 'the file, NNNN_name.sql',
    checksum   String COMMENT 'sha256 hex of the file as applied',
    applied_at DateTime64(3, 'UTC'),
    statements UInt32
)
ENGINE = MergeTree
ORDER BY (version, applied_at)`;

/** The applied migrations; none when the table, or the client's database, does not exist yet. */
export async function readApplied(client: ClickHouseClient): Promise<AppliedMigration[]> {
  try {
    const exists = await client.query({
      query: `SELECT count() AS n FROM system.tables WHERE database = currentDatabase() AND name = 'schema_migrations'`,
      format: 'JSONEachRow',
    });
    const [row] = await exists.json<{ n: string }>(); // UInt64: a string (output_format_json_quote_64bit_integers)
    if (row?.n !== '1') return [];
  } catch (err) {
    if (err instanceof ClickHouseError && err.code === '81') return []; // UNKNOWN_DATABASE
    throw err;
  }
  // Two concurrent `up`s may both record a version: the first record is the one that counts.
  const rs = await client.query({
    query: `SELECT version, argMin(name, applied_at) AS file, argMin(checksum, applied_at) AS checksum,
              toString(min(applied_at)) AS first_applied_at, argMin(statements, applied_at) AS statements
            FROM schema_migrations GROUP BY version ORDER BY version`,
    format: 'JSONEachRow',
  });
  const rows = await rs.json<Omit<AppliedMigration, 'appliedAt'> & { first_applied_at: string }>();
  return rows.map(({ first_applied_at, ...r }) => ({ ...r, appliedAt: first_applied_at }));
}

/** The state of every migration in `dir` and on record in the client's database. Changes nothing. */
export async function migrationStatus(
  client: ClickHouseClient,
  dir: string = MIGRATIONS_DIR,
): Promise<MigrationStatus[]> {
  return compareWithApplied(listMigrations(dir), await readApplied(client));
}

export interface MigrationApplied {
  readonly version: number;
  readonly file: string;
  readonly checksum: string;
  readonly statements: number;
  readonly ms: number;
}

export interface MigrateUpOptions {
  readonly dir?: string;
  readonly logger: Logger;
  /** Called after each migration is applied and recorded. */
  readonly onProgress?: (applied: MigrationApplied) => void;
}

export interface MigrateUpResult {
  readonly applied: readonly MigrationApplied[];
  /** Migrations that were already applied before this run. */
  readonly alreadyApplied: number;
  /** Recorded as applied, but their files are not in `dir`. */
  readonly missing: readonly AppliedMigration[];
}

/**
 * Applies the pending migrations in order. The client's database must exist (`ensureDatabase`). Refuses, before
 * applying anything, when `planUp` does.
 */
export async function migrateUp(
  client: ClickHouseClient,
  { dir = MIGRATIONS_DIR, logger, onProgress }: MigrateUpOptions,
): Promise<MigrateUpResult> {
  const log = logger.child({ module: 'migrations' });
  const migrations = listMigrations(dir);
  await run(client, SCHEMA_MIGRATIONS_DDL, 'cannot create the table schema_migrations');
  const recorded = await readApplied(client);
  const { pending, missing } = planUp(migrations, recorded);
  for (const m of missing) log.warn({ migration: m.file, dir }, 'applied migration missing on disk');
  const applied: MigrationApplied[] = [];
  for (const m of pending) {
    const t0 = Date.now();
    for (const [i, s] of m.statements.entries()) {
      // A crash or error here leaves the migration unrecorded: the next run repeats its (idempotent) statements.
      const n = `${i + 1} of ${m.statements.length}`;
      await run(
        client,
        s.sql,
        `migration ${m.file} failed at statement ${n} (line ${s.line}: ${s.firstLine})`,
        {
          migration: m.file,
          statement: i + 1,
        },
      );
    }
    await client.insert({
      table: 'schema_migrations',
      format: 'JSONEachRow',
      values: [
        {
          version: m.version,
          name: m.file,
          checksum: m.checksum,
          applied_at: new Date().toISOString().replace('T', ' ').replace('Z', ''),
          statements: m.statements.length,
        },
      ],
      clickhouse_settings: { async_insert: 0 },
    });
    const done = {
      version: m.version,
      file: m.file,
      checksum: m.checksum,
      statements: m.statements.length,
      ms: Date.now() - t0,
    };
    log.info({ migration: m.file, statements: done.statements, ms: done.ms }, 'migration applied');
    applied.push(done);
    onProgress?.(done);
  }
  return { applied, alreadyApplied: migrations.length - pending.length, missing };
}

async function run(
  client: ClickHouseClient,
  sql: string,
  failed: string,
  context: Record<string, string | number> = {},
): Promise<void> {
  try {
    await client.command({ query: sql });
  } catch (err) {
    const failure = classifyClickHouseError(err);
    const reason =
      err instanceof ClickHouseError
        ? `${err.message.trim()} (ClickHouse error ${err.code}${err.type === undefined ? '' : ` ${err.type}`})`
        : err instanceof Error
          ? err.message
          : String(err);
    throw new TokenledgerError('CLICKHOUSE_QUERY_FAILED', `${failed}: ${reason}`, {
      cause: err,
      retriable: failure.retriable,
      context: { ...context, code: failure.code },
    });
  }
}

/** Brings the client's database to the latest schema without printing anything (ingest, tests). */
export async function ensureSchema(client: ClickHouseClient, logger: Logger): Promise<MigrateUpResult> {
  return migrateUp(client, { logger });
}
