/**
 * Where the detector's alerts go: the topic `tokenledger.alerts.v1` (Avro single-object, key team_id) for
 * subscribers, and the ClickHouse table `alerts` (migrations/0002) for BI. Plus the two read-backs the
 * detector needs on start: which alerts it already decided, and which spikes are still open.
 *
 * Order and what a crash between the steps causes:
 *  1. publish every alert of the call to the topic (acks = all, idempotent-capable producer).
 *     A crash before the broker acknowledged: nothing was published or recorded; the detector decides the alerts
 *     again after its restart (same alert_id, derived from kind, scope and window).
 *  2. insert each alert into `alerts`, one insert per alert with insert_deduplication_token = alert_id.
 *     A crash between 1 and 2 (or a failed insert, which `deliver` reports by throwing): the alerts are on the
 *     topic but not in the table; the detector does not find them in `recordedAlertIds`, decides them again and
 *     publishes them a second time — a repeat on the topic with the same alert_id, which subscribers (the relay
 *     included) drop by alert_id. The table gets each alert once: a repeated insert of an alert_id is dropped by
 *     ClickHouse's deduplication window, and ReplacingMergeTree ORDER BY (team_id, alert_id) removes any
 *     repeat that arrives after it.
 * So: at least once on the topic, deduplicated by alert_id; exactly one row per alert_id in the table.
 */
import type { ClickHouseClient, ClickHouseSettings } from '@clickhouse/client';
import type { Producer } from 'kafkajs';
import { queryRows } from '../../lib/clickhouse';
import { classifyClickHouseError, TokenledgerError } from '../../lib/errors';
import type { Logger } from '../../lib/logger';
import { TOPICS } from '../../lib/topics';
import { encodeAlert } from '../../schemas/alert/schema';
import type { Alert, AlertScope, AlertSeverity } from '../../schemas/alert/types';

/** Kafka header carrying the alert_id, so a subscriber can deduplicate without decoding the value. */
export const ALERT_ID_HEADER = 'tokenledger.alert_id';

export const ALERTS_TABLE = 'alerts';

export interface AlertSinkDeps {
  /** An idempotent-capable producer, connected by the caller (the sink never connects or disconnects it). */
  readonly producer: Producer;
  readonly clickhouse: ClickHouseClient;
  /** Default TOPICS.alerts.name (tokenledger.alerts.v1). */
  readonly topic?: string;
  readonly logger: Logger;
}

export interface AlertSink {
  /**
   * Publishes the alerts, then records them in ClickHouse. Resolves when both acknowledged. Rejects with a
   * TokenledgerError (KAFKA_UNAVAILABLE, CLICKHOUSE_UNAVAILABLE or CLICKHOUSE_QUERY_FAILED; `retriable` says
   * whether calling again may help): calling again with the same alerts is safe (see above).
   */
  deliver(alerts: readonly Alert[]): Promise<void>;
}

/** Insert settings set explicitly on every insert (DESIGN: the embedded engine defaults async_insert = 1). */
function insertSettings(alertId: string): ClickHouseSettings {
  return { async_insert: 0, insert_deduplicate: 1, insert_deduplication_token: alertId };
}

export function createAlertSink(deps: AlertSinkDeps): AlertSink {
  const topic = deps.topic ?? TOPICS.alerts.name;
  const log = deps.logger.child({ module: 'alert-sink', topic });
  return {
    async deliver(alerts) {
      if (alerts.length === 0) return;
      // Step 1: the topic. A crash before this resolves: nothing published; the detector decides them again.
      try {
        await deps.producer.send({
          topic,
          acks: -1,
          messages: alerts.map((a) => ({
            key: a.team_id,
            value: encodeAlert(a),
            headers: { [ALERT_ID_HEADER]: a.alert_id },
          })),
        });
      } catch (cause) {
        throw new TokenledgerError(
          'KAFKA_UNAVAILABLE',
          `publishing ${alerts.length} alert(s) to ${topic} failed: ${cause instanceof Error ? cause.message : String(cause)}`,
          {
            cause,
            // kafkajs errors say whether a retry may help; anything else is assumed transient
            retriable: !(
              typeof cause === 'object' &&
              cause !== null &&
              'retriable' in cause &&
              cause.retriable === false
            ),
            context: { topic },
          },
        );
      }
      // Step 2: the table, one insert per alert so that the deduplication token is exactly its alert_id. A crash
      // from here on: published but (partly) not recorded; decided and published again after the restart (a
      // repeat with the same alert_id on the topic), recorded once.
      for (const a of alerts) {
        try {
          await deps.clickhouse.insert({
            table: ALERTS_TABLE,
            values: [alertRow(a)],
            format: 'JSONEachRow',
            clickhouse_settings: insertSettings(a.alert_id),
          });
        } catch (cause) {
          const failure = classifyClickHouseError(cause);
          throw new TokenledgerError(
            failure.kind === 'server' ? 'CLICKHOUSE_QUERY_FAILED' : 'CLICKHOUSE_UNAVAILABLE',
            `recording alert ${a.alert_id} in ${ALERTS_TABLE} failed (${failure.code}); it was published to ${topic}: ${cause instanceof Error ? cause.message : String(cause)}`,
            { cause, retriable: failure.retriable, context: { alert_id: a.alert_id, topic } },
          );
        }
        log.info(
          {
            alert_id: a.alert_id,
            kind: a.kind,
            severity: a.severity,
            team_id: a.team_id,
            scope: a.scope,
          },
          'alert delivered',
        );
      }
    },
  };
}

/** A row of `alerts` as JSONEachRow. Int64 as decimal strings (JSON numbers stop at 2^53). */
export interface AlertRow {
  alert_id: string;
  kind: string;
  severity: string;
  fired_at: string;
  org_id: string;
  team_id: string;
  scope: string;
  model: string;
  user_id: string;
  project_id: string;
  window_start: string;
  window_end: string;
  observed_cost_nanousd: string;
  expected_cost_nanousd: string;
  observed_tokens: string;
  expected_tokens: string;
  score: number;
  rule: string;
  budget_id: string;
  budget_period: string;
  budget_period_start: string | null;
  budget_time_zone: string;
  budget_unit: string;
  budget_limit: string;
  budget_spent: string;
  threshold_percent: number | null;
  burn_rate: number | null;
  burn_window: string;
  forecast_exhausted_at: string | null;
  /** Named tuples as objects (JSON named tuples are objects by default since ClickHouse 23.x). */
  top_contributors: { dimension: string; value: string; cost_nanousd: string; share: number }[];
  message: string;
  related_alert_id: string;
  detector: string;
}

/** ms since the epoch as DateTime64(3, 'UTC') text: `YYYY-MM-DD hh:mm:ss.sss` (unambiguous in every input format). */
export function dateTime64(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
}

/** Floats ClickHouse's JSON reader accepts: NaN and ±Infinity have no JSON form, they become null or 0. */
function finite(x: number): number {
  return Number.isFinite(x) ? x : 0;
}

/** The flattened row (migrations/0002_alerts_budgets.sql): nulls of String columns become ''. */
export function alertRow(a: Alert): AlertRow {
  const b = a.budget;
  return {
    alert_id: a.alert_id,
    kind: a.kind,
    severity: a.severity,
    fired_at: dateTime64(a.fired_at),
    org_id: a.org_id ?? '',
    team_id: a.team_id,
    scope: a.scope,
    model: a.model ?? '',
    user_id: a.user_id ?? '',
    project_id: a.project_id ?? '',
    window_start: dateTime64(a.window_start),
    window_end: dateTime64(a.window_end),
    observed_cost_nanousd: a.observed_cost_nanousd.toString(),
    expected_cost_nanousd: a.expected_cost_nanousd.toString(),
    observed_tokens: a.observed_tokens.toString(),
    expected_tokens: a.expected_tokens.toString(),
    score: finite(a.score),
    rule: a.rule,
    budget_id: b?.budget_id ?? '',
    budget_period: b?.period ?? '',
    budget_period_start: b === null ? null : dateTime64(b.period_start),
    budget_time_zone: b?.time_zone ?? '',
    budget_unit: b?.unit ?? '',
    budget_limit: (b?.limit ?? 0n).toString(),
    budget_spent: (b?.spent ?? 0n).toString(),
    threshold_percent: b?.threshold_percent ?? null,
    burn_rate: b?.burn_rate === null || b?.burn_rate === undefined ? null : finite(b.burn_rate),
    burn_window: b?.burn_window ?? '',
    forecast_exhausted_at:
      b?.forecast_exhausted_at === null || b?.forecast_exhausted_at === undefined
        ? null
        : dateTime64(b.forecast_exhausted_at),
    top_contributors: a.top_contributors.map((c) => ({
      dimension: c.dimension,
      value: c.value,
      cost_nanousd: c.cost_nanousd.toString(),
      share: finite(c.share),
    })),
    message: a.message,
    related_alert_id: a.related_alert_id ?? '',
    detector: a.detector,
  };
}

/**
 * The alert_ids recorded with `fired_at >= since` (ms), optionally of some teams only: what the detector has
 * already decided, so its warm-up does not publish them again. Every alert whose window starts at or after
 * `since` is among them (an alert fires after its window starts).
 */
export async function recordedAlertIds(
  ch: ClickHouseClient,
  opts: { readonly teams?: readonly string[]; readonly since: number },
): Promise<Set<string>> {
  const byTeam = opts.teams !== undefined;
  const rows = await queryRows<{ alert_id: string }>(
    ch,
    `SELECT DISTINCT alert_id FROM ${ALERTS_TABLE}
     WHERE fired_at >= fromUnixTimestamp64Milli({since:Int64})
       ${byTeam ? 'AND team_id IN {teams:Array(String)}' : ''}`,
    { since: Math.floor(opts.since), ...(byTeam ? { teams: [...(opts.teams ?? [])] } : {}) },
  );
  return new Set(rows.map((r) => r.alert_id));
}

/** A cost_spike without a spike_resolved that ends it: the detector resumes its episode instead of firing again. */
export interface OpenSpike {
  readonly alert_id: string;
  readonly team_id: string;
  readonly org_id: string | null;
  readonly scope: AlertScope;
  readonly model: string | null;
  /** the episode's severity now: critical when an escalation was recorded */
  readonly severity: AlertSeverity;
  /** the severity the episode opened with (this alert's own) */
  readonly opened_with: AlertSeverity;
  /** ms since the epoch (UTC) */
  readonly window_start: number;
  readonly window_end: number;
  readonly fired_at: number;
}

/**
 * The episodes still open: each cost_spike that opened an episode (related_alert_id empty), fired at or after
 * `since` (ms), that no spike_resolved names, oldest window first. An escalation (a later critical cost_spike of
 * the same episode, related_alert_id = the opening alert) is not an episode of its own: it only raises the
 * severity reported for the episode it escalates.
 */
export async function openSpikes(ch: ClickHouseClient, since: number): Promise<OpenSpike[]> {
  const rows = await queryRows<{
    alert_id: string;
    team_id: string;
    org_id: string;
    scope: AlertScope;
    model: string;
    severity: AlertSeverity;
    opened_with: AlertSeverity;
    window_start_ms: string | number;
    window_end_ms: string | number;
    fired_at_ms: string | number;
  }>(
    ch,
    // aliases differ from the column names: ClickHouse resolves an alias in WHERE before the column
    `SELECT o.alert_id AS alert_id, o.team_id AS team_id, o.org_id AS org_id, o.scope AS scope, o.model AS model,
            if(o.severity = 'critical' OR e.alert_id != '', 'critical', o.severity) AS severity,
            o.severity AS opened_with,
            toUnixTimestamp64Milli(o.window_start) AS window_start_ms,
            toUnixTimestamp64Milli(o.window_end) AS window_end_ms,
            toUnixTimestamp64Milli(o.fired_at) AS fired_at_ms
     FROM (
       SELECT * FROM ${ALERTS_TABLE}
       WHERE kind = 'cost_spike' AND related_alert_id = ''
         AND fired_at >= fromUnixTimestamp64Milli({since:Int64})
         AND alert_id NOT IN (
           SELECT related_alert_id FROM ${ALERTS_TABLE}
           WHERE kind = 'spike_resolved' AND related_alert_id != ''
             AND fired_at >= fromUnixTimestamp64Milli({since:Int64}))
       ORDER BY alert_id, recorded_at DESC
       LIMIT 1 BY alert_id) AS o
     LEFT JOIN (
       SELECT DISTINCT alert_id, related_alert_id FROM ${ALERTS_TABLE}
       WHERE kind = 'cost_spike' AND related_alert_id != ''
         AND fired_at >= fromUnixTimestamp64Milli({since:Int64})) AS e
     ON e.related_alert_id = o.alert_id
     ORDER BY o.alert_id, severity
     LIMIT 1 BY o.alert_id`,
    { since: Math.floor(since) },
  );
  return rows
    .map((r) => ({
      alert_id: r.alert_id,
      team_id: r.team_id,
      org_id: r.org_id === '' ? null : r.org_id,
      scope: r.scope,
      model: r.model === '' ? null : r.model,
      severity: r.severity,
      opened_with: r.opened_with,
      window_start: Number(r.window_start_ms),
      window_end: Number(r.window_end_ms),
      fired_at: Number(r.fired_at_ms),
    }))
    .sort((x, y) => x.window_start - y.window_start || x.alert_id.localeCompare(y.alert_id));
}
