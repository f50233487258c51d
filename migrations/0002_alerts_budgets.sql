-- 0002: the detector's tables. Alert history (also on the topic tokenledger.alerts.v1) and budgets.
-- Every statement is idempotent (IF NOT EXISTS). docs/decisions/0012-detector.md explains the choices.

-- One row per alert (schemas/alert/v1.avsc, flattened). The detector inserts each alert with
-- insert_deduplication_token = alert_id, and alert_id is derived from (kind, scope, window): an alert decided
-- again after a restart is the same row. ReplacingMergeTree on (team_id, alert_id) removes a repeat that
-- arrives after the deduplication window; read history with `LIMIT 1 BY alert_id` or the alert_history view.
-- ORDER BY starts with team_id: "this team's alerts" is the common question; monthly partitions, 400 days.
CREATE TABLE IF NOT EXISTS alerts
(
    alert_id              String,
    kind                  LowCardinality(String) COMMENT 'cost_spike | spike_resolved | budget_threshold | budget_burn_rate | budget_forecast',
    severity              LowCardinality(String) COMMENT 'info | warning | critical',
    fired_at              DateTime64(3, 'UTC'),
    org_id                LowCardinality(String),
    team_id               LowCardinality(String),
    scope                 LowCardinality(String) COMMENT 'team | team_model | team_user | project | user',
    model                 LowCardinality(String),
    user_id               String,
    project_id            LowCardinality(String),
    window_start          DateTime64(3, 'UTC'),
    window_end            DateTime64(3, 'UTC'),
    observed_cost_nanousd Int64,
    expected_cost_nanousd Int64,
    observed_tokens       Int64,
    expected_tokens       Int64,
    score                 Float64,
    rule                  String,
    budget_id             String COMMENT '"" for spikes',
    budget_period         LowCardinality(String),
    budget_period_start   Nullable(DateTime64(3, 'UTC')),
    budget_time_zone      LowCardinality(String),
    budget_unit           LowCardinality(String),
    budget_limit          Int64,
    budget_spent          Int64,
    threshold_percent     Nullable(UInt16),
    burn_rate             Nullable(Float64),
    burn_window           String,
    forecast_exhausted_at Nullable(DateTime64(3, 'UTC')),
    top_contributors      Array(Tuple(dimension String, value String, cost_nanousd Int64, share Float64)),
    message               String,
    related_alert_id      String,
    detector              LowCardinality(String),
    recorded_at           DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(recorded_at)
PARTITION BY toYYYYMM(fired_at)
ORDER BY (team_id, alert_id)
TTL toDateTime(fired_at) + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 10000;

-- Budgets, set with `tokenledger budgets set|delete` or loaded from YAML. One row per change; the newest
-- (updated_at) wins and a deletion is a row with deleted = 1 (ReplacingMergeTree's is_deleted). Small table:
-- read it with FINAL.
CREATE TABLE IF NOT EXISTS budgets
(
    budget_id   String COMMENT 'chosen by the user, or <scope>:<scope_id>:<period>',
    scope       LowCardinality(String) COMMENT 'team | project | user',
    scope_id    String,
    period      LowCardinality(String) COMMENT 'day | week (Monday to Sunday) | month, in time_zone',
    time_zone   String COMMENT 'IANA time zone, e.g. Europe/Berlin',
    unit        LowCardinality(String) COMMENT 'usd | tokens',
    amount      Int64 COMMENT 'per period: nano-USD (unit usd) or tokens (unit tokens)',
    thresholds  Array(UInt16) COMMENT 'percent of amount, default [50, 80, 100]',
    description String,
    updated_at  DateTime64(3, 'UTC'),
    deleted     UInt8
)
ENGINE = ReplacingMergeTree(updated_at, deleted)
ORDER BY budget_id;

-- BI: alert history, one row per alert, newest first.
CREATE VIEW IF NOT EXISTS alert_history AS
SELECT
    alert_id, kind, severity, fired_at, team_id, scope, model, user_id, project_id,
    window_start, window_end,
    observed_cost_nanousd, divide(toDecimal128(observed_cost_nanousd, 9), 1000000000) AS observed_cost_usd,
    expected_cost_nanousd, divide(toDecimal128(expected_cost_nanousd, 9), 1000000000) AS expected_cost_usd,
    score, rule, budget_id, budget_period, budget_period_start, budget_unit, budget_limit, budget_spent,
    threshold_percent, burn_rate, forecast_exhausted_at, top_contributors, message, related_alert_id
FROM alerts
ORDER BY fired_at DESC
LIMIT 1 BY alert_id;
