/**
 * `tokenledger migrate up|status`: applies the ClickHouse schema migrations (migrations/NNNN_name.sql) to the
 * configured database and shows where it stands. `up` refuses, before applying anything, when an applied
 * migration's file has changed (exit 1); `status` only reads and always exits 0 when it can reach ClickHouse.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from '../../lib/config';
import type { Config } from '../../lib/config';
import { createClickHouse, ensureDatabase } from '../../lib/clickhouse';
import type { ClickHouseClient } from '../../lib/clickhouse';
import { TokenledgerError } from '../../lib/errors';
import { createLogger } from '../../lib/logger';
import type { Logger } from '../../lib/logger';
import { MIGRATIONS_DIR, listMigrations, migrateUp, migrationStatus } from '../../migrations/runner';
import { reachable } from '../clickhouse';
import { say, table } from '../output';

interface MigrateOptions {
  dir?: string;
}

const DIR_HELP = 'folder of NNNN_name.sql files (default: migrations/ of this repository)';

export function registerMigrate(program: Command): void {
  const migrate = program
    .command('migrate')
    .description('apply and inspect the ClickHouse schema migrations')
    .addHelpText(
      'after',
      `
Migrations are the files migrations/NNNN_name.sql, applied in version order to the configured database
(CLICKHOUSE_URL / CLICKHOUSE_DATABASE), one statement per request. Each applied migration is recorded in the
table schema_migrations with the sha256 of its file. An applied migration must never be edited: \`up\` refuses
to run when one was (put the change in a new migration). There are no down migrations.
See docs/decisions/0010-migrations.md.`,
    );
  migrate
    .command('up')
    .description('create the database if needed and apply every pending migration, in order')
    .option('--dir <folder>', DIR_HELP)
    .action(async (opts: MigrateOptions) => {
      await up(migrationsDir(opts));
    });
  migrate
    .command('status')
    .description('list every migration as applied, pending, changed (file edited) or missing (file gone)')
    .option('--dir <folder>', DIR_HELP)
    .action(async (opts: MigrateOptions) => {
      await status(migrationsDir(opts));
    });
}

function migrationsDir(opts: MigrateOptions): string {
  if (opts.dir === undefined) return MIGRATIONS_DIR;
  const dir = path.resolve(opts.dir);
  if (!fs.statSync(dir, { throwIfNoEntry: false })?.isDirectory()) {
    throw new TokenledgerError('CLI_USAGE', `--dir ${JSON.stringify(opts.dir)} is not a folder`);
  }
  return dir;
}

async function up(dir: string): Promise<void> {
  const config = loadConfig(process.env, ['clickhouse', 'local', 'log']);
  const logger = cliLogger(config);
  const db = config.clickhouse.database;
  listMigrations(dir); // bad files are refused before anything is created
  await reachable(config, () => ensureDatabase(config, logger));
  await withClient(config, logger, async (client) => {
    const result = await migrateUp(client, {
      dir,
      // This command prints what the runner would log (applied, missing) itself.
      logger: logger.child({}, { level: 'error' }),
      onProgress: (m) => {
        say(
          `applied ${m.file} (${m.statements} statement${m.statements === 1 ? '' : 's'}, ${(m.ms / 1000).toFixed(2)} s)`,
        );
      },
    });
    for (const m of result.missing) {
      process.stderr.write(
        `tokenledger: warning: ${m.file} is recorded as applied (${m.appliedAt} UTC) but is not in ${dir}\n`,
      );
    }
    const total = result.alreadyApplied + result.applied.length;
    say(
      result.applied.length === 0
        ? `database ${db} is up to date: ${total} migration(s) applied, nothing to do`
        : `database ${db} is up to date: applied ${result.applied.length} now, ${total} migration(s) in all`,
    );
  });
}

async function status(dir: string): Promise<void> {
  const config = loadConfig(process.env, ['clickhouse', 'local', 'log']);
  const logger = cliLogger(config);
  await withClient(config, logger, async (client) => {
    const rows = await reachable(config, () => migrationStatus(client, dir));
    const count = (state: string): number => rows.filter((r) => r.state === state).length;
    say(
      `database ${config.clickhouse.database}: ${count('applied')} applied, ${count('pending')} pending, ${count('changed')} changed, ${count('missing')} missing`,
    );
    if (rows.length === 0) return;
    say(
      table([
        ['version', 'file', 'state', 'applied at (UTC)', 'sha256'],
        ...rows.map((r) => [
          String(r.version).padStart(4, '0'),
          r.file,
          r.state,
          r.applied?.appliedAt ?? '-',
          (r.checksum ?? r.applied?.checksum ?? '').slice(0, 12),
        ]),
      ]),
    );
    for (const r of rows) {
      if (r.state === 'changed') {
        say(
          `${r.file} changed after it was applied: sha256 applied ${r.applied?.checksum ?? '?'}, file now ${r.checksum ?? '?'}`,
        );
      } else if (r.state === 'missing') {
        say(`${r.file} is recorded as applied but is not in ${dir}`);
      }
    }
  });
}

/** Log lines go to stdout with the command's output: keep them to warnings unless LOG_LEVEL asks for more. */
function cliLogger(config: Config): Logger {
  return createLogger({ level: config.logLevel === 'info' ? 'warn' : config.logLevel, name: 'migrate' });
}

async function withClient(
  config: Config,
  logger: Logger,
  fn: (client: ClickHouseClient) => Promise<void>,
): Promise<void> {
  const client = createClickHouse({ config, logger, application: 'tokenledger-migrate' });
  try {
    await fn(client);
  } finally {
    await client.close();
  }
}
