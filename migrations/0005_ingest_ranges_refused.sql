-- 0005: a third state for ingest_ranges (0004): 'refused', written once when a partition's next owner found a
-- range unacknowledged and could not replay it safely, so it is reported once, not on every assignment.
-- docs/decisions/0011-ingest.md ("Unconfirmed ranges"). Idempotent (IF EXISTS; modifying to the same type is a no-op), and
-- adding an Enum value changes metadata only (no data rewritten).
ALTER TABLE ingest_ranges MODIFY COLUMN IF EXISTS state Enum8('intent' = 1, 'done' = 2, 'refused' = 3);
