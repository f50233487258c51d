/**
 * Pure pricing of one usage event against a catalog. Money is integer end to end:
 *   - a catalog price P (USD per million tokens, exact decimal string) is P × 10^9 femto-USD per token, exactly;
 *   - cost in femto-USD = Σ tokens × femto-per-token, in bigint (no floating point, no overflow);
 *   - the event's cost is rounded ONCE, half up, to nano-USD (1e-9 USD): (femto + 500,000) / 1,000,000.
 * Rules (docs/decisions/0008-pricing.md): the entry in force at occurred_at (latest effective_from ≤ occurred_at);
 * response_model wins when the catalog prices it at that instant, else request_model; an unknown model is
 * `unpriced` with cost 0 — or `client_estimate` with the client's own figure when the event carries one.
 */
import { TokenledgerError } from '../../lib/errors';
import { TOKEN_FIELDS } from '../../schemas/usage-event/types';
import type { UsageEvent } from '../../schemas/usage-event/types';
import { entryAt, lookup } from './catalog';
import type { Catalog, ModelPrices, PriceEntry, Rates } from './catalog';

export const COST_STATUSES = ['priced', 'unpriced', 'client_estimate'] as const;
export type CostStatus = (typeof COST_STATUSES)[number];

/** femto-USD (1e-15) per nano-USD (1e-9). */
export const FEMTO_PER_NANO = 1_000_000n;

/** The token counts of schemas/usage-event/types.ts: input includes cache reads and writes; output includes reasoning. */
export type TokenCounts = Pick<UsageEvent, (typeof TOKEN_FIELDS)[number]>;

/** What pricing reads from a usage event; a `UsageEvent` is one. */
export type PricingEvent = Pick<UsageEvent, 'provider' | 'request_model' | 'response_model' | 'occurred_at'> &
  TokenCounts & { readonly client_cost_nanousd?: number | bigint | null };

export interface PriceResult {
  /** Integer nano-USD. 0n when unpriced. */
  readonly cost_nanousd: bigint;
  /** The catalog version used (with "+<overrides version>" when overrides were merged). */
  readonly price_version: string;
  readonly cost_status: CostStatus;
  /** The catalog's model (family) name that priced the event; absent unless priced. */
  readonly matched_model?: string;
}

/** Names to try, best first: response_model (what actually ran), then request_model. */
export function candidateModels(event: Pick<PricingEvent, 'request_model' | 'response_model'>): string[] {
  const names: string[] = [];
  for (const n of [event.response_model, event.request_model]) {
    if (typeof n === 'string' && n.trim() !== '' && !names.includes(n)) names.push(n);
  }
  return names;
}

/** The catalog entry that prices `event`, or undefined when no candidate name has an entry in force at occurred_at. */
export function selectEntry(
  catalog: Catalog,
  event: Pick<PricingEvent, 'provider' | 'request_model' | 'response_model' | 'occurred_at'>,
): { model: ModelPrices; entry: PriceEntry } | undefined {
  for (const name of candidateModels(event)) {
    const model = lookup(catalog, event.provider, name);
    const entry = model === undefined ? undefined : entryAt(model, event.occurred_at);
    if (model !== undefined && entry !== undefined) return { model, entry };
  }
  return undefined;
}

function checkTokens(t: TokenCounts): void {
  const bad = TOKEN_FIELDS.filter((f) => !Number.isSafeInteger(t[f]) || t[f] < 0);
  const problems = bad.map((f) => `${f} must be a whole number ≥ 0, got ${String(t[f])}`);
  if (bad.length === 0 && t.cache_read_input_tokens + t.cache_creation_input_tokens > t.input_tokens) {
    problems.push('cache_read_input_tokens + cache_creation_input_tokens must not exceed input_tokens');
  }
  if (bad.length === 0 && t.reasoning_output_tokens > t.output_tokens) {
    problems.push('reasoning_output_tokens must not exceed output_tokens');
  }
  if (problems.length > 0)
    throw new TokenledgerError('EVENT_INVALID', `cannot price: ${problems.join('; ')}`);
}

/**
 * Exact cost in femto-USD:
 *   (input − cache_read − cache_write) × input + cache_read × cached_input + cache_write × cache_write
 *   + output × output — or, when the entry bills reasoning apart,
 *   (output − reasoning) × output + reasoning × reasoning_output.
 * Throws EVENT_INVALID for counts that break the usage-event rules (ingest validates before pricing).
 */
export function costFemtoUsd(rates: Rates, t: TokenCounts): bigint {
  checkTokens(t);
  const cacheRead = BigInt(t.cache_read_input_tokens);
  const cacheWrite = BigInt(t.cache_creation_input_tokens);
  const uncached = BigInt(t.input_tokens) - cacheRead - cacheWrite;
  const reasoning = rates.reasoningOutput === undefined ? 0n : BigInt(t.reasoning_output_tokens);
  const plainOutput = BigInt(t.output_tokens) - reasoning;
  return (
    uncached * rates.input +
    cacheRead * rates.cachedInput +
    cacheWrite * rates.cacheWrite +
    plainOutput * rates.output +
    reasoning * (rates.reasoningOutput ?? 0n)
  );
}

/** femto-USD → nano-USD, half up (costs are never negative): 0.5 nano-USD and above rounds up. */
export function femtoToNanoUsd(femto: bigint): bigint {
  if (femto < 0n) throw new RangeError(`a cost cannot be negative, got ${String(femto)} femto-USD`);
  return (femto + FEMTO_PER_NANO / 2n) / FEMTO_PER_NANO;
}

function clientCost(v: PricingEvent['client_cost_nanousd']): bigint | undefined {
  if (typeof v === 'bigint') return v >= 0n ? v : undefined;
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
  return undefined;
}

/** Prices one event. Pure: same catalog and event, same answer. */
export function priceEvent(catalog: Catalog, event: PricingEvent): PriceResult {
  const selected = selectEntry(catalog, event);
  if (selected !== undefined) {
    return {
      cost_nanousd: femtoToNanoUsd(costFemtoUsd(selected.entry.rates, event)),
      price_version: catalog.version,
      cost_status: 'priced',
      matched_model: selected.model.model,
    };
  }
  checkTokens(event);
  const estimate = clientCost(event.client_cost_nanousd);
  return estimate === undefined
    ? { cost_nanousd: 0n, price_version: catalog.version, cost_status: 'unpriced' }
    : { cost_nanousd: estimate, price_version: catalog.version, cost_status: 'client_estimate' };
}
