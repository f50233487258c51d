/**
 * Budgets in ClickHouse (the `budgets` table of migrations/0002, a ReplacingMergeTree read with FINAL) and in
 * YAML files, and spend to date from the `usage_minute` rollup. docs/budgets.md describes the file format.
 *
 * Validation is pure (`budgetFromInput`, `parseBudgetsYaml`, `parseUsd`): every problem is reported at once,
 * each naming the field and the value. User values reach ClickHouse only as query parameters or insert data.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { TokenledgerError } from '../../lib/errors';
import { BUDGET_PERIODS, BUDGET_UNITS } from '../../schemas/alert/types';
import type { BudgetPeriod, BudgetUnit } from '../../schemas/alert/types';
import { BUDGET_SCOPES } from './budgets';
import type { Budget, BudgetScope } from './budgets';
import { assertTimeZone, canonicalTimeZone, periodBounds } from './periods';

export const DEFAULT_THRESHOLDS: readonly number[] = [50, 80, 100];
export const DEFAULT_TIME_ZONE = 'UTC';
const INT64_MAX = 9_223_372_036_854_775_807n;
const NANO = 1_000_000_000n;

/** A USD amount: digits, optionally a point and at most 9 decimals (nano-USD). */
const USD = /^(0|[1-9]\d*)(?:\.(\d{1,9}))?$/;

/**
 * Exact USD → nano-USD, from a decimal string or a number as YAML reads it ("0.1" → 100000000n, no float
 * multiplication). Undefined when not a positive amount with at most 9 decimals that fits an Int64.
 */
export function parseUsd(value: string | number): bigint | undefined {
  const text = typeof value === 'number' ? (Number.isFinite(value) ? String(value) : '') : value.trim();
  const m = USD.exec(text);
  if (m === null) return undefined;
  const nano = BigInt(m[1] ?? '0') * NANO + BigInt((m[2] ?? '').padEnd(9, '0'));
  return nano > 0n && nano <= INT64_MAX ? nano : undefined;
}

/** A positive whole number of tokens that fits an Int64; numbers must be exact (≤ 2^53). */
export function parseTokens(value: string | number): bigint | undefined {
  if (typeof value === 'number') {
    return Number.isSafeInteger(value) && value > 0 ? BigInt(value) : undefined;
  }
  const text = value.trim();
  if (!/^[1-9]\d*$/.test(text)) return undefined;
  const n = BigInt(text);
  return n <= INT64_MAX ? n : undefined;
}

/** Nano-USD as an exact decimal string of dollars: 5000000000000n → "5000", 100000000n → "0.1". */
export function usdDecimal(nano: bigint): string {
  const sign = nano < 0n ? '-' : '';
  const abs = nano < 0n ? -nano : nano;
  const frac = (abs % NANO).toString().padStart(9, '0').replace(/0+$/, '');
  return `${sign}${abs / NANO}${frac === '' ? '' : `.${frac}`}`;
}

/** The id a budget gets when none is given. */
export function defaultBudgetId(scope: BudgetScope, scopeId: string, period: BudgetPeriod): string {
  return `${scope}:${scopeId}:${period}`;
}

const PRINTABLE = /^[^\p{C}]*$/u;
const ID_MESSAGE = 'is not a valid id (1 to 200 characters, no leading or trailing spaces)';
const scopeId = z
  .string({ error: ID_MESSAGE })
  .min(1, ID_MESSAGE)
  .max(200, ID_MESSAGE)
  .refine((s) => s === s.trim() && PRINTABLE.test(s), ID_MESSAGE);
const BUDGET_ID_MESSAGE = 'is not a valid budget id (1 to 200 characters, no spaces)';
const USD_MESSAGE =
  'is not a positive amount of USD (a decimal with at most 9 decimals, like "5000" or "12.50")';
const TOKENS_MESSAGE = 'is not a positive whole number of tokens (in YAML, quote numbers above 2^53)';
const ZONE_MESSAGE = 'is not an IANA time zone name (like "UTC", "Europe/Berlin", "America/New_York")';
const PERCENT_MESSAGE = 'is not a whole percent from 1 to 1000';

/** One budget as written in a file (and as the `budgets set` flags are checked). */
const entrySchema = z.strictObject({
  id: z
    .string({ error: BUDGET_ID_MESSAGE })
    .regex(/^[^\s\p{C}]{1,200}$/u, BUDGET_ID_MESSAGE)
    .optional(),
  team: scopeId.optional(),
  project: scopeId.optional(),
  user: scopeId.optional(),
  period: z.enum(BUDGET_PERIODS, { error: `is not one of ${BUDGET_PERIODS.join(', ')}` }),
  amount_usd: z
    .union([z.string(), z.number()], { error: USD_MESSAGE })
    .refine((v) => parseUsd(v) !== undefined, USD_MESSAGE)
    .optional(),
  tokens: z
    .union([z.string(), z.number()], { error: TOKENS_MESSAGE })
    .refine((v) => parseTokens(v) !== undefined, TOKENS_MESSAGE)
    .optional(),
  time_zone: z
    .string({ error: ZONE_MESSAGE })
    .refine((tz) => canonicalTimeZone(tz) !== undefined, ZONE_MESSAGE)
    .optional(),
  thresholds: z
    .array(
      z
        .number({ error: PERCENT_MESSAGE })
        .int({ error: PERCENT_MESSAGE })
        .min(1, { error: PERCENT_MESSAGE })
        .max(1000, { error: PERCENT_MESSAGE }),
      { error: 'is not a list of percents (like [50, 80, 100])' },
    )
    .optional(),
  description: z
    .string({ error: 'is not a text' })
    .max(500, { error: 'is longer than 500 characters' })
    .optional(),
});

const fileSchema = z.strictObject({
  time_zone: z
    .string({ error: ZONE_MESSAGE })
    .refine((tz) => canonicalTimeZone(tz) !== undefined, ZONE_MESSAGE)
    .optional(),
  budgets: z.array(z.unknown(), { error: 'is not a list of budgets' }),
});

/** How a field is named in messages: "budgets[2].period" in a file, "--period" on the command line. */
export type FieldNamer = (path: readonly PropertyKey[]) => string;

function show(value: unknown): string {
  const s = JSON.stringify(value) as string | undefined; // undefined for undefined, functions, symbols
  if (s === undefined) return String(value);
  return s.length > 80 ? `${s.slice(0, 80)}…` : s;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v = root;
  for (const k of path) {
    v = typeof v === 'object' && v !== null ? (v as Record<PropertyKey, unknown>)[k] : undefined;
  }
  return v;
}

function describe(raw: unknown, issues: readonly z.core.$ZodIssue[], name: FieldNamer): string[] {
  return issues.flatMap((issue) => {
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map(
        (k) => `${name([...issue.path, k])}: unknown field (value ${show(valueAt(raw, [...issue.path, k]))})`,
      );
    }
    const value = valueAt(raw, issue.path);
    return [
      `${name(issue.path)}: ${value === undefined ? 'is required' : `${show(value)} ${issue.message}`}`,
    ];
  });
}

function exactlyOne(
  raw: Record<string, unknown>,
  keys: readonly string[],
  keyName: (key: string) => string,
): string | undefined {
  const given = keys.filter((k) => raw[k] !== undefined);
  if (given.length === 1) return undefined;
  const got = given.length === 0 ? 'none' : given.map(keyName).join(' and ');
  return `needs exactly one of ${keys.map(keyName).join(', ')}, got ${got}`;
}

export interface InputNames {
  /** names a field by its path in problems */
  readonly name: FieldNamer;
  /** names the entry, for problems that concern several fields */
  readonly entry: string;
  /** names a field in such problems (default: the field itself) */
  readonly key?: (key: string) => string;
}

/**
 * Checks one budget in the file shape (`{ id?, team|project|user, period, amount_usd|tokens, time_zone?,
 * thresholds?, description? }`) and builds the Budget, or returns every problem found.
 */
export function budgetFromInput(
  raw: unknown,
  { name, entry: entryName, key = (k) => k }: InputNames,
  defaults: { time_zone?: string } = {},
): { budget: Budget | undefined; problems: string[] } {
  const parsed = entrySchema.safeParse(raw);
  const problems = parsed.success ? [] : describe(raw, parsed.error.issues, name);
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return {
      budget: undefined,
      problems: [`${entryName}: ${show(raw)} is not a budget (a mapping of fields)`],
    };
  }
  const record = raw as Record<string, unknown>;
  const scopeProblem = exactlyOne(record, BUDGET_SCOPES, key);
  if (scopeProblem !== undefined) problems.push(`${entryName}: ${scopeProblem}`);
  const amountProblem = exactlyOne(record, ['amount_usd', 'tokens'], key);
  if (amountProblem !== undefined) problems.push(`${entryName}: ${amountProblem}`);
  if (!parsed.success || problems.length > 0) return { budget: undefined, problems };

  const e = parsed.data;
  const scope = BUDGET_SCOPES.find((s) => e[s] !== undefined) ?? 'team';
  const id = e[scope] ?? '';
  const unit: BudgetUnit = e.amount_usd !== undefined ? 'usd' : 'tokens';
  const amount = e.amount_usd !== undefined ? parseUsd(e.amount_usd) : parseTokens(e.tokens ?? '');
  return {
    budget: {
      budget_id: e.id ?? defaultBudgetId(scope, id, e.period),
      scope,
      scope_id: id,
      period: e.period,
      time_zone: assertTimeZone(e.time_zone ?? defaults.time_zone ?? DEFAULT_TIME_ZONE),
      unit,
      amount: amount ?? 0n,
      thresholds: [...new Set(e.thresholds ?? DEFAULT_THRESHOLDS)].sort((a, b) => a - b),
      description: e.description ?? '',
    },
    problems: [],
  };
}

/** "budgets[2].period" */
const pathName = (path: readonly PropertyKey[]): string =>
  path.map((k, i) => (typeof k === 'number' ? `[${k}]` : `${i === 0 ? '' : '.'}${String(k)}`)).join('');

/**
 * Parses a budgets YAML file. All or nothing: throws one CONFIG_INVALID error listing every problem (each
 * with the file, the field path and the value) when any entry is bad, or when two entries have the same id.
 */
export function parseBudgetsYaml(text: string, file: string): Budget[] {
  const fail = (problems: string[]): never => {
    throw new TokenledgerError(
      'CONFIG_INVALID',
      `invalid budgets file ${file} (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n  ${problems.join('\n  ')}`,
      { context: { file } },
    );
  };
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    fail([`not valid YAML: ${(err as Error).message.split('\n')[0] ?? ''}`]);
  }
  const top = fileSchema.safeParse(raw);
  if (!top.success) {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      fail([`${show(raw ?? null)} is not a mapping with a "budgets:" list`]);
    }
    fail(describe(raw, top.error.issues, pathName));
  }
  const { budgets: entries, time_zone } = top.success ? top.data : { budgets: [], time_zone: undefined };
  const problems: string[] = [];
  if (entries.length === 0) problems.push('budgets: the list is empty');
  const budgets: Budget[] = [];
  const seen = new Map<string, number>();
  entries.forEach((entry, i) => {
    const names = {
      name: (p: readonly PropertyKey[]) => pathName(['budgets', i, ...p]),
      entry: `budgets[${i}]`,
    };
    const r = budgetFromInput(entry, names, time_zone === undefined ? {} : { time_zone });
    problems.push(...r.problems);
    if (r.budget === undefined) return;
    const first = seen.get(r.budget.budget_id);
    if (first !== undefined) {
      problems.push(`budgets[${i}]: id ${show(r.budget.budget_id)} is also the id of budgets[${first}]`);
    } else seen.set(r.budget.budget_id, i);
    budgets.push(r.budget);
  });
  if (problems.length > 0) fail(problems);
  return budgets;
}

// ---- ClickHouse -------------------------------------------------------------------------------------------

interface BudgetRow {
  budget_id: string;
  scope: string;
  scope_id: string;
  period: string;
  time_zone: string;
  unit: string;
  amount: string;
  thresholds: number[];
  description: string;
}

const SELECT_BUDGETS = `
SELECT budget_id, scope, scope_id, period, time_zone, unit, toString(amount) AS amount, thresholds, description
FROM budgets FINAL
WHERE deleted = 0`;

function rowToBudget(r: BudgetRow): Budget | string {
  const scope = BUDGET_SCOPES.find((s) => s === r.scope);
  const period = BUDGET_PERIODS.find((p) => p === r.period);
  const unit = BUDGET_UNITS.find((u) => u === r.unit);
  const zone = canonicalTimeZone(r.time_zone);
  const amount = /^-?\d+$/.test(r.amount) ? BigInt(r.amount) : 0n;
  if (scope === undefined) return `scope ${show(r.scope)} is not one of ${BUDGET_SCOPES.join(', ')}`;
  if (period === undefined) return `period ${show(r.period)} is not one of ${BUDGET_PERIODS.join(', ')}`;
  if (unit === undefined) return `unit ${show(r.unit)} is not one of ${BUDGET_UNITS.join(', ')}`;
  if (zone === undefined) return `time_zone ${show(r.time_zone)} ${ZONE_MESSAGE}`;
  if (amount <= 0n) return `amount ${r.amount} is not positive`;
  return {
    budget_id: r.budget_id,
    scope,
    scope_id: r.scope_id,
    period,
    time_zone: zone,
    unit,
    amount,
    thresholds: [...r.thresholds].sort((a, b) => a - b),
    description: r.description,
  };
}

/**
 * The budgets in force (newest version of each id, deletions removed), by id. A row that is not a valid
 * budget (written by hand, or by a newer version) is skipped and passed to `onInvalid`.
 */
export async function loadBudgets(
  ch: ClickHouseClient,
  onInvalid: (budgetId: string, problem: string) => void = () => undefined,
): Promise<Budget[]> {
  const rs = await ch.query({ query: `${SELECT_BUDGETS}\nORDER BY budget_id`, format: 'JSONEachRow' });
  const budgets: Budget[] = [];
  for (const row of await rs.json<BudgetRow>()) {
    const b = rowToBudget(row);
    if (typeof b === 'string') onInvalid(row.budget_id, b);
    else budgets.push(b);
  }
  return budgets;
}

/** `YYYY-MM-DD hh:mm:ss.sss` (UTC), how DateTime64(3) columns are written. */
const dateTime64 = (ms: number): string => new Date(ms).toISOString().replace('T', ' ').replace('Z', '');

/** The newest version (ms) and state of each of these ids, deleted or not. */
async function versions(
  ch: ClickHouseClient,
  ids: readonly string[],
): Promise<Map<string, { updatedAt: number; deleted: boolean }>> {
  const rs = await ch.query({
    query: `SELECT budget_id, toUnixTimestamp64Milli(max(updated_at)) AS version_ms,
              argMax(deleted, updated_at) AS is_deleted
            FROM budgets WHERE budget_id IN {ids:Array(String)} GROUP BY budget_id`,
    query_params: { ids },
    format: 'JSONEachRow',
  });
  // Int64 arrives as a string (output_format_json_quote_64bit_integers), UInt8 as a number.
  const rows = await rs.json<{ budget_id: string; version_ms: string; is_deleted: number }>();
  return new Map(
    rows.map((r) => [r.budget_id, { updatedAt: Number(r.version_ms), deleted: r.is_deleted === 1 }]),
  );
}

async function insertRows(ch: ClickHouseClient, rows: Record<string, unknown>[]): Promise<void> {
  // One insert: a single block, so a file's budgets are all written or none is.
  await ch.insert({
    table: 'budgets',
    values: rows,
    format: 'JSONEachRow',
    clickhouse_settings: { async_insert: 0 },
  });
}

function toRow(b: Budget, updatedAt: number): Record<string, unknown> {
  return {
    budget_id: b.budget_id,
    scope: b.scope,
    scope_id: b.scope_id,
    period: b.period,
    time_zone: b.time_zone,
    unit: b.unit,
    amount: b.amount.toString(),
    thresholds: b.thresholds,
    description: b.description,
    updated_at: dateTime64(updatedAt),
    deleted: 0,
  };
}

/**
 * Writes (creates or replaces) the budgets in one insert. Each row's version is later than any earlier row of
 * the same id, even if the clock of whoever wrote that one ran ahead. Returns which ids were new and which
 * replaced a budget in force.
 */
export async function upsertBudgets(
  ch: ClickHouseClient,
  budgets: readonly Budget[],
  nowMs: number = Date.now(),
): Promise<{ created: string[]; updated: string[] }> {
  if (budgets.length === 0) return { created: [], updated: [] };
  const known = await versions(
    ch,
    budgets.map((b) => b.budget_id),
  );
  const created: string[] = [];
  const updated: string[] = [];
  const rows = budgets.map((b) => {
    const v = known.get(b.budget_id);
    (v === undefined || v.deleted ? created : updated).push(b.budget_id);
    return toRow(b, Math.max(nowMs, (v?.updatedAt ?? 0) + 1));
  });
  await insertRows(ch, rows);
  return { created, updated };
}

/** Deletes a budget (a row with deleted = 1). Returns false, writing nothing, when no such budget is in force. */
export async function deleteBudget(
  ch: ClickHouseClient,
  budgetId: string,
  nowMs: number = Date.now(),
): Promise<boolean> {
  const rs = await ch.query({
    query: `${SELECT_BUDGETS} AND budget_id = {id:String}`,
    query_params: { id: budgetId },
    format: 'JSONEachRow',
  });
  const [row] = await rs.json<BudgetRow>();
  if (row === undefined) return false;
  const v = (await versions(ch, [budgetId])).get(budgetId);
  // The row as it is, even one that is not a valid budget: deleting is how such a row is got rid of.
  await insertRows(ch, [
    { ...row, updated_at: dateTime64(Math.max(nowMs, (v?.updatedAt ?? 0) + 1)), deleted: 1 },
  ]);
  return true;
}

/** The rollup column each scope is matched on (a fixed list: never a user value in SQL). */
const SCOPE_COLUMN: Readonly<Record<BudgetScope, string>> = {
  team: 'team_id',
  project: 'project_id',
  user: 'user_id',
};

export interface SpendToDate {
  /** the period containing the instant asked for (ms, UTC) */
  readonly start: number;
  readonly end: number;
  /** nano-USD or tokens (input + output), by the budget's unit */
  readonly spent: bigint;
}

/**
 * Spend in the budget's period containing `atMs`, from the minute rollup: exact (plain sums of a
 * SummingMergeTree, no FINAL) and valid in every zone, since every period starts on a whole minute. The
 * rollup keeps 35 days, more than the longest period.
 */
export async function spendToDate(ch: ClickHouseClient, budget: Budget, atMs: number): Promise<SpendToDate> {
  const { start, end } = periodBounds(atMs, budget.period, budget.time_zone);
  const measure = budget.unit === 'usd' ? 'cost_nanousd' : 'input_tokens + output_tokens';
  const rs = await ch.query({
    query: `SELECT toString(sum(${measure})) AS spent FROM usage_minute
            WHERE ${SCOPE_COLUMN[budget.scope]} = {id:String}
              AND minute >= toDateTime({start:UInt32}, 'UTC') AND minute < toDateTime({end:UInt32}, 'UTC')`,
    query_params: { id: budget.scope_id, start: Math.floor(start / 1000), end: Math.ceil(end / 1000) },
    format: 'JSONEachRow',
  });
  const [row] = await rs.json<{ spent: string }>();
  return { start, end, spent: BigInt(row?.spent ?? '0') };
}
