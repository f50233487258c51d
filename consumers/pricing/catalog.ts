/**
 * The price catalog: a versioned JSON file of list prices (USD per million tokens, written as exact decimal
 * strings), validated with zod — every problem reported at once, naming the entry index, the field and the
 * value — an optional overrides file (negotiated or internal prices) merged over it, and a lookup index by
 * (provider, model or alias) → entries sorted by effective_from. Pure except `loadCatalog`, which reads files.
 * Rules and their reasons: docs/decisions/0008-pricing.md.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { TokenledgerError } from '../../lib/errors';

/** The public catalog shipped with the project. */
export const DEFAULT_CATALOG_PATH = path.join(__dirname, 'catalog.json');

/** USD per million tokens, at most 9 decimals: 1e-9 USD per million tokens is exactly 1 femto-USD per token. */
const USD_PER_MTOK = /^(0|[1-9]\d{0,5})(?:\.(\d{1,9}))?$/;
const PRICE_MESSAGE =
  'must be a decimal string of USD per million tokens with at most 9 decimals, like "3.00"';
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATE_OR_UTC_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2}))?Z)?$/;

/** Epoch ms of "YYYY-MM-DD" (00:00 UTC) or "YYYY-MM-DDTHH:MM[:SS]Z"; undefined when not a real instant. */
export function parseUtcInstant(text: string, dateOnly = false): number | undefined {
  const m = (dateOnly ? DATE : DATE_OR_UTC_TIME).exec(text);
  if (m === null) return undefined;
  const [y = 0, mo = 1, d = 1, h = 0, mi = 0, s = 0] = [1, 2, 3, 4, 5, 6].map((i) => Number(m[i] ?? '0'));
  const ms = Date.UTC(y, mo - 1, d, h, mi, s);
  const back = new Date(ms);
  const real =
    back.getUTCFullYear() === y &&
    back.getUTCMonth() + 1 === mo &&
    back.getUTCDate() === d &&
    back.getUTCHours() === h &&
    back.getUTCMinutes() === mi;
  return real ? ms : undefined;
}

/** Exact conversion of a catalog price (USD per million tokens) to integer femto-USD (1e-15 USD) per token. */
export function femtoUsdPerToken(usdPerMillion: string): bigint {
  const m = USD_PER_MTOK.exec(usdPerMillion);
  if (m === null) {
    throw new TokenledgerError('CONFIG_INVALID', `price ${JSON.stringify(usdPerMillion)} ${PRICE_MESSAGE}`);
  }
  return BigInt(m[1] ?? '0') * 1_000_000_000n + BigInt((m[2] ?? '').padEnd(9, '0'));
}

const price = z.string({ error: PRICE_MESSAGE }).regex(USD_PER_MTOK, PRICE_MESSAGE);

const entrySchema = z.strictObject({
  /** OpenTelemetry gen_ai.provider.name style: openai, anthropic, gcp.gemini, aws.bedrock, mistral_ai, ... */
  provider: z
    .string({ error: 'must be a string' })
    .regex(/^[a-z0-9][a-z0-9._-]*$/, 'must be a lower-case provider name like "openai" or "aws.bedrock"'),
  /** The family name events are normalised to, e.g. "claude-sonnet-4-5". */
  model: z.string({ error: 'must be a string' }).min(1, 'must not be empty').max(200, 'is too long'),
  /** Other names of the same model: dated snapshots, host-specific ids. */
  aliases: z.array(z.string({ error: 'must be a string' }).min(1, 'must not be empty')).default([]),
  /** First instant the prices apply: "YYYY-MM-DD" (00:00 UTC) or "YYYY-MM-DDTHH:MM[:SS]Z". */
  effective_from: z
    .string({ error: 'must be a string' })
    .refine(
      (s) => parseUtcInstant(s) !== undefined,
      'must be a date YYYY-MM-DD or a UTC time YYYY-MM-DDTHH:MMZ',
    ),
  input_per_mtok: price,
  cached_input_per_mtok: price,
  cache_write_per_mtok: price,
  output_per_mtok: price,
  /** Only when reasoning tokens are billed at another rate than other output tokens. */
  reasoning_output_per_mtok: price.optional(),
  notes: z.string({ error: 'must be a string' }).optional(),
  /** The provider's public pricing page (or, for overrides, the contract or decision). */
  source: z.string({ error: 'must be a string' }).min(1, 'must not be empty'),
  /** When the price was last confirmed from the source. */
  as_of: z
    .string({ error: 'must be a string' })
    .refine((s) => parseUtcInstant(s, true) !== undefined, 'must be a date YYYY-MM-DD'),
});

const fileSchema = z.strictObject({
  version: z
    .string({ error: 'must be a string' })
    .regex(/^[A-Za-z0-9][A-Za-z0-9._+-]*$/, 'must be a version label like "2026-11-29.1" (no spaces)'),
  notes: z.string({ error: 'must be a string' }).optional(),
  entries: z.array(z.unknown(), { error: 'must be an array of entries' }),
});

export type CatalogEntryInput = z.output<typeof entrySchema>;

/** Integer femto-USD (1e-15 USD) per token; `reasoningOutput` undefined = reasoning billed as output. */
export interface Rates {
  readonly input: bigint;
  readonly cachedInput: bigint;
  readonly cacheWrite: bigint;
  readonly output: bigint;
  readonly reasoningOutput: bigint | undefined;
}

export interface PriceEntry extends Omit<CatalogEntryInput, 'aliases'> {
  /** Every alias of the model, from all its entries (and the public catalog when this is an override). */
  readonly aliases: readonly string[];
  readonly effectiveFromMs: number;
  readonly origin: 'catalog' | 'overrides';
  readonly rates: Rates;
}

/** One model of one provider: its aliases and its dated entries, oldest first. */
export interface ModelPrices {
  readonly provider: string;
  readonly model: string;
  readonly aliases: readonly string[];
  readonly entries: readonly PriceEntry[];
}

export interface Catalog {
  /** Stored with every priced event: the public version, plus "+<overrides version>" when merged. */
  readonly version: string;
  /** Every entry, by provider, model, effective_from. */
  readonly entries: readonly PriceEntry[];
  /** Key: `indexKey(provider, model or alias)`. */
  readonly index: ReadonlyMap<string, ModelPrices>;
}

export interface CatalogFile {
  readonly label: string;
  readonly version: string;
  readonly entries: readonly (CatalogEntryInput & { readonly effectiveFromMs: number })[];
}

/** Lookups ignore case: providers and hosts differ in how they capitalise model ids. */
export function indexKey(provider: string, name: string): string {
  return `${provider.trim().toLowerCase()}\u0000${name.trim().toLowerCase()}`;
}

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  const s = JSON.stringify(value);
  return s.length > 80 ? `${s.slice(0, 80)}…` : s;
}

function valueAt(root: unknown, p: readonly PropertyKey[]): unknown {
  let v = root;
  for (const k of p)
    v = typeof v === 'object' && v !== null ? (v as Record<PropertyKey, unknown>)[k] : undefined;
  return v;
}

function describeZodIssues(prefix: string, raw: unknown, issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.map((issue) => {
    if (issue.code === 'unrecognized_keys') {
      return issue.keys
        .map((k) => `${prefix}: unknown field "${k}" (value ${show(valueAt(raw, [...issue.path, k]))})`)
        .join('\n');
    }
    const where = issue.path.map((k) => (typeof k === 'number' ? `[${k}]` : `.${String(k)}`)).join('');
    const value = valueAt(raw, issue.path);
    const what = value === undefined ? 'is required' : `${issue.message}, got ${show(value)}`;
    return `${prefix}${where}: ${what}`;
  });
}

/** Validates one catalog or overrides document; returns every problem found instead of stopping at the first. */
export function parseCatalogFile(
  raw: unknown,
  label: string,
): { file: CatalogFile | undefined; problems: string[] } {
  const top = fileSchema.safeParse(raw);
  if (!top.success) return { file: undefined, problems: describeZodIssues(label, raw, top.error.issues) };
  const problems: string[] = [];
  const entries: CatalogFile['entries'][number][] = [];
  const seen = new Map<string, number>();
  top.data.entries.forEach((rawEntry, i) => {
    const at = `${label}: entries[${i}]`;
    const parsed = entrySchema.safeParse(rawEntry);
    if (!parsed.success) {
      problems.push(...describeZodIssues(at, rawEntry, parsed.error.issues));
      return;
    }
    const e = parsed.data;
    const effectiveFromMs = parseUtcInstant(e.effective_from) ?? 0;
    if (femtoUsdPerToken(e.cached_input_per_mtok) > femtoUsdPerToken(e.input_per_mtok)) {
      problems.push(
        `${at}.cached_input_per_mtok: must not exceed input_per_mtok (${e.input_per_mtok}), got ${show(e.cached_input_per_mtok)}`,
      );
    }
    const key = `${indexKey(e.provider, e.model)}\u0000${effectiveFromMs}`;
    const first = seen.get(key);
    if (first !== undefined) {
      problems.push(
        `${at}: duplicate of entries[${first}] (provider ${show(e.provider)}, model ${show(e.model)}, effective_from ${show(e.effective_from)})`,
      );
    } else seen.set(key, i);
    entries.push({ ...e, effectiveFromMs });
  });
  return { file: { label, version: top.data.version, entries }, problems };
}

function toEntry(e: CatalogFile['entries'][number], origin: PriceEntry['origin']): PriceEntry {
  return {
    ...e,
    origin,
    rates: {
      input: femtoUsdPerToken(e.input_per_mtok),
      cachedInput: femtoUsdPerToken(e.cached_input_per_mtok),
      cacheWrite: femtoUsdPerToken(e.cache_write_per_mtok),
      output: femtoUsdPerToken(e.output_per_mtok),
      reasoningOutput:
        e.reasoning_output_per_mtok === undefined ? undefined : femtoUsdPerToken(e.reasoning_output_per_mtok),
    },
  };
}

/**
 * Builds the lookup index, merging `overrides` over `base`: for a provider+model that has override entries, the
 * override timeline wins from its earliest effective_from on (public entries dated at or after it are dropped,
 * so a later public price change never silently replaces a negotiated price); earlier public entries still
 * apply before it. Returns the problems instead of a catalog when names collide.
 */
export function buildCatalog(
  base: CatalogFile,
  overrides?: CatalogFile,
): { catalog: Catalog | undefined; problems: string[] } {
  const problems: string[] = [];
  const baseAliasOf = new Map<string, string>();
  for (const e of base.entries) for (const a of e.aliases) baseAliasOf.set(indexKey(e.provider, a), e.model);

  const groups = new Map<string, { provider: string; model: string; entries: PriceEntry[] }>();
  const group = (provider: string, model: string): { entries: PriceEntry[] } => {
    const k = indexKey(provider, model);
    let g = groups.get(k);
    if (g === undefined) groups.set(k, (g = { provider, model, entries: [] }));
    return g;
  };
  const overrideStart = new Map<string, number>();
  overrides?.entries.forEach((e, i) => {
    const aliasOf = baseAliasOf.get(indexKey(e.provider, e.model));
    if (aliasOf !== undefined) {
      problems.push(
        `${overrides.label}: entries[${i}].model: ${show(e.model)} is an alias of ${show(aliasOf)} in ${base.label}; name the model itself`,
      );
      return;
    }
    const k = indexKey(e.provider, e.model);
    overrideStart.set(k, Math.min(overrideStart.get(k) ?? Infinity, e.effectiveFromMs));
    group(e.provider, e.model).entries.push(toEntry(e, 'overrides'));
  });
  for (const e of base.entries) {
    const start = overrideStart.get(indexKey(e.provider, e.model));
    if (start === undefined || e.effectiveFromMs < start)
      group(e.provider, e.model).entries.push(toEntry(e, 'catalog'));
  }

  const index = new Map<string, ModelPrices>();
  const all: PriceEntry[] = [];
  for (const [key, g] of groups) {
    const aliases = [...new Set(g.entries.flatMap((e) => e.aliases))].sort();
    const entries = g.entries
      .map((e) => ({ ...e, aliases }))
      .sort((a, b) => a.effectiveFromMs - b.effectiveFromMs);
    const prices: ModelPrices = { provider: g.provider, model: g.model, aliases, entries };
    index.set(key, prices);
    all.push(...entries);
  }
  for (const prices of [...index.values()]) {
    for (const alias of prices.aliases) {
      const k = indexKey(prices.provider, alias);
      const other = index.get(k);
      if (other !== undefined && other !== prices) {
        problems.push(
          `alias ${show(alias)} of ${prices.provider} model ${show(prices.model)} is already the name or an alias of ${show(other.model)}`,
        );
      } else index.set(k, prices);
    }
  }
  all.sort(
    (a, b) =>
      a.provider.localeCompare(b.provider) ||
      a.model.localeCompare(b.model) ||
      a.effectiveFromMs - b.effectiveFromMs,
  );
  const version = overrides === undefined ? base.version : `${base.version}+${overrides.version}`;
  return problems.length > 0
    ? { catalog: undefined, problems }
    : { catalog: { version, entries: all, index }, problems };
}

/** The model that `name` (the model itself or an alias) names at `provider`, with its dated entries. */
export function lookup(catalog: Catalog, provider: string, name: string): ModelPrices | undefined {
  return catalog.index.get(indexKey(provider, name));
}

/** The entry in force at `atMs`: the latest effective_from ≤ atMs; undefined before the first one. */
export function entryAt(prices: ModelPrices, atMs: number): PriceEntry | undefined {
  for (let i = prices.entries.length - 1; i >= 0; i--) {
    const e = prices.entries[i];
    if (e !== undefined && e.effectiveFromMs <= atMs) return e;
  }
  return undefined;
}

/** Every model's entry in force at `atMs`, optionally for one provider, by provider and model. */
export function entriesInForce(catalog: Catalog, atMs: number, provider?: string): PriceEntry[] {
  const seen = new Set<ModelPrices>();
  const out: PriceEntry[] = [];
  for (const prices of catalog.index.values()) {
    if (seen.has(prices)) continue;
    seen.add(prices);
    if (provider !== undefined && prices.provider !== provider.trim().toLowerCase()) continue;
    const e = entryAt(prices, atMs);
    if (e !== undefined) out.push(e);
  }
  return out.sort((a, b) => a.provider.localeCompare(b.provider) || a.model.localeCompare(b.model));
}

function readJson(file: string, what: string): { raw: unknown; problem?: string } {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    return { raw: undefined, problem: `${what} ${JSON.stringify(file)}: cannot read (${code})` };
  }
  try {
    return { raw: JSON.parse(text) as unknown };
  } catch (err) {
    return {
      raw: undefined,
      problem: `${what} ${JSON.stringify(file)}: not valid JSON (${(err as Error).message})`,
    };
  }
}

export interface LoadCatalogOptions {
  /** Default: the catalog.json next to this file. */
  readonly catalogPath?: string;
  /** A JSON file with the same shape, merged over the catalog. */
  readonly overridesPath?: string;
}

/** Reads, validates and merges; throws one CONFIG_INVALID error listing every problem in both files. */
export function loadCatalog(options: LoadCatalogOptions = {}): Catalog {
  const catalogPath = options.catalogPath ?? DEFAULT_CATALOG_PATH;
  const problems: string[] = [];
  const parse = (file: string, what: string): CatalogFile | undefined => {
    const { raw, problem } = readJson(file, what);
    if (problem !== undefined) {
      problems.push(problem);
      return undefined;
    }
    const r = parseCatalogFile(raw, path.basename(file));
    problems.push(...r.problems);
    return r.file;
  };
  const base = parse(catalogPath, 'price catalog');
  const overrides =
    options.overridesPath === undefined ? undefined : parse(options.overridesPath, 'overrides');
  if (base !== undefined && problems.length === 0) {
    const built = buildCatalog(base, overrides);
    if (built.catalog !== undefined) return built.catalog;
    problems.push(...built.problems);
  }
  throw new TokenledgerError(
    'CONFIG_INVALID',
    `invalid price catalog (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n  ${problems.join('\n  ')}`,
    { context: { catalog: catalogPath, overrides: options.overridesPath } },
  );
}
