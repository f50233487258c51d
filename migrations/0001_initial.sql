-- 0001: the first schema. Raw events, minute/hour/day rollups fed by materialized views, the dead-letter
-- table, the price catalog table, and the first BI views.
--
-- Exactness (docs/decisions/0011-ingest.md): ingest writes each Kafka offset range of a partition as
-- ONE insert with insert_deduplication_token = '<topic>-<partition>-<first>-<last>' and
-- deduplicate_blocks_in_dependent_materialized_views = 1. A retried range is dropped as a duplicate block by
-- every table below, which is why EACH of them (not only the raw table) carries its own
-- non_replicated_deduplication_window. Rollup totals are plain sums of per-block partial sums, so sum() over a
-- rollup is exact whether or not background merges have happened: never FINAL.
--
-- Statements are separated by a line that ends with ';'. Every statement is idempotent (IF NOT EXISTS).

-- One row per distinct event. ORDER BY (team_id, occurred_at, event_id): almost every question is "this team,
-- this period"; event_id last makes the key unique and lets ingest look up a late repeat by its exact key.
-- Monthly partitions keep parts few and make retention (TTL, DROP PARTITION) a whole-part operation.
CREATE TABLE IF NOT EXISTS usage_events
(
    event_id                    UUID,
    occurred_at                 DateTime64(3, 'UTC'),
    ingested_at                 DateTime64(3, 'UTC') DEFAULT now64(3),
    org_id                      LowCardinality(String) COMMENT '"" when not set',
    team_id                     LowCardinality(String),
    user_id                     String COMMENT '"" when not set',
    project_id                  LowCardinality(String),
    application                 LowCardinality(String),
    environment                 LowCardinality(String),
    provider                    LowCardinality(String),
    operation                   LowCardinality(String),
    request_model               LowCardinality(String),
    response_model              LowCardinality(String),
    streaming                   Bool,
    service_tier                LowCardinality(String),
    status                      LowCardinality(String) COMMENT 'ok | error | cancelled',
    error_type                  LowCardinality(String),
    duration_ms                 Nullable(UInt32),
    time_to_first_token_ms      Nullable(UInt32),
    input_tokens                UInt64 COMMENT 'ALL input tokens, cache reads and writes included',
    cache_read_input_tokens     UInt64,
    cache_creation_input_tokens UInt64,
    output_tokens               UInt64 COMMENT 'ALL output tokens, reasoning included',
    reasoning_output_tokens     UInt64,
    client_cost_nanousd         Nullable(Int64),
    cost_nanousd                Int64 COMMENT 'integer nano-USD (1e-9 USD), computed at ingest',
    price_version               LowCardinality(String),
    cost_status                 LowCardinality(String) COMMENT 'priced | unpriced | client_estimate',
    tags                        Map(String, String),
    sdk                         LowCardinality(String),
    schema_fingerprint          LowCardinality(String) COMMENT 'the writer schema, hex CRC-64-AVRO',
    kafka_topic                 LowCardinality(String),
    kafka_partition             UInt32,
    kafka_offset                UInt64
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (team_id, occurred_at, event_id)
-- Raw rows are kept 400 days (a year and a month of drill-down); the rollups below outlive them.
TTL toDateTime(occurred_at) + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 10000;

-- Rollups, cascaded: raw → minute → hour → day. Each view aggregates the block its source just received (the
-- hour view sees the minute view's output, not the raw rows), so only the minute view reads every raw row.
-- Deduplication follows the cascade: a retried range is dropped by each target, and a target that missed it
-- takes it on the retry (docs/decisions/0011-ingest.md).
-- Dimensions: team, user, project, provider, model (the requested model: dated snapshots in
-- response_model would split one model into many rows), status. Measures: plain sums (requests, errors, every
-- token class, cost) and latency quantile states (t-digest, read with quantilesTDigestMerge).
-- SummingMergeTree sums the numeric columns and merges the AggregateFunction columns of rows with equal keys.
CREATE TABLE IF NOT EXISTS usage_minute
(
    minute                      DateTime('UTC'),
    team_id                     LowCardinality(String),
    user_id                     String,
    project_id                  LowCardinality(String),
    provider                    LowCardinality(String),
    model                       LowCardinality(String),
    status                      LowCardinality(String),
    requests                    UInt64,
    errors                      UInt64,
    unpriced_requests           UInt64,
    input_tokens                UInt64,
    cache_read_input_tokens     UInt64,
    cache_creation_input_tokens UInt64,
    output_tokens               UInt64,
    reasoning_output_tokens     UInt64,
    cost_nanousd                Int64,
    duration_ms_quantiles       AggregateFunction(quantilesTDigest(0.5, 0.9, 0.99), UInt32),
    ttft_ms_quantiles           AggregateFunction(quantilesTDigest(0.5, 0.9, 0.99), UInt32)
)
ENGINE = SummingMergeTree
-- Daily partitions: the minute rollup is the detector's and the dashboards' "last hours" source; old days are
-- dropped whole by the TTL (35 days).
PARTITION BY toDate(minute)
ORDER BY (team_id, minute, provider, model, user_id, project_id, status)
TTL minute + INTERVAL 35 DAY
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS usage_minute_mv TO usage_minute AS
SELECT
    toStartOfMinute(occurred_at)        AS minute,
    team_id, user_id, project_id, provider,
    request_model                       AS model,
    status,
    count()                             AS requests,
    countIf(status = 'error')           AS errors,
    countIf(cost_status = 'unpriced')   AS unpriced_requests,
    sum(usage_events.input_tokens)                AS input_tokens,
    sum(usage_events.cache_read_input_tokens)     AS cache_read_input_tokens,
    sum(usage_events.cache_creation_input_tokens) AS cache_creation_input_tokens,
    sum(usage_events.output_tokens)               AS output_tokens,
    sum(usage_events.reasoning_output_tokens)     AS reasoning_output_tokens,
    sum(usage_events.cost_nanousd)                AS cost_nanousd,
    quantilesTDigestStateIf(0.5, 0.9, 0.99)(assumeNotNull(duration_ms), duration_ms IS NOT NULL) AS duration_ms_quantiles,
    quantilesTDigestStateIf(0.5, 0.9, 0.99)(assumeNotNull(time_to_first_token_ms), time_to_first_token_ms IS NOT NULL) AS ttft_ms_quantiles
FROM usage_events
GROUP BY minute, team_id, user_id, project_id, provider, model, status;

CREATE TABLE IF NOT EXISTS usage_hour
(
    hour                        DateTime('UTC'),
    team_id                     LowCardinality(String),
    user_id                     String,
    project_id                  LowCardinality(String),
    provider                    LowCardinality(String),
    model                       LowCardinality(String),
    status                      LowCardinality(String),
    requests                    UInt64,
    errors                      UInt64,
    unpriced_requests           UInt64,
    input_tokens                UInt64,
    cache_read_input_tokens     UInt64,
    cache_creation_input_tokens UInt64,
    output_tokens               UInt64,
    reasoning_output_tokens     UInt64,
    cost_nanousd                Int64,
    duration_ms_quantiles       AggregateFunction(quantilesTDigest(0.5, 0.9, 0.99), UInt32),
    ttft_ms_quantiles           AggregateFunction(quantilesTDigest(0.5, 0.9, 0.99), UInt32)
)
ENGINE = SummingMergeTree
-- Monthly partitions, kept 400 days like the raw table.
PARTITION BY toYYYYMM(hour)
ORDER BY (team_id, hour, provider, model, user_id, project_id, status)
TTL hour + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS usage_hour_mv TO usage_hour AS
SELECT
    toStartOfHour(minute) AS hour,
    team_id, user_id, project_id, provider, model, status,
    sum(usage_minute.requests)                    AS requests,
    sum(usage_minute.errors)                      AS errors,
    sum(usage_minute.unpriced_requests)           AS unpriced_requests,
    sum(usage_minute.input_tokens)                AS input_tokens,
    sum(usage_minute.cache_read_input_tokens)     AS cache_read_input_tokens,
    sum(usage_minute.cache_creation_input_tokens) AS cache_creation_input_tokens,
    sum(usage_minute.output_tokens)               AS output_tokens,
    sum(usage_minute.reasoning_output_tokens)     AS reasoning_output_tokens,
    sum(usage_minute.cost_nanousd)                AS cost_nanousd,
    quantilesTDigestMergeState(0.5, 0.9, 0.99)(usage_minute.duration_ms_quantiles) AS duration_ms_quantiles,
    quantilesTDigestMergeState(0.5, 0.9, 0.99)(usage_minute.ttft_ms_quantiles)     AS ttft_ms_quantiles
FROM usage_minute
GROUP BY hour, team_id, user_id, project_id, provider, model, status;

CREATE TABLE IF NOT EXISTS usage_day
(
    day                         Date,
    team_id                     LowCardinality(String),
    user_id                     String,
    project_id                  LowCardinality(String),
    provider                    LowCardinality(String),
    model                       LowCardinality(String),
    status                      LowCardinality(String),
    requests                    UInt64,
    errors                      UInt64,
    unpriced_requests           UInt64,
    input_tokens                UInt64,
    cache_read_input_tokens     UInt64,
    cache_creation_input_tokens UInt64,
    output_tokens               UInt64,
    reasoning_output_tokens     UInt64,
    cost_nanousd                Int64,
    duration_ms_quantiles       AggregateFunction(quantilesTDigest(0.5, 0.9, 0.99), UInt32),
    ttft_ms_quantiles           AggregateFunction(quantilesTDigest(0.5, 0.9, 0.99), UInt32)
)
ENGINE = SummingMergeTree
-- Yearly partitions and no TTL: the day rollup is the long-term record of spend (a few rows per team per day).
PARTITION BY toYear(day)
ORDER BY (team_id, day, provider, model, user_id, project_id, status)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS usage_day_mv TO usage_day AS
SELECT
    toDate(hour) AS day,
    team_id, user_id, project_id, provider, model, status,
    sum(usage_hour.requests)                    AS requests,
    sum(usage_hour.errors)                      AS errors,
    sum(usage_hour.unpriced_requests)           AS unpriced_requests,
    sum(usage_hour.input_tokens)                AS input_tokens,
    sum(usage_hour.cache_read_input_tokens)     AS cache_read_input_tokens,
    sum(usage_hour.cache_creation_input_tokens) AS cache_creation_input_tokens,
    sum(usage_hour.output_tokens)               AS output_tokens,
    sum(usage_hour.reasoning_output_tokens)     AS reasoning_output_tokens,
    sum(usage_hour.cost_nanousd)                AS cost_nanousd,
    quantilesTDigestMergeState(0.5, 0.9, 0.99)(usage_hour.duration_ms_quantiles) AS duration_ms_quantiles,
    quantilesTDigestMergeState(0.5, 0.9, 0.99)(usage_hour.ttft_ms_quantiles)     AS ttft_ms_quantiles
FROM usage_hour
GROUP BY day, team_id, user_id, project_id, provider, model, status;

-- What ingest refused, also on the topic tokenledger.usage.dlq.v1. ORDER BY (reason, received_at): "what broke,
-- and since when". The original bytes are kept (hex) so a fixed consumer can replay them. 30 days.
CREATE TABLE IF NOT EXISTS usage_dlq
(
    received_at      DateTime64(3, 'UTC'),
    reason           LowCardinality(String),
    message          String,
    kafka_topic      LowCardinality(String),
    kafka_partition  UInt32,
    kafka_offset     UInt64,
    message_key      String,
    value_hex        String,
    headers          Map(String, String)
)
ENGINE = MergeTree
PARTITION BY toYYYYMMDD(received_at)
ORDER BY (reason, received_at, kafka_partition, kafka_offset)
TTL toDateTime(received_at) + INTERVAL 30 DAY
SETTINGS non_replicated_deduplication_window = 10000;

-- The price catalog as used by ingest (consumers/pricing/catalog.json plus overrides), one row per entry and
-- effective date. ReplacingMergeTree on the entry's key: ingest re-inserts the catalog at start, and the newest
-- catalog version of an entry wins. Small table: read it with FINAL.
CREATE TABLE IF NOT EXISTS price_catalog
(
    provider                  LowCardinality(String),
    model                     String,
    aliases                   Array(String),
    effective_from            DateTime64(3, 'UTC'),
    input_usd_per_mtok        Decimal(18, 9),
    cached_input_usd_per_mtok Decimal(18, 9),
    cache_write_usd_per_mtok  Decimal(18, 9),
    output_usd_per_mtok       Decimal(18, 9),
    price_version             String,
    source                    String,
    as_of                     String,
    loaded_at                 DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(loaded_at)
ORDER BY (provider, model, effective_from);

-- BI views: a small, stable surface over the day rollup (docs/sql.md). Money as Decimal USD and as nano-USD.
CREATE VIEW IF NOT EXISTS spend_by_team_day AS
SELECT
    day, team_id,
    sum(requests)                                        AS requests,
    sum(errors)                                          AS errors,
    sum(input_tokens)                                    AS input_tokens,
    sum(output_tokens)                                   AS output_tokens,
    sum(cost_nanousd)                                    AS cost_nanousd,
    divide(toDecimal128(cost_nanousd, 9), 1000000000) AS cost_usd,
    sum(unpriced_requests)                               AS unpriced_requests
FROM usage_day
GROUP BY day, team_id;

CREATE VIEW IF NOT EXISTS spend_by_model_day AS
SELECT
    day, provider, model,
    sum(requests)                                        AS requests,
    sum(errors)                                          AS errors,
    sum(input_tokens)                                    AS input_tokens,
    sum(cache_read_input_tokens)                         AS cache_read_input_tokens,
    sum(cache_creation_input_tokens)                     AS cache_creation_input_tokens,
    sum(output_tokens)                                   AS output_tokens,
    sum(reasoning_output_tokens)                         AS reasoning_output_tokens,
    sum(cost_nanousd)                                    AS cost_nanousd,
    divide(toDecimal128(cost_nanousd, 9), 1000000000) AS cost_usd,
    sum(unpriced_requests)                               AS unpriced_requests
FROM usage_day
GROUP BY day, provider, model;

CREATE VIEW IF NOT EXISTS spend_by_user_day AS
SELECT
    day, team_id, user_id,
    sum(requests)                                        AS requests,
    sum(input_tokens)                                    AS input_tokens,
    sum(output_tokens)                                   AS output_tokens,
    sum(cost_nanousd)                                    AS cost_nanousd,
    divide(toDecimal128(cost_nanousd, 9), 1000000000) AS cost_usd
FROM usage_day
GROUP BY day, team_id, user_id;
