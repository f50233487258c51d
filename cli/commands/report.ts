/**
 * `tokenledger report`: spend, requests and tokens by team, user, model or provider over a window, as a
 * terminal table, CSV, JSON or a self-contained HTML page (docs/report.md). Bad flags exit 2 naming the flag
 * and the value; the team filter reaches ClickHouse only as a query parameter.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from '../../lib/config';
import type { Config } from '../../lib/config';
import { createClickHouse } from '../../lib/clickhouse';
import type { ClickHouseClient } from '../../lib/clickhouse';
import { TokenledgerError, classifyClickHouseError } from '../../lib/errors';
import { createLogger } from '../../lib/logger';
import { reachable } from '../clickhouse';
import { say } from '../output';
import {
  REPORT_DIMENSIONS,
  REPORT_FORMATS,
  collectReport,
  parseInstant,
  renderCsv,
  renderHtml,
  renderJson,
  renderTable,
} from '../report';
import type { ReportData, ReportDimension, ReportFormat } from '../report';

interface ReportFlags {
  since: string;
  until: string;
  by: string;
  team?: string;
  format: string;
  out?: string;
}

export interface ReportRequest {
  readonly since: number;
  readonly until: number;
  readonly by: ReportDimension;
  readonly team: string | undefined;
  readonly format: ReportFormat;
  readonly out: string | undefined;
}

function oneOf<T extends string>(flag: string, value: string, allowed: readonly T[]): T {
  const found = allowed.find((a) => a === value);
  if (found === undefined) {
    throw new TokenledgerError(
      'CLI_USAGE',
      `${flag} must be one of ${allowed.join(', ')}; got ${JSON.stringify(value)}`,
    );
  }
  return found;
}

/** Checks the flags (every problem is a CLI_USAGE error naming the flag and the value). Pure. */
export function parseReportFlags(flags: ReportFlags, now: number): ReportRequest {
  const since = parseInstant(flags.since, '--since', now);
  const until = parseInstant(flags.until, '--until', now);
  if (since >= until) {
    throw new TokenledgerError(
      'CLI_USAGE',
      `--since ${JSON.stringify(flags.since)} (${new Date(since).toISOString()}) must be before --until ${JSON.stringify(flags.until)} (${new Date(until).toISOString()})`,
    );
  }
  if (flags.team !== undefined && flags.team.trim() === '') {
    throw new TokenledgerError('CLI_USAGE', `--team must not be empty; got ${JSON.stringify(flags.team)}`);
  }
  if (flags.out !== undefined && flags.out.trim() === '') {
    throw new TokenledgerError('CLI_USAGE', `--out must be a file path; got ${JSON.stringify(flags.out)}`);
  }
  return {
    since,
    until,
    by: oneOf('--by', flags.by, REPORT_DIMENSIONS),
    team: flags.team,
    format: oneOf('--format', flags.format, REPORT_FORMATS),
    out: flags.out,
  };
}

export function registerReport(program: Command): void {
  program
    .command('report')
    .description(
      'spend, requests and tokens by team, user, model or provider over a window: table, CSV, JSON or an HTML page',
    )
    .option(
      '--since <when>',
      'start: 90m, 24h, 7d, 2w back from now, a UTC date 2026-11-01, or 2026-11-01T12:00Z',
      '7d',
    )
    .option('--until <when>', 'end (exclusive), same forms as --since', 'now')
    .option('--by <dimension>', `break down by ${REPORT_DIMENSIONS.join(', ')}`, 'team')
    .option('--team <team>', 'only this team')
    .option('--format <format>', REPORT_FORMATS.join(', '), 'table')
    .option(
      '--out <file>',
      'write to this file instead of stdout (html: default <TOKENLEDGER_HOME>/reports/report-<time>.html)',
    )
    .addHelpText(
      'after',
      `
Examples:
  tokenledger report                                   spend by team over the last 7 days
  tokenledger report --since 24h --by model            the last day by model
  tokenledger report --since 2026-11-01 --by user --team search --format csv > search-users.csv
  tokenledger report --since 7d --format html          writes a self-contained page and prints its path

The window is widened to whole rows of the rollup it reads (a minute, an hour or a day, by its length), so
totals are exact sums; the report states the window it read. Money is formatted from integer nano-USD (CSV and
JSON carry exact cost_usd and cost_nanousd). The HTML page has no scripts and fetches nothing: spend over time
per team with the cost-spike alerts marked, each budget's burn-down with its forecast, the model mix, the top
users and the alerts. See docs/report.md.`,
    )
    .action(async (flags: ReportFlags) => {
      await runReport(parseReportFlags(flags, Date.now()));
    });
}

const RENDER: Readonly<Record<ReportFormat, (d: ReportData) => string>> = {
  table: renderTable,
  csv: renderCsv,
  json: renderJson,
  html: renderHtml,
};

/** "report-2026-11-29T112826Z.html" */
function defaultOut(config: Config, at: number): string {
  const stamp = new Date(at)
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/:/g, '');
  return path.join(config.local.home, 'reports', `report-${stamp}.html`);
}

async function runReport(r: ReportRequest): Promise<void> {
  await withClickHouse('report', async (ch, config) => {
    const data = await collectReport(ch, {
      since: r.since,
      until: r.until,
      by: r.by,
      ...(r.team === undefined ? {} : { team: r.team }),
    });
    const text = RENDER[r.format](data);
    const out = r.out ?? (r.format === 'html' ? defaultOut(config, data.generatedAt) : undefined);
    if (out === undefined) {
      writeStdout(text);
      return;
    }
    try {
      fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
      fs.writeFileSync(out, text);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      throw new TokenledgerError('CLI_USAGE', `--out ${JSON.stringify(out)}: cannot write (${code})`, {
        cause: err,
      });
    }
    say(path.resolve(out));
  });
}

/**
 * Writes command output to stdout; a reader that stops early (`| head`) closes the pipe, which ends the
 * output quietly instead of crashing on EPIPE.
 */
export function writeStdout(text: string): void {
  if (process.stdout.listenerCount('error') === 0) {
    process.stdout.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') throw err;
    });
  }
  process.stdout.write(text);
}

/** ClickHouse error codes (src/Common/ErrorCodes.cpp) that mean "not migrated yet". */
const UNKNOWN_TABLE = '60';
const UNKNOWN_DATABASE = '81';

/**
 * Runs `fn` with a client of the configured database and closes it; "nothing listens" and "not migrated" become
 * messages that say what to do.
 */
export async function withClickHouse(
  name: string,
  fn: (ch: ClickHouseClient, config: Config) => Promise<void>,
  { migrated = true }: { migrated?: boolean } = {},
): Promise<void> {
  const config = loadConfig(process.env, ['clickhouse', 'local', 'log']);
  const logger = createLogger({ level: config.logLevel === 'info' ? 'warn' : config.logLevel, name });
  const ch = createClickHouse({ config, logger, application: `tokenledger-${name}` });
  try {
    await reachable(config, () => fn(ch, config));
  } catch (err) {
    const failure = classifyClickHouseError(err);
    if (
      migrated &&
      failure.kind === 'server' &&
      (failure.code === UNKNOWN_TABLE || failure.code === UNKNOWN_DATABASE)
    ) {
      throw new TokenledgerError(
        'CLICKHOUSE_QUERY_FAILED',
        `database ${config.clickhouse.database} lacks the tokenledger tables: run \`tokenledger migrate up\` first (${err instanceof Error ? (err.message.split('\n')[0] ?? '') : String(err)})`,
        { cause: err },
      );
    }
    throw err;
  } finally {
    await ch.close();
  }
}
