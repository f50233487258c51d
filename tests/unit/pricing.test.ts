/**
 * Pricing on hand-computed examples. Each expected cost is worked out in the comment above it, in USD, then in
 * nano-USD (1 USD = 1,000,000,000 nano-USD). Prices are the catalog's, in USD per million tokens ("/M").
 * The catalog is imported as JSON and built in memory: no I/O.
 */
import catalogJson from '../../consumers/pricing/catalog.json';
import {
  buildCatalog,
  costFemtoUsd,
  entriesInForce,
  femtoToNanoUsd,
  femtoUsdPerToken,
  parseCatalogFile,
  priceEvent,
} from '../../consumers/pricing';
import type { Catalog, CatalogFile, PricingEvent } from '../../consumers/pricing';
import { isTokenledgerError } from '../../lib/errors';

function file(raw: unknown, label: string): CatalogFile {
  const { file: f, problems } = parseCatalogFile(raw, label);
  expect(problems).toEqual([]);
  if (f === undefined) throw new Error(`${label} did not parse`);
  return f;
}

function build(base: CatalogFile, overrides?: CatalogFile): Catalog {
  const { catalog, problems } = buildCatalog(base, overrides);
  expect(problems).toEqual([]);
  if (catalog === undefined) throw new Error('catalog did not build');
  return catalog;
}

const publicFile = file(catalogJson, 'catalog.json');
const catalog = build(publicFile);
const VERSION = catalogJson.version;

function event(p: Partial<PricingEvent> & Pick<PricingEvent, 'provider' | 'request_model'>): PricingEvent {
  return {
    response_model: null,
    occurred_at: Date.UTC(2025, 10, 1), // 2025-11-01
    input_tokens: 0,
    cache_read_input_tokens: 0,
    cache_creation_input_tokens: 0,
    output_tokens: 0,
    reasoning_output_tokens: 0,
    ...p,
  };
}

describe('the shipped catalog', () => {
  test('validates, and covers every provider the issue names', () => {
    expect(VERSION).toMatch(/^\d{4}-\d{2}-\d{2}\.\d+$/);
    const providers = new Set(catalog.entries.map((e) => e.provider));
    for (const p of [
      'openai',
      'anthropic',
      'gcp.gemini',
      'aws.bedrock',
      'together',
      'groq',
      'mistral_ai',
      'deepseek',
      'x_ai',
    ]) {
      expect(providers).toContain(p);
    }
    for (const e of catalog.entries) {
      expect(e.source).toMatch(/^https:\/\/[a-z0-9.-]+\.[a-z]+\//);
      expect(e.as_of).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    }
    expect(
      catalog.entries.some((e) => e.provider === 'aws.bedrock' && e.model.startsWith('meta.llama')),
    ).toBe(true);
  });

  test('has models with dated price changes', () => {
    const dated = (provider: string, model: string): string[] =>
      catalog.entries
        .filter((e) => e.provider === provider && e.model === model)
        .map((e) => e.effective_from);
    expect(dated('openai', 'o3')).toEqual(['2025-04-16', '2025-06-10']);
    expect(dated('deepseek', 'deepseek-chat')).toHaveLength(4);
    expect(dated('anthropic', 'claude-sonnet-5-5')).toEqual(['2026-07-24', '2026-10-07']);
  });
});

describe('priceEvent on the catalog', () => {
  test('OpenAI gpt-4.1: cached input at the discounted rate', () => {
    // gpt-4.1: input $2.00/M, cached input $0.50/M, output $8.00/M.
    // input 10,000 of which 4,000 cache reads; output 500.
    //   6,000 uncached × $2.00/M = $0.012
    //   4,000 cached   × $0.50/M = $0.002
    //     500 output   × $8.00/M = $0.004
    //   total $0.018 = 18,000,000 nano-USD
    const r = priceEvent(
      catalog,
      event({
        provider: 'openai',
        request_model: 'gpt-4.1',
        input_tokens: 10_000,
        cache_read_input_tokens: 4_000,
        output_tokens: 500,
      }),
    );
    expect(r).toEqual({
      cost_nanousd: 18_000_000n,
      price_version: VERSION,
      cost_status: 'priced',
      matched_model: 'gpt-4.1',
    });
  });

  test('Anthropic claude-sonnet-4-5: cache write premium and cache read discount', () => {
    // claude-sonnet-4-5: input $3.00/M, cache read $0.30/M, 5-minute cache write $3.75/M, output $15.00/M.
    // input 30,000 = 2,000 uncached + 25,000 cache reads + 3,000 cache writes; output 1,200.
    //    2,000 × $3.00/M  = $0.006
    //   25,000 × $0.30/M  = $0.0075
    //    3,000 × $3.75/M  = $0.01125
    //    1,200 × $15.00/M = $0.018
    //   total $0.04275 = 42,750,000 nano-USD
    const r = priceEvent(
      catalog,
      event({
        provider: 'anthropic',
        request_model: 'claude-sonnet-4-5',
        input_tokens: 30_000,
        cache_read_input_tokens: 25_000,
        cache_creation_input_tokens: 3_000,
        output_tokens: 1_200,
      }),
    );
    expect(r.cost_nanousd).toBe(42_750_000n);
    expect(r.cost_status).toBe('priced');
  });

  test('reasoning model o4-mini: reasoning tokens are billed as output', () => {
    // o4-mini: input $1.10/M, cached $0.275/M, output $4.40/M; reasoning is inside output.
    // input 1,500 of which 500 cached; output 4,000 of which 3,200 reasoning.
    //   1,000 × $1.10/M  = $0.0011
    //     500 × $0.275/M = $0.0001375
    //   4,000 × $4.40/M  = $0.0176   (the 3,200 reasoning tokens are in these 4,000)
    //   total $0.0188375 = 18,837,500 nano-USD
    const r = priceEvent(
      catalog,
      event({
        provider: 'openai',
        request_model: 'o4-mini',
        response_model: 'o4-mini-2025-04-16',
        input_tokens: 1_500,
        cache_read_input_tokens: 500,
        output_tokens: 4_000,
        reasoning_output_tokens: 3_200,
      }),
    );
    expect(r.cost_nanousd).toBe(18_837_500n);
    expect(r.matched_model).toBe('o4-mini');
  });

  test('an entry that bills reasoning at its own rate (gemini-2.5-flash-preview-04-17)', () => {
    // input $0.15/M, output $0.60/M, reasoning (thinking) output $3.50/M.
    // input 2,000; output 1,000 of which 800 reasoning.
    //   2,000 × $0.15/M = $0.0003
    //     200 × $0.60/M = $0.00012  (non-reasoning output)
    //     800 × $3.50/M = $0.0028
    //   total $0.00322 = 3,220,000 nano-USD
    const r = priceEvent(
      catalog,
      event({
        provider: 'gcp.gemini',
        request_model: 'gemini-2.5-flash-preview-04-17',
        occurred_at: Date.UTC(2025, 4, 1),
        input_tokens: 2_000,
        output_tokens: 1_000,
        reasoning_output_tokens: 800,
      }),
    );
    expect(r.cost_nanousd).toBe(3_220_000n);
  });

  test('o3 price change: the entry in force at occurred_at', () => {
    // input 1,000,000 (no cache), output 100,000.
    // before 2025-06-10: $10.00/M in, $40.00/M out → $10.00 + $4.00 = $14.00 = 14,000,000,000 nano-USD
    // from   2025-06-10: $2.00/M in,  $8.00/M out  → $2.00 + $0.80 = $2.80  =  2,800,000,000 nano-USD
    const tokens = {
      provider: 'openai',
      request_model: 'o3',
      input_tokens: 1_000_000,
      output_tokens: 100_000,
    };
    expect(priceEvent(catalog, event({ ...tokens, occurred_at: Date.UTC(2025, 4, 1) })).cost_nanousd).toBe(
      14_000_000_000n,
    );
    expect(
      priceEvent(catalog, event({ ...tokens, occurred_at: Date.UTC(2025, 5, 10) - 1 })).cost_nanousd,
    ).toBe(14_000_000_000n);
    expect(priceEvent(catalog, event({ ...tokens, occurred_at: Date.UTC(2025, 5, 10) })).cost_nanousd).toBe(
      2_800_000_000n,
    );
    expect(priceEvent(catalog, event({ ...tokens, occurred_at: Date.UTC(2025, 6, 1) })).cost_nanousd).toBe(
      2_800_000_000n,
    );
    // Before the model's first entry there is no price in force: unpriced, not $0 'priced'.
    expect(priceEvent(catalog, event({ ...tokens, occurred_at: Date.UTC(2025, 3, 15) })).cost_status).toBe(
      'unpriced',
    );
  });

  test('a price change at a time of day (deepseek-chat, 2025-02-08 16:00 UTC)', () => {
    // input 1,000,000 with 0 cache hits, output 1,000,000.
    // launch discount: $0.14 + $0.28 = $0.42 = 420,000,000 nano-USD
    // standard price:  $0.27 + $1.10 = $1.37 = 1,370,000,000 nano-USD
    const tokens = {
      provider: 'deepseek',
      request_model: 'deepseek-chat',
      input_tokens: 1_000_000,
      output_tokens: 1_000_000,
    };
    const change = Date.UTC(2025, 1, 8, 16);
    expect(priceEvent(catalog, event({ ...tokens, occurred_at: change - 1 })).cost_nanousd).toBe(
      420_000_000n,
    );
    expect(priceEvent(catalog, event({ ...tokens, occurred_at: change })).cost_nanousd).toBe(1_370_000_000n);
  });

  test('dated snapshots resolve to the family through aliases, case-insensitively', () => {
    for (const [provider, name, family] of [
      ['anthropic', 'claude-sonnet-4-5-20250929', 'claude-sonnet-4-5'],
      ['openai', 'gpt-4.1-2025-04-14', 'gpt-4.1'],
      ['openai', 'GPT-4.1', 'gpt-4.1'],
      ['aws.bedrock', 'us.meta.llama3-3-70b-instruct-v1:0', 'meta.llama3-3-70b-instruct-v1:0'],
    ] as const) {
      const r = priceEvent(catalog, event({ provider, request_model: name, input_tokens: 1_000 }));
      expect([r.cost_status, r.matched_model]).toEqual(['priced', family]);
    }
  });

  test('response_model is preferred over request_model, which is the fallback', () => {
    // input 1,000, output 1,000.
    // response gpt-4o-2024-05-13 ($5/M, $15/M): $0.005 + $0.015 = $0.02 = 20,000,000 nano-USD
    // request  gpt-4o            ($2.50/M, $10/M): $0.0025 + $0.01 = $0.0125 = 12,500,000 nano-USD
    const tokens = { provider: 'openai', request_model: 'gpt-4o', input_tokens: 1_000, output_tokens: 1_000 };
    const answered = priceEvent(catalog, event({ ...tokens, response_model: 'gpt-4o-2024-05-13' }));
    expect([answered.cost_nanousd, answered.matched_model]).toEqual([20_000_000n, 'gpt-4o-2024-05-13']);
    const unknownResponse = priceEvent(
      catalog,
      event({ ...tokens, response_model: 'ft:gpt-4o:acme:custom' }),
    );
    expect([unknownResponse.cost_nanousd, unknownResponse.matched_model]).toEqual([12_500_000n, 'gpt-4o']);
  });

  test('an unknown model is unpriced with cost 0, never a silent $0 "priced"', () => {
    const r = priceEvent(
      catalog,
      event({ provider: 'openai', request_model: 'gpt-9-ultra', input_tokens: 1_000, output_tokens: 10 }),
    );
    expect(r).toEqual({ cost_nanousd: 0n, price_version: VERSION, cost_status: 'unpriced' });
    // A known model at another provider is not borrowed: Azure's prices are its own.
    expect(
      priceEvent(catalog, event({ provider: 'azure.ai.openai', request_model: 'gpt-4.1' })).cost_status,
    ).toBe('unpriced');
  });

  test("an unknown model with the client's own figure is a client_estimate", () => {
    const r = priceEvent(
      catalog,
      event({ provider: 'vllm', request_model: 'qwen3-32b', client_cost_nanousd: 123_456 }),
    );
    expect(r).toEqual({ cost_nanousd: 123_456n, price_version: VERSION, cost_status: 'client_estimate' });
    // The client's figure never replaces a catalog price.
    const known = priceEvent(
      catalog,
      event({ provider: 'openai', request_model: 'gpt-4.1', input_tokens: 1_000, client_cost_nanousd: 1 }),
    );
    expect([known.cost_status, known.cost_nanousd]).toEqual(['priced', 2_000_000n]);
  });

  test('token counts that break the usage-event rules are refused', () => {
    expect(() =>
      priceEvent(
        catalog,
        event({
          provider: 'openai',
          request_model: 'gpt-4.1',
          input_tokens: 10,
          cache_read_input_tokens: 11,
        }),
      ),
    ).toThrow(/cache_read_input_tokens \+ cache_creation_input_tokens must not exceed input_tokens/);
    expect(() =>
      priceEvent(catalog, event({ provider: 'openai', request_model: 'x', output_tokens: -1 })),
    ).toThrow(/output_tokens must be a whole number ≥ 0, got -1/);
  });
});

describe('money arithmetic', () => {
  test('prices convert exactly to femto-USD per token', () => {
    expect(femtoUsdPerToken('3')).toBe(3_000_000_000n);
    expect(femtoUsdPerToken('0.075')).toBe(75_000_000n);
    expect(femtoUsdPerToken('0.000000001')).toBe(1n);
    expect(() => femtoUsdPerToken('0.0000000001')).toThrow(/at most 9 decimals/);
  });

  test('rounded once per event, half up to nano-USD', () => {
    const rates = {
      input: femtoUsdPerToken('0.0005'),
      cachedInput: 0n,
      cacheWrite: 0n,
      output: femtoUsdPerToken('0.0005'),
      reasoningOutput: undefined,
    };
    const zero = {
      input_tokens: 0,
      cache_read_input_tokens: 0,
      cache_creation_input_tokens: 0,
      output_tokens: 0,
      reasoning_output_tokens: 0,
    };
    // $0.0005/M = 500,000 femto-USD per token = 0.5 nano-USD per token.
    expect(femtoToNanoUsd(costFemtoUsd(rates, { ...zero, input_tokens: 1 }))).toBe(1n); // 0.5 → 1
    expect(femtoToNanoUsd(costFemtoUsd(rates, { ...zero, input_tokens: 3 }))).toBe(2n); // 1.5 → 2
    expect(femtoToNanoUsd(499_999n)).toBe(0n); // 0.499999 → 0
    // 1 input + 1 output token: 0.5 + 0.5 = 1.0 nano-USD. Rounding each part first would give 2.
    expect(femtoToNanoUsd(costFemtoUsd(rates, { ...zero, input_tokens: 1, output_tokens: 1 }))).toBe(1n);
  });

  test('huge counts stay exact (bigint, no floating point)', () => {
    // 9,007,199,254,740,991 tokens (2^53 − 1) × $15/M: 9,007,199,254,740,991 × 15 = 135,107,988,821,114,865,
    // / 1,000,000 = $135,107,988,821.114865 = 135,107,988,821,114,865,000 nano-USD (far beyond 2^53: a double
    // could not hold it exactly).
    const r = priceEvent(
      catalog,
      event({
        provider: 'anthropic',
        request_model: 'claude-opus-4-1',
        input_tokens: Number.MAX_SAFE_INTEGER,
      }),
    );
    expect(r.cost_nanousd).toBe(135_107_988_821_114_865_000n);
  });
});

describe('overrides', () => {
  const negotiated = {
    provider: 'anthropic',
    model: 'claude-sonnet-4-5',
    effective_from: '2025-10-01',
    input_per_mtok: '2.40',
    cached_input_per_mtok: '0.24',
    cache_write_per_mtok: '3.00',
    output_per_mtok: '12.00',
    notes: 'negotiated: 20% off list',
    source: 'contract ACME-2025-114',
    as_of: '2025-09-20',
  };
  const overrides = file({ version: 'acme-2025-10', entries: [negotiated] }, 'overrides.json');
  const merged = build(publicFile, overrides);
  const sonnet = {
    provider: 'anthropic',
    request_model: 'claude-sonnet-4-5-20250929',
    input_tokens: 30_000,
    cache_read_input_tokens: 25_000,
    cache_creation_input_tokens: 3_000,
    output_tokens: 1_200,
  };

  test('an override wins from its effective_from; the public price applies before it', () => {
    // Same tokens as the Anthropic example, at the negotiated prices:
    //    2,000 × $2.40/M  = $0.0048
    //   25,000 × $0.24/M  = $0.006
    //    3,000 × $3.00/M  = $0.009
    //    1,200 × $12.00/M = $0.0144
    //   total $0.0342 = 34,200,000 nano-USD (the alias still resolves to the overridden family)
    const after = priceEvent(merged, event({ ...sonnet, occurred_at: Date.UTC(2025, 10, 1) }));
    expect(after).toEqual({
      cost_nanousd: 34_200_000n,
      price_version: `${VERSION}+acme-2025-10`,
      cost_status: 'priced',
      matched_model: 'claude-sonnet-4-5',
    });
    // 2025-09-30: the public list price, 42,750,000 nano-USD as computed above.
    expect(priceEvent(merged, event({ ...sonnet, occurred_at: Date.UTC(2025, 8, 30) })).cost_nanousd).toBe(
      42_750_000n,
    );
    expect(
      entriesInForce(merged, Date.UTC(2025, 10, 1), 'anthropic').find((e) => e.model === 'claude-sonnet-4-5')
        ?.origin,
    ).toBe('overrides');
  });

  test('a later public price change does not replace a negotiated price', () => {
    const entry = (effective_from: string, output: string): Record<string, unknown> => ({
      provider: 'acme',
      model: 'm1',
      aliases: ['m1-2025'],
      effective_from,
      input_per_mtok: '1',
      cached_input_per_mtok: '0.1',
      cache_write_per_mtok: '1.25',
      output_per_mtok: output,
      source: 'https://example.com/pricing',
      as_of: '2025-01-01',
    });
    const base = file(
      { version: 'b1', entries: [entry('2025-01-01', '5'), entry('2025-06-01', '4')] },
      'base.json',
    );
    const over = file({ version: 'o1', entries: [entry('2025-03-01', '2')] }, 'over.json');
    const c = build(base, over);
    // 1,000,000 output tokens: $5 (public, Feb) → $2 (override from March, still in force after the public cut to $4 in June)
    const at = (month: number): bigint =>
      priceEvent(
        c,
        event({
          provider: 'acme',
          request_model: 'm1-2025',
          occurred_at: Date.UTC(2025, month, 15),
          output_tokens: 1_000_000,
        }),
      ).cost_nanousd;
    expect([at(1), at(3), at(7)]).toEqual([5_000_000_000n, 2_000_000_000n, 2_000_000_000n]);
  });

  test('an override naming a public alias instead of the model is refused', () => {
    const over = file(
      { version: 'o2', entries: [{ ...negotiated, model: 'claude-sonnet-4-5-20250929' }] },
      'bad-overrides.json',
    );
    const { catalog: c, problems } = buildCatalog(publicFile, over);
    expect(c).toBeUndefined();
    expect(problems).toEqual([
      'bad-overrides.json: entries[0].model: "claude-sonnet-4-5-20250929" is an alias of "claude-sonnet-4-5" in catalog.json; name the model itself',
    ]);
  });
});

describe('catalog validation reports every problem at once, naming entry index, field and value', () => {
  const good = {
    provider: 'openai',
    model: 'gpt-x',
    aliases: [],
    effective_from: '2025-01-01',
    input_per_mtok: '1.00',
    cached_input_per_mtok: '0.10',
    cache_write_per_mtok: '1.00',
    output_per_mtok: '4.00',
    source: 'https://openai.com/api/pricing/',
    as_of: '2025-01-01',
  };

  test('field problems', () => {
    const { file: f, problems } = parseCatalogFile(
      {
        version: '2026-01-01.1',
        entries: [
          good,
          { ...good, model: 'a', output_per_mtok: 8 },
          { ...good, model: 'b', source: undefined, effective_from: '2025-13-01' },
          { ...good, model: 'c', ouput_per_mtok: '8' },
          { ...good, model: 'd', cached_input_per_mtok: '2.00', input_per_mtok: '1.5e3' },
          { ...good, model: 'e', cached_input_per_mtok: '2.00' },
          { ...good },
        ],
      },
      'catalog.json',
    );
    expect(f?.entries.map((e) => e.model)).toEqual(['gpt-x', 'e', 'gpt-x']); // the entries that passed the schema
    expect(problems).toEqual([
      'catalog.json: entries[1].output_per_mtok: must be a decimal string of USD per million tokens with at most 9 decimals, like "3.00", got 8',
      'catalog.json: entries[2].effective_from: must be a date YYYY-MM-DD or a UTC time YYYY-MM-DDTHH:MMZ, got "2025-13-01"',
      'catalog.json: entries[2].source: is required',
      'catalog.json: entries[3]: unknown field "ouput_per_mtok" (value "8")',
      'catalog.json: entries[4].input_per_mtok: must be a decimal string of USD per million tokens with at most 9 decimals, like "3.00", got "1.5e3"',
      'catalog.json: entries[5].cached_input_per_mtok: must not exceed input_per_mtok (1.00), got "2.00"',
      'catalog.json: entries[6]: duplicate of entries[0] (provider "openai", model "gpt-x", effective_from "2025-01-01")',
    ]);
  });

  test('document problems', () => {
    expect(parseCatalogFile({ version: 'has space', entries: {} }, 'x.json').problems).toEqual([
      'x.json.version: must be a version label like "2026-11-29.1" (no spaces), got "has space"',
      'x.json.entries: must be an array of entries, got {}',
    ]);
  });

  test('an alias claimed by two models', () => {
    const f = file(
      {
        version: 'v1',
        entries: [
          { ...good, aliases: ['shared'] },
          { ...good, model: 'gpt-y', aliases: ['shared'] },
        ],
      },
      'c.json',
    );
    const { catalog: c, problems } = buildCatalog(f);
    expect(c).toBeUndefined();
    expect(problems).toEqual([
      'alias "shared" of openai model "gpt-y" is already the name or an alias of "gpt-x"',
    ]);
  });

  test('femtoUsdPerToken rejects a malformed price with CONFIG_INVALID', () => {
    let caught: unknown;
    try {
      femtoUsdPerToken('-1');
    } catch (err) {
      caught = err;
    }
    expect(isTokenledgerError(caught, 'CONFIG_INVALID')).toBe(true);
  });
});
