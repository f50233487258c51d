/** Price catalog and pure pricing of usage events (docs/decisions/0008-pricing.md). */
export {
  DEFAULT_CATALOG_PATH,
  buildCatalog,
  entriesInForce,
  entryAt,
  femtoUsdPerToken,
  indexKey,
  loadCatalog,
  lookup,
  parseCatalogFile,
  parseUtcInstant,
} from './catalog';
export type {
  Catalog,
  CatalogEntryInput,
  CatalogFile,
  LoadCatalogOptions,
  ModelPrices,
  PriceEntry,
  Rates,
} from './catalog';
export {
  COST_STATUSES,
  FEMTO_PER_NANO,
  candidateModels,
  costFemtoUsd,
  femtoToNanoUsd,
  priceEvent,
  selectEntry,
} from './price';
export type { CostStatus, PriceResult, PricingEvent, TokenCounts } from './price';
export { writePriceTable } from './table';
