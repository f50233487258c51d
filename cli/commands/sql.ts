/**
 * `tokenledger sql "<query>"`: runs one read-only query against the configured database and prints the result
 * as an aligned table, CSV or JSON (docs/sql.md). Read-only twice over: the statement must start with a read
 * keyword, and it runs with readonly = 2 (the server refuses writes and DDL, and refuses to change `readonly`).
 * Values go in as ClickHouse query parameters: `--param team=search` for `{team:String}` in the query.
 */
import { Option } from 'commander';
import type { Command } from 'commander';
import { ClickHouseError } from '@clickhouse/client';
import { TokenledgerError } from '../../lib/errors';
import { alignedTable, csv, toJson } from '../report';
import { withClickHouse, writeStdout } from './report';

export const SQL_FORMATS = ['table', 'csv', 'json', 'jsonl'] as const;
export type SqlFormat = (typeof SQL_FORMATS)[number];

/** The first keywords of the statements `tokenledger sql` runs. */
export const READ_KEYWORDS = ['SELECT', 'WITH', 'SHOW', 'DESCRIBE', 'DESC', 'EXPLAIN', 'EXISTS'] as const;

const PARAM_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `--param a=1 --param b=x=y` → { a: '1', b: 'x=y' }; a bad or repeated name is a CLI_USAGE error naming it. */
export function parseParams(values: readonly string[]): Record<string, string> {
  const params: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf('=');
    const name = eq < 0 ? v : v.slice(0, eq);
    if (eq < 0 || !PARAM_NAME.test(name)) {
      throw new TokenledgerError(
        'CLI_USAGE',
        `--param must be name=value with a name of letters, digits and _ (not starting with a digit); got ${JSON.stringify(v)}`,
      );
    }
    if (Object.hasOwn(params, name)) {
      throw new TokenledgerError('CLI_USAGE', `--param ${name} is given twice; got ${JSON.stringify(v)}`);
    }
    params[name] = v.slice(eq + 1);
  }
  return params;
}

/** The query without comments around it and without a final `;`; refused unless it starts with a read keyword. */
export function readOnlyQuery(query: string): string {
  let q = query.trim();
  for (;;) {
    const stripped = q
      .replace(/^--[^\n]*(\n|$)/, '')
      .replace(/^\/\*[\s\S]*?\*\//, '')
      .trimStart();
    if (stripped === q) break;
    q = stripped;
  }
  q = q.replace(/;\s*$/, '').trimEnd();
  const first = /^\(*\s*([A-Za-z]+)/.exec(q)?.[1]?.toUpperCase();
  if (first === undefined || !READ_KEYWORDS.some((k) => k === first)) {
    const shown = query.trim().length > 80 ? `${query.trim().slice(0, 80)}…` : query.trim();
    throw new TokenledgerError(
      'CLI_USAGE',
      `only read queries run here (${READ_KEYWORDS.join(', ')}); got ${JSON.stringify(shown)}`,
    );
  }
  return q;
}

export interface QueryResult {
  readonly names: readonly string[];
  readonly types: readonly string[];
  readonly rows: readonly (readonly unknown[])[];
}

const NUMERIC = /^(Nullable\()?(LowCardinality\()?(U?Int\d+|Float\d+|Decimal)/;

/** A control character as an escape: \\n, \\t, \\u0000 ... (it would break a table's alignment). */
function escapeControl(c: string): string {
  const named: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };
  return named[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

/** A cell as text: NULL, numbers and strings as they are (control characters escaped), the rest as JSON. */
export function cellText(v: unknown, nullText = 'NULL'): string {
  if (v === null || v === undefined) return nullText;
  if (typeof v === 'string') return v.replace(/\p{Cc}/gu, escapeControl);
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  return JSON.stringify(v);
}

/** The result in a format, pure. JSON: an array of objects; jsonl: one object per line. */
export function formatResult(r: QueryResult, format: SqlFormat): string {
  const objects = (): Record<string, unknown>[] =>
    r.rows.map((row) => Object.fromEntries(r.names.map((n, i) => [n, row[i] ?? null])));
  switch (format) {
    case 'table':
      return `${alignedTable(
        r.names,
        r.rows.map((row) => r.names.map((_, i) => cellText(row[i]))),
        r.types.map((t) => (NUMERIC.test(t) ? 'right' : 'left')),
      )}\n`;
    case 'csv': {
      // CSV quotes what needs it: strings stay as they are, newlines included.
      const raw = (v: unknown): string => (typeof v === 'string' ? v : cellText(v, ''));
      const rows = r.rows.map((row) => r.names.map((_, i) => raw(row[i])));
      return `${csv(r.names, rows)}\n`;
    }
    case 'json': {
      const items = objects().map((o) => `  ${toJson(o)}`);
      return items.length === 0 ? '[]\n' : `[\n${items.join(',\n')}\n]\n`;
    }
    case 'jsonl':
      return objects()
        .map((o) => `${toJson(o)}\n`)
        .join('');
  }
}

export function registerSql(program: Command): void {
  program
    .command('sql')
    .description('run one read-only SQL query against the tokenledger database and print the result')
    .argument('<query>', 'SELECT, WITH, SHOW, DESCRIBE, EXPLAIN or EXISTS; {name:Type} for parameters')
    .addOption(new Option('--format <format>', SQL_FORMATS.join(', ')).default('table'))
    .option(
      '--param <name=value>',
      'a query parameter for {name:Type} in the query (repeat for several)',
      (v: string, prev: string[]) => [...prev, v],
      [] as string[],
    )
    .addHelpText(
      'after',
      `
Examples:
  tokenledger sql "SELECT day, team_id, cost_usd FROM spend_by_team_day WHERE day >= today() - 7 ORDER BY day"
  tokenledger sql "SELECT * FROM budget_status" --format json
  tokenledger sql "SELECT model, sum(cost_nanousd) AS c FROM usage_day WHERE team_id = {team:String} GROUP BY model" --param team=search --format csv

The query runs with readonly = 2 in the configured database (CLICKHOUSE_URL / CLICKHOUSE_DATABASE). Put
values in --param, never in the query text. 64-bit integers and decimals print exactly (JSON: as strings).
Do not add a FORMAT clause: use --format. The views are described in docs/sql.md.`,
    )
    .action(async (query: string, opts: { format: string; param: string[] }) => {
      const format = SQL_FORMATS.find((f) => f === opts.format);
      if (format === undefined) {
        throw new TokenledgerError(
          'CLI_USAGE',
          `--format must be one of ${SQL_FORMATS.join(', ')}; got ${JSON.stringify(opts.format)}`,
        );
      }
      const params = parseParams(opts.param);
      const q = readOnlyQuery(query);
      await withClickHouse(
        'sql',
        async (ch) => {
          const result = await run(ch, q, params);
          writeStdout(formatResult(result, format));
          if (format === 'table')
            process.stderr.write(`(${result.rows.length} row${result.rows.length === 1 ? '' : 's'})\n`);
        },
        { migrated: false },
      );
    });
}

async function run(
  ch: Parameters<Parameters<typeof withClickHouse>[1]>[0],
  query: string,
  params: Record<string, string>,
): Promise<QueryResult> {
  try {
    const rs = await ch.query({
      query,
      query_params: params,
      format: 'JSONCompactEachRowWithNamesAndTypes',
      clickhouse_settings: {
        readonly: '2',
        output_format_json_quote_64bit_integers: 1,
        output_format_json_quote_decimals: 1,
      },
    });
    const [names = [], types = [], ...rows] = await rs.json<unknown[]>();
    return { names: names.map(String), types: types.map(String), rows };
  } catch (err) {
    if (err instanceof ClickHouseError) {
      throw new TokenledgerError(
        'CLICKHOUSE_QUERY_FAILED',
        `query failed: ${err.message.trim()} (ClickHouse error ${err.code}${err.type === undefined ? '' : ` ${err.type}`})`,
        { cause: err },
      );
    }
    throw err;
  }
}
