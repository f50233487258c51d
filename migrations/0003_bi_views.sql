-- 0003: the rest of the BI surface (docs/sql.md): budget status now, and usage the price catalog could not price.
-- Views only (no data is copied); every statement is idempotent (IF NOT EXISTS). The views of 0001 and 0002 are
-- unchanged.

-- One row per budget in force: its CURRENT calendar period in its own time zone, and the spend in it.
--
-- The period: ClickHouse's calendar functions (toStartOfMonth(t, tz), toTimeZone, dateTrunc ...) need a
-- CONSTANT time zone, and each budget has its own. toString(t, tz) accepts a per-row zone, so the local date
-- is read from the local wall-clock text, the period's first and next local dates are computed as Dates, and
-- each local midnight is turned back into an instant with two rounds of "wall time minus the zone's offset
-- there" (the offset being toString's wall time read as UTC minus the instant) — the method of
-- consumers/detect/periods.ts. Where a zone skips local midnight itself (America/Santiago, America/Havana on
-- their transition days) the two rounds land in the day before; the day then starts at its first local
-- instant, the next local midnight after that (01:00), as in periods.ts. Days, Monday-to-Sunday weeks and
-- months, as the detector sees them; tests/integration/bi-views.test.ts compares both in several zones.
--
-- The spend: from usage_minute (exact plain sums, never FINAL; every period starts on a whole minute; the
-- rollup keeps 35 days, more than a month plus any zone offset), matched on the budget's scope column.
-- Unit usd: cost in nano-USD; unit tokens: input + output tokens. The minute rows are first narrowed to the
-- (scope, id) pairs that have a budget, then joined on the pair and the period (a non-equi LEFT JOIN: a budget
-- without spend gets 0).
CREATE VIEW IF NOT EXISTS budget_status AS
WITH
    b AS
    (
        SELECT
            budget_id, scope, scope_id, period, time_zone, unit, amount, thresholds, description,
            toDate(substring(toString(now(), time_zone), 1, 10))                        AS local_today,
            multiIf(period = 'day', local_today,
                    period = 'week', toMonday(local_today),
                    toStartOfMonth(local_today))                                         AS period_first_day,
            multiIf(period = 'day', period_first_day + 1,
                    period = 'week', period_first_day + 7,
                    addMonths(period_first_day, 1))                                      AS next_first_day,
            toDateTime(period_first_day, 'UTC')                                          AS start_wall,
            toDateTime(next_first_day, 'UTC')                                            AS end_wall,
            start_wall - (toDateTime(toString(start_wall, time_zone), 'UTC') - start_wall) AS start_guess,
            start_wall - (toDateTime(toString(start_guess, time_zone), 'UTC') - start_guess) AS start_two_rounds,
            if(toDate(toString(start_two_rounds, time_zone)) < period_first_day,
               start_two_rounds + (86400 - toUnixTimestamp(toDateTime(toString(start_two_rounds, time_zone), 'UTC')) % 86400),
               start_two_rounds)                                                           AS period_start,
            end_wall - (toDateTime(toString(end_wall, time_zone), 'UTC') - end_wall)       AS end_guess,
            end_wall - (toDateTime(toString(end_guess, time_zone), 'UTC') - end_guess)     AS end_two_rounds,
            if(toDate(toString(end_two_rounds, time_zone)) < next_first_day,
               end_two_rounds + (86400 - toUnixTimestamp(toDateTime(toString(end_two_rounds, time_zone), 'UTC')) % 86400),
               end_two_rounds)                                                             AS period_end
        FROM budgets FINAL
        WHERE deleted = 0
    ),
    u AS
    (
        SELECT scope, scope_id, minute,
               sum(cost_nanousd)                 AS cost_nanousd,
               sum(input_tokens + output_tokens) AS tokens
        FROM usage_minute
        ARRAY JOIN ['team', 'project', 'user'] AS scope, [team_id, project_id, user_id] AS scope_id
        WHERE minute >= now() - INTERVAL 33 DAY
          AND (scope, scope_id) IN (SELECT scope, scope_id FROM budgets FINAL WHERE deleted = 0)
        GROUP BY scope, scope_id, minute
    ),
    s AS
    (
        SELECT
            b.budget_id                              AS budget_id,
            any(b.scope)                             AS scope,
            any(b.scope_id)                          AS scope_id,
            any(b.period)                            AS period,
            any(b.time_zone)                         AS time_zone,
            any(b.unit)                              AS unit,
            any(b.amount)                            AS amount,
            any(b.thresholds)                        AS thresholds,
            any(b.description)                       AS description,
            any(b.period_first_day)                  AS period_first_day,
            any(b.period_start)                      AS period_start,
            any(b.period_end)                        AS period_end,
            sum(u.cost_nanousd)                      AS spent_cost,
            sum(u.tokens)                            AS spent_tokens
        FROM b
        LEFT JOIN u
            ON u.scope = b.scope AND u.scope_id = b.scope_id
           AND u.minute >= b.period_start AND u.minute < b.period_end
        GROUP BY b.budget_id
    )
SELECT
    budget_id, scope, scope_id, period, time_zone, unit,
    period_first_day,
    period_start,
    period_end,
    round(100 * (toUnixTimestamp(now()) - toUnixTimestamp(period_start))
          / (toUnixTimestamp(period_end) - toUnixTimestamp(period_start)), 2)   AS elapsed_percent,
    amount,
    toInt64(if(unit = 'usd', spent_cost, toInt64(spent_tokens)))                  AS spent,
    amount - spent                                                                AS remaining,
    round(spent / amount * 100, 2)                                                AS spent_percent,
    if(unit = 'usd', divide(toDecimal128(amount, 9), 1000000000), NULL)           AS amount_usd,
    if(unit = 'usd', divide(toDecimal128(spent, 9), 1000000000), NULL)            AS spent_usd,
    if(unit = 'usd', divide(toDecimal128(remaining, 9), 1000000000), NULL)        AS remaining_usd,
    thresholds,
    arrayFilter(t -> toInt128(spent) * 100 >= toInt128(amount) * t, thresholds)   AS thresholds_crossed,
    description
FROM s
ORDER BY budget_id;

-- Usage the price catalog could not price (cost_status = 'unpriced': cost 0), per UTC day, provider and
-- requested model, from the raw table (the rollups count such requests, unpriced_requests, but not their
-- tokens). The fix is a catalog entry or an override (docs/decisions/0008-pricing.md); the events keep cost 0.
CREATE VIEW IF NOT EXISTS unpriced_usage AS
SELECT
    toDate(occurred_at)                     AS day,
    provider,
    request_model                           AS model,
    count()                                 AS requests,
    uniqExact(team_id)                      AS teams,
    groupUniqArray(20)(team_id)             AS team_ids,
    sum(input_tokens)                       AS input_tokens,
    sum(cache_read_input_tokens)            AS cache_read_input_tokens,
    sum(cache_creation_input_tokens)        AS cache_creation_input_tokens,
    sum(output_tokens)                      AS output_tokens,
    sum(reasoning_output_tokens)            AS reasoning_output_tokens,
    min(occurred_at)                        AS first_seen,
    max(occurred_at)                        AS last_seen,
    groupUniqArray(20)(response_model)      AS response_models
FROM usage_events
WHERE cost_status = 'unpriced'
GROUP BY day, provider, model;
