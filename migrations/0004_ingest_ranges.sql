-- 0004: the last offset range ingest attempted per partition (docs/decisions/0011-ingest.md, "Ranges replayed on
-- assignment"). Ingest records a range here BEFORE inserting it; whoever is assigned the partition next re-inserts
-- that range's raw rows with the range's own dedup token, so rollups whose part of the insert did not land (the
-- raw part and each view's part commit separately) take it, and the ones that have it drop it as a duplicate.
--
-- ReplacingMergeTree on (topic, partition): one row per partition in the long run; readers take
-- argMax(..., attempted_at), never FINAL. Rows older than a week are of no use (only the last range matters).
CREATE TABLE IF NOT EXISTS ingest_ranges
(
    kafka_topic     LowCardinality(String),
    kafka_partition UInt32,
    first_offset    UInt64 COMMENT 'first Kafka offset of the range (dead letters and repeats included)',
    last_offset     UInt64,
    token           String COMMENT 'the insert_deduplication_token the range was inserted with',
    attempted_at    DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(attempted_at)
ORDER BY (kafka_topic, kafka_partition)
TTL toDateTime(attempted_at) + INTERVAL 7 DAY;
