/**
 * `tokenledger prices list`: the catalog entries in force at a date (default: today, UTC), optionally for one
 * provider, with an overrides file merged over the public catalog. Bad flags and bad files exit 2 with a message
 * naming the flag or the entry, field and value. (`prices check` needs ClickHouse and comes with ingest.)
 */
import type { Command } from 'commander';
import { TokenledgerError } from '../../lib/errors';
import { entriesInForce, loadCatalog, parseUtcInstant } from '../../consumers/pricing';
import type { PriceEntry } from '../../consumers/pricing';
import { say, table } from '../output';

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
