/**
 * The price catalog as a ClickHouse table (`price_catalog`), so BI tools and `prices check` see the prices ingest
 * used. Written at ingest start; a ReplacingMergeTree keeps the newest load of each (provider, model,
 * effective_from), so re-loading is harmless.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import type { Catalog } from './catalog';

export async function writePriceTable(client: ClickHouseClient, catalog: Catalog): Promise<number> {
  const rows = catalog.entries.map((e) => ({
    provider: e.provider,
    model: e.model,
    aliases: [...e.aliases],
    effective_from: e.effectiveFromMs,
    input_usd_per_mtok: e.input_per_mtok,
    cached_input_usd_per_mtok: e.cached_input_per_mtok,
    cache_write_usd_per_mtok: e.cache_write_per_mtok,
    output_usd_per_mtok: e.output_per_mtok,
    price_version: catalog.version,
    source: e.source,
    as_of: e.as_of,
  }));
  await client.insert({
    table: 'price_catalog',
    values: rows,
    format: 'JSONEachRow',
    clickhouse_settings: { async_insert: 0 },
  });
  return rows.length;
}
