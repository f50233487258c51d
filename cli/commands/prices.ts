/**
 * `tokenledger prices list`: the catalog entries in force at a date (default: today, UTC), optionally for one
 * provider, with an overrides file merged over the public catalog. Bad flags and bad files exit 2 with a message
 * naming the flag or the entry, field and value.
 * `tokenledger prices check`: the models seen in ClickHouse (usage_events) in the last N days whose events were
 * stored unpriced (cost_status 'unpriced' or 'client_estimate'), each re-checked against the CURRENT catalog.
 * Exit 1 while any of them is still unpriced (for CI and cron), 0 when every model seen is priced now.
 */
import type { Command } from 'commander';
import { loadConfig } from '../../lib/config';
import type { Config } from '../../lib/config';
import { createClickHouse } from '../../lib/clickhouse';
import { TokenledgerError, classifyClickHouseError } from '../../lib/errors';
import { createLogger } from '../../lib/logger';
import { entriesInForce, loadCatalog, parseUtcInstant, selectEntry } from '../../consumers/pricing';
import type { Catalog, PriceEntry } from '../../consumers/pricing';
import { reachable } from '../clickhouse';
import { EXIT, say, table } from '../output';

interface ListOptions {
  provider?: string;
  at?: string;
  overrides?: string;
  json?: boolean;
}

export function registerPrices(program: Command): void {
  const prices = program.command('prices').description('the price catalog (USD per million tokens)');
  prices
    .command('list')
    .description('print the catalog entries in force at a date')
    .option('--provider <name>', 'only this provider (openai, anthropic, gcp.gemini, aws.bedrock, ...)')
    .option('--at <YYYY-MM-DD>', 'the date (00:00 UTC) the prices are in force at; default today')
    .option('--overrides <file>', 'JSON file of negotiated or internal prices merged over the catalog')
    .option('--json', 'print JSON instead of a table')
    .action((opts: ListOptions) => {
      listPrices(opts);
    });
  prices
    .command('check')
    .description('list the models seen in ClickHouse in the last N days that the catalog does not price')
    .option('--days <n>', 'how many days back to look (whole number ≥ 1)', String(DEFAULT_DAYS))
    .option(
      '--overrides <file>',
      'JSON file of negotiated or internal prices merged over the catalog (default: PRICES_OVERRIDES_FILE)',
    )
    .option('--json', 'print JSON instead of a table')
    .addHelpText(
      'after',
      `
Reads usage_events in the configured database (CLICKHOUSE_URL / CLICKHOUSE_DATABASE). A model is a
(provider, request_model, response_model) triple; one whose events in the window were stored with
cost_status 'unpriced' or 'client_estimate' is listed and re-checked against the catalog as it is now: either
"unpriced" (add it to the catalog or the overrides file) or "priced now" (events ingested before were stored
unpriced). Exit 0: every model seen is priced now; 1: some model is not (or no usage_events table); 2: bad flags.`,
    )
    .action(async (opts: CheckOptions) => {
      process.exitCode = await checkPrices(opts);
    });
}

function atMs(at: string | undefined): number {
  if (at === undefined) {
    const now = new Date();
    return Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  }
  const ms = parseUtcInstant(at, true);
  if (ms === undefined) {
    throw new TokenledgerError('CLI_USAGE', `--at must be a date YYYY-MM-DD, got ${JSON.stringify(at)}`);
  }
  return ms;
}

function listPrices(opts: ListOptions): void {
  const at = atMs(opts.at);
  const catalog = loadCatalog(opts.overrides === undefined ? {} : { overridesPath: opts.overrides });
  const provider = opts.provider?.trim().toLowerCase();
  if (provider !== undefined && !catalog.entries.some((e) => e.provider === provider)) {
    const known = [...new Set(catalog.entries.map((e) => e.provider))].sort().join(', ');
    throw new TokenledgerError(
      'CLI_USAGE',
      `--provider ${JSON.stringify(opts.provider)} has no entries in the catalog; providers: ${known}`,
    );
  }
  const entries = entriesInForce(catalog, at, provider);
  const date = new Date(at).toISOString().slice(0, 10);
  if (opts.json === true) {
    say(JSON.stringify({ version: catalog.version, at: date, entries: entries.map(toJson) }, null, 2));
    return;
  }
  say(
    `price catalog ${catalog.version}: ${entries.length} model(s) in force at ${date}, USD per million tokens`,
  );
  if (entries.length === 0) return;
  say(
    table([
      [
        'provider',
        'model',
        'aliases',
        'input',
        'cached',
        'cache write',
        'output',
        'reasoning',
        'from',
        'source',
      ],
      ...entries.map((e) => [
        e.provider,
        e.model,
        e.aliases.join(',') || '-',
        e.input_per_mtok,
        e.cached_input_per_mtok,
        e.cache_write_per_mtok,
        e.output_per_mtok,
        e.reasoning_output_per_mtok ?? '=output',
        e.effective_from,
        e.origin === 'overrides' ? `${e.source} (override)` : e.source,
      ]),
    ]),
  );
}

function toJson(e: PriceEntry): Record<string, unknown> {
  return {
    provider: e.provider,
    model: e.model,
    aliases: e.aliases,
    effective_from: e.effective_from,
    input_per_mtok: e.input_per_mtok,
    cached_input_per_mtok: e.cached_input_per_mtok,
    cache_write_per_mtok: e.cache_write_per_mtok,
    output_per_mtok: e.output_per_mtok,
    ...(e.reasoning_output_per_mtok === undefined
      ? {}
      : { reasoning_output_per_mtok: e.reasoning_output_per_mtok }),
    ...(e.notes === undefined ? {} : { notes: e.notes }),
    source: e.source,
    as_of: e.as_of,
    origin: e.origin,
  };
}

const DEFAULT_DAYS = 7;
/** A century: the raw table keeps 400 days anyway; larger values only risk DateTime arithmetic overflow. */
const MAX_DAYS = 36_500;

interface CheckOptions {
  days: string;
  overrides?: string;
  json?: boolean;
}

/** One (provider, request_model, response_model) seen in the window, as the check query returns it. */
interface SeenRow {
  provider: string;
  request_model: string;
  response_model: string;
  /** UInt64 values arrive as strings (output_format_json_quote_64bit_integers). */
  requests: string;
  unpriced_requests: string;
  client_estimate_requests: string;
  first_seen_ms: string;
  last_seen_ms: string;
  input_tokens: string;
  output_tokens: string;
}

interface UnpricedModel {
  provider: string;
  request_model: string;
  response_model: string;
  /** Requests stored unpriced or with the client's estimate, in the window. */
  requests: number;
  client_estimate_requests: number;
  first_seen: string;
  last_seen: string;
  input_tokens: number;
  output_tokens: number;
  total_tokens: number;
  /** Whether the current catalog prices an event of this model occurring now. */
  priced_now: boolean;
  /** The catalog model that prices it now; null when unpriced. */
  priced_as: string | null;
}

/** Every model seen in the window, with the aggregates of its rows stored unpriced or with a client estimate. */
const CHECK_QUERY = `
SELECT
    provider,
    request_model,
    response_model,
    countIf(stored_unpriced)                                       AS requests,
    countIf(cost_status = 'unpriced')                              AS unpriced_requests,
    countIf(cost_status = 'client_estimate')                       AS client_estimate_requests,
    toUnixTimestamp64Milli(minIf(occurred_at, stored_unpriced))    AS first_seen_ms,
    toUnixTimestamp64Milli(maxIf(occurred_at, stored_unpriced))    AS last_seen_ms,
    sumIf(input_tokens, stored_unpriced)                           AS input_tokens,
    sumIf(output_tokens, stored_unpriced)                          AS output_tokens
FROM
(
    SELECT provider, request_model, response_model, occurred_at, cost_status, input_tokens, output_tokens,
           cost_status IN ('unpriced', 'client_estimate') AS stored_unpriced
    FROM usage_events
    WHERE occurred_at >= now64(3) - INTERVAL {days:UInt32} DAY
)
GROUP BY provider, request_model, response_model
ORDER BY provider, request_model, response_model`;

function parseDays(text: string): number {
  const n = /^\d+$/.test(text.trim()) ? Number(text.trim()) : NaN;
  if (!Number.isSafeInteger(n) || n < 1 || n > MAX_DAYS) {
    throw new TokenledgerError(
      'CLI_USAGE',
      `--days must be a whole number of days from 1 to ${MAX_DAYS}, got ${JSON.stringify(text)}`,
    );
  }
  return n;
}

const iso = (ms: string): string => new Date(Number(ms)).toISOString();
const shown = (name: string): string => (name === '' ? '-' : name);

async function checkPrices(opts: CheckOptions): Promise<number> {
  const days = parseDays(opts.days);
  const config = loadConfig(process.env, ['clickhouse', 'local', 'ingest', 'log']);
  const overridesPath = opts.overrides ?? config.ingest.pricesOverridesFile;
  const catalog = loadCatalog(overridesPath === undefined ? {} : { overridesPath });
  const seen = await querySeen(config, days);
  const nowMs = Date.now();
  const unpriced = seen
    .filter((r) => r.requests !== '0')
    .map((r) => recheck(catalog, r, nowMs))
    .sort(
      (a, b) =>
        Number(a.priced_now) - Number(b.priced_now) ||
        b.requests - a.requests ||
        a.provider.localeCompare(b.provider) ||
        a.request_model.localeCompare(b.request_model) ||
        a.response_model.localeCompare(b.response_model),
    );
  const stillUnpriced = unpriced.filter((m) => !m.priced_now).length;
  const code = stillUnpriced > 0 ? EXIT.failure : EXIT.ok;
  const db = config.clickhouse.database;
  const window = `in the last ${days} day${days === 1 ? '' : 's'}`;

  if (opts.json === true) {
    say(
      JSON.stringify(
        {
          database: db,
          days,
          catalog: catalog.version,
          models_seen: seen.length,
          unpriced_now: stillUnpriced,
          models: unpriced,
        },
        null,
        2,
      ),
    );
    return code;
  }
  if (seen.length === 0) {
    say(`no usage events ${window} in database ${db}: nothing to check (catalog ${catalog.version})`);
    return code;
  }
  say(
    stillUnpriced === 0
      ? `all ${seen.length} model(s) seen ${window} are priced (catalog ${catalog.version})`
      : `${stillUnpriced} of ${seen.length} model(s) seen ${window} are not priced by catalog ${catalog.version}: add them to the catalog or an overrides file`,
  );
  if (unpriced.length === 0) return code;
  say(
    table([
      [
        'provider',
        'request model',
        'response model',
        'requests',
        'client estimates',
        'first seen (UTC)',
        'last seen (UTC)',
        'tokens',
        'catalog now',
      ],
      ...unpriced.map((m) => [
        m.provider,
        shown(m.request_model),
        shown(m.response_model),
        String(m.requests),
        String(m.client_estimate_requests),
        m.first_seen.slice(0, 19).replace('T', ' '),
        m.last_seen.slice(0, 19).replace('T', ' '),
        String(m.total_tokens),
        m.priced_now
          ? `priced now as ${m.priced_as ?? '?'} (events before were stored unpriced)`
          : 'unpriced',
      ]),
    ]),
  );
  return code;
}

function recheck(catalog: Catalog, r: SeenRow, nowMs: number): UnpricedModel {
  const match = selectEntry(catalog, {
    provider: r.provider,
    request_model: r.request_model,
    response_model: r.response_model,
    occurred_at: nowMs,
  });
  const input = Number(r.input_tokens);
  const output = Number(r.output_tokens);
  return {
    provider: r.provider,
    request_model: r.request_model,
    response_model: r.response_model,
    requests: Number(r.requests),
    client_estimate_requests: Number(r.client_estimate_requests),
    first_seen: iso(r.first_seen_ms),
    last_seen: iso(r.last_seen_ms),
    input_tokens: input,
    output_tokens: output,
    total_tokens: input + output,
    priced_now: match !== undefined,
    priced_as: match?.model.model ?? null,
  };
}

/** ClickHouse error codes (src/Common/ErrorCodes.cpp) that mean "nothing ingested here yet". */
const UNKNOWN_TABLE = '60';
const UNKNOWN_DATABASE = '81';

async function querySeen(config: Config, days: number): Promise<SeenRow[]> {
  const logger = createLogger({
    level: config.logLevel === 'info' ? 'warn' : config.logLevel,
    name: 'prices',
  });
  const client = createClickHouse({ config, logger, application: 'tokenledger-prices-check' });
  try {
    return await reachable(config, async () => {
      const rs = await client.query({ query: CHECK_QUERY, query_params: { days }, format: 'JSONEachRow' });
      return rs.json<SeenRow>();
    });
  } catch (err) {
    const failure = classifyClickHouseError(err);
    const db = config.clickhouse.database;
    if (failure.kind === 'server' && (failure.code === UNKNOWN_TABLE || failure.code === UNKNOWN_DATABASE)) {
      throw new TokenledgerError(
        'CLICKHOUSE_QUERY_FAILED',
        `no usage_events table in database ${db}: run \`tokenledger migrate up\` / \`tokenledger ingest\` first`,
        { cause: err },
      );
    }
    throw err;
  } finally {
    await client.close();
  }
}
