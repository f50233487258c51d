/**
 * `tokenledger budgets set|list|delete|load`: the spend budgets the detector alerts on, stored in ClickHouse
 * (the `budgets` table). Bad flags and bad files exit 2 naming the flag or the entry, field and value; nothing
 * is written then. docs/budgets.md describes the semantics and the YAML format.
 */
import fs from 'node:fs';
import type { Command } from 'commander';
import { loadConfig } from '../../lib/config';
import type { Config } from '../../lib/config';
import { createClickHouse } from '../../lib/clickhouse';
import type { ClickHouseClient } from '../../lib/clickhouse';
import { TokenledgerError, classifyClickHouseError } from '../../lib/errors';
import { createLogger } from '../../lib/logger';
import { formatUsd } from '../../consumers/detect/alerts';
import type { Budget } from '../../consumers/detect/budgets';
import {
  DEFAULT_THRESHOLDS,
  budgetFromInput,
  deleteBudget,
  loadBudgets,
  parseBudgetsYaml,
  spendToDate,
  upsertBudgets,
  usdDecimal,
} from '../../consumers/detect/budget-store';
import { periodLabel } from '../../consumers/detect/periods';
import { reachable } from '../clickhouse';
import { say, table } from '../output';

interface SetOptions {
  team?: string;
  project?: string;
  user?: string;
  period?: string;
  usd?: string;
  tokens?: string;
  tz: string;
  thresholds?: string;
  id?: string;
  description?: string;
}

/** The flag each field of the file format is set with. */
const FLAGS: Readonly<Record<string, string>> = {
  id: '--id',
  team: '--team',
  project: '--project',
  user: '--user',
  period: '--period',
  amount_usd: '--usd',
  tokens: '--tokens',
  time_zone: '--tz',
  thresholds: '--thresholds',
  description: '--description',
};
const flag = (key: string): string => FLAGS[key] ?? key;

export function registerBudgets(program: Command): void {
  const budgets = program
    .command('budgets')
    .description('spend budgets per team, project or user, per day, week or month, in USD or tokens')
    .addHelpText(
      'after',
      `
Budgets live in the ClickHouse table \`budgets\` of the configured database (CLICKHOUSE_URL /
CLICKHOUSE_DATABASE; run \`tokenledger migrate up\` first). The detector alerts when a budget's spend in the
current period crosses a threshold (default 50, 80, 100 %), burns fast (multiwindow burn rate), or is on pace
to run out before the period ends. Periods are calendar days, weeks (Monday to Sunday) or months in the
budget's time zone. See docs/budgets.md.`,
    );
  budgets
    .command('set')
    .description('create or replace one budget')
    .option('--team <id>', 'the team the budget is for')
    .option('--project <id>', 'the project the budget is for (across teams)')
    .option('--user <id>', 'the user the budget is for (across teams)')
    .option('--period <period>', 'day, week (Monday to Sunday) or month')
    .option('--usd <amount>', 'USD per period, a decimal like 5000 or 12.50')
    .option('--tokens <n>', 'tokens (input + output) per period')
    .option('--tz <zone>', 'IANA time zone the calendar period follows', 'UTC')
    .option(
      '--thresholds <percents>',
      `alert thresholds, comma-separated (default ${DEFAULT_THRESHOLDS.join(',')})`,
    )
    .option('--id <id>', 'the budget id (default <scope>:<id>:<period>, e.g. team:search:month)')
    .option('--description <text>', 'free text shown with the budget')
    .addHelpText(
      'after',
      `
Give exactly one of --team, --project, --user and exactly one of --usd, --tokens. Setting an id that exists
replaces that budget; spend already recorded is kept.

Examples:
  tokenledger budgets set --team search --period month --usd 5000 --tz Europe/Berlin
  tokenledger budgets set --project checkout --period week --tokens 200000000 --thresholds 80,100
  tokenledger budgets set --user alice@example.com --period day --usd 25 --id alice-daily`,
    )
    .action(async (opts: SetOptions) => {
      await setBudget(opts);
    });
  budgets
    .command('list')
    .description('list the budgets with their spend so far in the current period')
    .option('--json', 'print JSON instead of a table')
    .action(async (opts: { json?: boolean }) => {
      await listBudgets(opts.json === true);
    });
  budgets
    .command('delete')
    .description('delete one budget')
    .argument('<id>', 'the budget id (see `tokenledger budgets list`)')
    .action(async (id: string) => {
      await removeBudget(id);
    });
  budgets
    .command('load')
    .description('create or replace the budgets in a YAML file, all or nothing')
    .argument('<file>', 'YAML file with a `budgets:` list')
    .option('--check', 'only validate the file, write nothing')
    .addHelpText(
      'after',
      `
File format (docs/budgets.md):
  time_zone: Europe/Berlin          # optional default for the entries below (default UTC)
  budgets:
    - team: search                  # exactly one of team, project, user
      period: month                 # day, week or month
      amount_usd: "5000"            # or tokens: 2000000
      thresholds: [50, 80, 100]     # optional
    - id: alice-daily               # optional; default <scope>:<id>:<period>
      user: alice@example.com
      period: day
      amount_usd: "25.50"
      time_zone: America/New_York
      description: contractor cap

Budgets not in the file are left as they are. If any entry is bad, every problem is listed and nothing is
written (exit 2).`,
    )
    .action(async (file: string, opts: { check?: boolean }) => {
      await loadFile(file, opts.check === true);
    });
}

function budgetFromFlags(opts: SetOptions): Budget {
  const thresholds = opts.thresholds
    ?.split(',')
    .map((t) => t.trim())
    .map((t) => (/^\d+$/.test(t) ? Number(t) : t));
  const raw = Object.fromEntries(
    Object.entries({
      id: opts.id,
      team: opts.team,
      project: opts.project,
      user: opts.user,
      period: opts.period,
      amount_usd: opts.usd,
      tokens: opts.tokens,
      time_zone: opts.tz,
      thresholds,
      description: opts.description,
    }).filter(([, v]) => v !== undefined),
  );
  const { budget, problems } = budgetFromInput(raw, {
    name: (path) => flag(String(path[0])),
    entry: 'options',
    key: flag,
  });
  if (budget === undefined) {
    const n = problems.length;
    throw new TokenledgerError(
      'CLI_USAGE',
      `invalid budget (${n} problem${n === 1 ? '' : 's'}):\n  ${problems.join('\n  ')}`,
    );
  }
  return budget;
}

const groupDigits = (n: bigint): string => n.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
const amountText = (b: Budget, v: bigint): string =>
  b.unit === 'usd' ? formatUsd(v) : `${groupDigits(v)} tokens`;
const scopeText = (b: Budget): string => `${b.scope} ${b.scope_id}`;

async function setBudget(opts: SetOptions): Promise<void> {
  const budget = budgetFromFlags(opts);
  await withClickHouse(async (ch) => {
    const { created } = await upsertBudgets(ch, [budget]);
    say(
      `${created.length > 0 ? 'created' : 'replaced'} budget ${budget.budget_id}: ${scopeText(budget)}, ${amountText(budget, budget.amount)} per ${budget.period} (${budget.time_zone}), alerts at ${budget.thresholds.map((t) => `${t}%`).join(', ') || 'no thresholds'}`,
    );
  });
}

async function removeBudget(id: string): Promise<void> {
  await withClickHouse(async (ch) => {
    if (!(await deleteBudget(ch, id))) {
      throw new TokenledgerError(
        'CLI_USAGE',
        `no budget with id ${JSON.stringify(id)}: \`tokenledger budgets list\` shows the ids`,
      );
    }
    say(`deleted budget ${id}`);
  });
}

function readFile(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new TokenledgerError(
      'CONFIG_INVALID',
      `budgets file ${JSON.stringify(file)}: cannot read (${code})`,
      {
        cause: err,
      },
    );
  }
}

async function loadFile(file: string, checkOnly: boolean): Promise<void> {
  const budgets = parseBudgetsYaml(readFile(file), file);
  if (checkOnly) {
    say(`${file}: ${budgets.length} valid budget(s): ${budgets.map((b) => b.budget_id).join(', ')}`);
    return;
  }
  await withClickHouse(async (ch) => {
    const { created, updated } = await upsertBudgets(ch, budgets);
    say(
      `loaded ${budgets.length} budget(s) from ${file}: ${created.length} created, ${updated.length} replaced`,
    );
  });
}

interface ListedBudget {
  budget: Budget;
  start: number;
  end: number;
  spent: bigint;
}

/** Percent of the amount, two decimals (ratios for people; the sums themselves stay exact). */
const percentOf = (spent: bigint, amount: bigint): number => Number((spent * 10_000n) / amount) / 100;

async function listBudgets(json: boolean): Promise<void> {
  await withClickHouse(async (ch) => {
    const invalid: string[] = [];
    const budgets = await loadBudgets(ch, (id, problem) => invalid.push(`${id}: ${problem}`));
    const now = Date.now();
    const listed: ListedBudget[] = [];
    for (const budget of budgets) listed.push({ budget, ...(await spendToDate(ch, budget, now)) });
    for (const line of invalid)
      process.stderr.write(`tokenledger: warning: skipped invalid budget ${line}\n`);
    if (json) {
      say(JSON.stringify(listed.map(toJson), null, 2));
      return;
    }
    if (listed.length === 0) {
      say('no budgets: add one with `tokenledger budgets set` or `tokenledger budgets load`');
      return;
    }
    say(
      table([
        ['id', 'scope', 'period', 'time zone', 'amount', 'spent', 'spent %', 'thresholds', 'description'],
        ...listed.map(({ budget: b, start, spent }) => [
          b.budget_id,
          scopeText(b),
          periodLabel(start, b.period, b.time_zone),
          b.time_zone,
          amountText(b, b.amount),
          amountText(b, spent),
          `${percentOf(spent, b.amount).toFixed(2)}%`,
          b.thresholds.join(',') || '-',
          b.description,
        ]),
      ]),
    );
  });
}

function toJson({ budget: b, start, end, spent }: ListedBudget): Record<string, unknown> {
  return {
    budget_id: b.budget_id,
    scope: b.scope,
    scope_id: b.scope_id,
    period: b.period,
    time_zone: b.time_zone,
    unit: b.unit,
    amount: b.amount.toString(),
    ...(b.unit === 'usd' ? { amount_usd: usdDecimal(b.amount) } : {}),
    thresholds: b.thresholds,
    description: b.description,
    period_label: periodLabel(start, b.period, b.time_zone),
    period_start: new Date(start).toISOString(),
    period_end: new Date(end).toISOString(),
    spent: spent.toString(),
    ...(b.unit === 'usd' ? { spent_usd: usdDecimal(spent) } : {}),
    spent_percent: percentOf(spent, b.amount),
  };
}

/** ClickHouse error codes (src/Common/ErrorCodes.cpp) that mean "not migrated yet". */
const UNKNOWN_TABLE = '60';
const UNKNOWN_DATABASE = '81';

async function withClickHouse(fn: (ch: ClickHouseClient) => Promise<void>): Promise<void> {
  const config: Config = loadConfig(process.env, ['clickhouse', 'local', 'log']);
  const logger = createLogger({
    level: config.logLevel === 'info' ? 'warn' : config.logLevel,
    name: 'budgets',
  });
  const ch = createClickHouse({ config, logger, application: 'tokenledger-budgets' });
  try {
    await reachable(config, () => fn(ch));
  } catch (err) {
    const failure = classifyClickHouseError(err);
    if (failure.kind === 'server' && (failure.code === UNKNOWN_TABLE || failure.code === UNKNOWN_DATABASE)) {
      throw new TokenledgerError(
        'CLICKHOUSE_QUERY_FAILED',
        `no budgets table in database ${config.clickhouse.database}: run \`tokenledger migrate up\` first`,
        { cause: err },
      );
    }
    throw err;
  } finally {
    await ch.close();
  }
}
