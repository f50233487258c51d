-- 0004: ingest's record of each offset range it writes, so a range whose raw part landed but whose rollup parts
-- may not have (the engine commits the raw part and each view's part separately) is written again, with the same
-- deduplication token, by the partition's next owner. docs/decisions/0011-ingest.md ("Unconfirmed ranges").
-- Every statement is idempotent (IF NOT EXISTS).

-- Two rows per range: 'intent' just before the raw insert, 'done' once ClickHouse acknowledged it (raw and every
-- view). The token is the insert's insert_deduplication_token. ORDER BY (topic, partition, first_offset): the
-- question asked, on every partition assignment, is "the newest range of this partition". No partition key: a
-- few rows per insert, one small table. TTL 7 days: a range is only ever replayed within the tables' dedup
-- window (10,000 inserts), far less than a week at any rate that needs this table.
CREATE TABLE IF NOT EXISTS ingest_ranges
(
    kafka_topic     LowCardinality(String),
    kafka_partition UInt32,
    first_offset    UInt64,
    last_offset     UInt64,
    token           String,
    state           Enum8('intent' = 1, 'done' = 2),
    rows            UInt32 COMMENT 'rows in the raw insert (events of the range not refused or repeated)',
    at              DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'server time of the row: orders intents'
)
ENGINE = MergeTree
ORDER BY (kafka_topic, kafka_partition, first_offset)
TTL toDateTime(at) + INTERVAL 7 DAY;
