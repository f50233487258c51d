/**
 * The detector's warm-up reads (ClickHouse I/O, behind one small interface so the service is testable):
 * everything the detector would have learned from a partition's events up to the offset ingest has written.
 *
 * The raw table carries each event's Kafka coordinates, so "the events of partition p up to offset X" is an
 * exact set: the detector rebuilds its state from exactly those and then consumes from X + 1. Nothing is counted
 * twice and nothing is missed, whatever the detector's own committed offset says (docs/decisions/0012).
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { queryRows } from '../../lib/clickhouse';
import type { Budget } from './budgets';
import { MINUTE_MS } from './types';

const RAW = 'usage_events';

export interface PartitionProgress {
  /** newest offset of the partition in the raw table, −1 when none */
  readonly offset: number;
  /** newest occurred_at among those rows (ms), NaN when none */
  readonly newestAt: number;
}

export interface HourRow {
  readonly hour: number;
  readonly team_id: string;
  readonly org_id: string;
  readonly model: string;
  readonly cost: number;
  readonly tokens: number;
  readonly requests: number;
}

export interface MinuteRow {
  readonly minute: number;
  readonly team_id: string;
  readonly org_id: string;
  readonly user_id: string;
  readonly model: string;
  readonly cost: number;
  readonly cost_sq: number;
  readonly max_call: number;
  readonly tokens: number;
}

export interface BudgetSpend {
  readonly spent: bigint;
  readonly minutes: [number, bigint][];
}

/** An event the detector is about to count, and where it came from. */
export interface RepeatCandidate {
  readonly event_id: string;
  readonly team_id: string;
  readonly occurred_at: number;
  readonly partition: number;
  readonly offset: number;
}

export interface WarmSource {
  progress(topic: string, partition: number): Promise<PartitionProgress>;
  /** teams with events in the partition since `since` (ms) */
  teams(topic: string, partition: number, since: number): Promise<string[]>;
  /** hourly spend per team and model from the hour rollup, hours in [from, to) */
  hours(teams: readonly string[], from: number, to: number): Promise<HourRow[]>;
  /** per-minute spend of the partition's raw events with offset ≤ upTo and occurred_at ≥ from */
  minutes(topic: string, partition: number, upTo: number, from: number): Promise<MinuteRow[]>;
  /** a budget's spend in the partition (offset ≤ upTo) since periodStart, and per minute since minutesFrom */
  /**
   * The candidates ClickHouse holds from an EARLIER message (another partition, or an earlier offset of this one):
   * client repeats of an event counted before, as `${event_id}@${offset}`. A candidate that ingest has written
   * from this very message is not one, nor is the first of two copies in one batch.
   */
  repeats(topic: string, candidates: readonly RepeatCandidate[]): Promise<Set<string>>;
  budgetSpend(
    topic: string,
    partition: number,
    upTo: number,
    budget: Budget,
    periodStart: number,
    minutesFrom: number,
  ): Promise<BudgetSpend>;
}

const SCOPE_COLUMN = { team: 'team_id', project: 'project_id', user: 'user_id' } as const;

export function clickhouseWarmSource(ch: ClickHouseClient): WarmSource {
  const rows = <T>(query: string, params: Record<string, unknown>): Promise<T[]> =>
    queryRows<T>(ch, query, params);
  const num = (v: string | number): number => (typeof v === 'number' ? v : Number(v));
  return {
    async progress(topic, partition) {
      const r = await rows<{ o: string; at: string; n: string }>(
        `SELECT max(kafka_offset) AS o, toUnixTimestamp64Milli(max(occurred_at)) AS at, count() AS n
         FROM ${RAW} WHERE kafka_topic = {topic:String} AND kafka_partition = {p:UInt32}`,
        { topic, p: partition },
      );
      const first = r[0];
      if (first === undefined || Number(first.n) === 0) return { offset: -1, newestAt: Number.NaN };
      return { offset: Number(first.o), newestAt: Number(first.at) };
    },
    async teams(topic, partition, since) {
      const r = await rows<{ team_id: string }>(
        `SELECT DISTINCT team_id FROM ${RAW}
         WHERE kafka_topic = {topic:String} AND kafka_partition = {p:UInt32}
           AND occurred_at >= fromUnixTimestamp64Milli({since:Int64})`,
        { topic, p: partition, since },
      );
      return r.map((x) => x.team_id);
    },
    async hours(teams, from, to) {
      if (teams.length === 0) return [];
      const r = await rows<{
        h: string;
        team_id: string;
        model: string;
        cost: string;
        tokens: string;
        requests: string;
      }>(
        `SELECT toUnixTimestamp(hour) * 1000 AS h, team_id, model,
                sum(cost_nanousd) AS cost, sum(input_tokens + output_tokens) AS tokens, sum(requests) AS requests
         FROM usage_hour
         WHERE team_id IN {teams:Array(String)}
           AND hour >= toDateTime(intDiv({from:Int64}, 1000)) AND hour < toDateTime(intDiv({to:Int64}, 1000))
         GROUP BY h, team_id, model ORDER BY h`,
        { teams: [...teams], from, to },
      );
      return r.map((x) => ({
        hour: num(x.h),
        team_id: x.team_id,
        org_id: '',
        model: x.model,
        cost: num(x.cost),
        tokens: num(x.tokens),
        requests: num(x.requests),
      }));
    },
    async minutes(topic, partition, upTo, from) {
      if (upTo < 0) return [];
      const r = await rows<{
        m: string;
        team_id: string;
        org_id: string;
        user_id: string;
        model: string;
        cost: string;
        cost_sq: number;
        max_call: string;
        tokens: string;
      }>(
        `SELECT intDiv(toUnixTimestamp64Milli(occurred_at), 60000) * 60000 AS m, team_id, org_id, user_id,
                request_model AS model, sum(cost_nanousd) AS cost,
                sum(toFloat64(cost_nanousd) * toFloat64(cost_nanousd)) AS cost_sq, max(cost_nanousd) AS max_call,
                sum(input_tokens + output_tokens) AS tokens
         FROM ${RAW}
         WHERE kafka_topic = {topic:String} AND kafka_partition = {p:UInt32} AND kafka_offset <= {upTo:UInt64}
           AND occurred_at >= fromUnixTimestamp64Milli({from:Int64})
         GROUP BY m, team_id, org_id, user_id, model ORDER BY m`,
        { topic, p: partition, upTo, from },
      );
      return r.map((x) => ({
        minute: num(x.m),
        team_id: x.team_id,
        org_id: x.org_id,
        user_id: x.user_id,
        model: x.model,
        cost: num(x.cost),
        cost_sq: num(x.cost_sq),
        max_call: num(x.max_call),
        tokens: num(x.tokens),
      }));
    },
    async repeats(topic, candidates) {
      const found = new Set<string>();
      for (let i = 0; i < candidates.length; i += 5000) {
        const part = candidates.slice(i, i + 5000);
        const own = new Map<string, RepeatCandidate[]>();
        for (const c of part) own.set(c.event_id, [...(own.get(c.event_id) ?? []), c]);
        let min = Number.POSITIVE_INFINITY;
        let max = Number.NEGATIVE_INFINITY;
        for (const c of part) {
          min = Math.min(min, c.occurred_at);
          max = Math.max(max, c.occurred_at);
        }
        const r = await rows<{ id: string; t: string; p: number; o: string }>(
          `SELECT toString(event_id) AS id, kafka_topic AS t, kafka_partition AS p, toString(kafka_offset) AS o
           FROM ${RAW}
           WHERE team_id IN {teams:Array(String)}
             AND occurred_at BETWEEN fromUnixTimestamp64Milli({min:Int64}) AND fromUnixTimestamp64Milli({max:Int64})
             AND event_id IN {ids:Array(UUID)}`,
          { teams: [...new Set(part.map((c) => c.team_id))], min, max, ids: [...own.keys()] },
        );
        for (const x of r) {
          for (const c of own.get(x.id) ?? []) {
            if (x.t !== topic || x.p !== c.partition || Number(x.o) < c.offset)
              found.add(`${c.event_id}@${c.offset}`);
          }
        }
      }
      return found;
    },
    async budgetSpend(topic, partition, upTo, budget, periodStart, minutesFrom) {
      if (upTo < 0) return { spent: 0n, minutes: [] };
      const amount = budget.unit === 'usd' ? 'cost_nanousd' : 'input_tokens + output_tokens';
      const r = await rows<{ m: string; amount: string }>(
        `SELECT intDiv(toUnixTimestamp64Milli(occurred_at), 60000) * 60000 AS m, toString(sum(${amount})) AS amount
         FROM ${RAW}
         WHERE kafka_topic = {topic:String} AND kafka_partition = {p:UInt32} AND kafka_offset <= {upTo:UInt64}
           AND ${SCOPE_COLUMN[budget.scope]} = {id:String}
           AND occurred_at >= fromUnixTimestamp64Milli({from:Int64})
         GROUP BY m ORDER BY m`,
        { topic, p: partition, upTo, id: budget.scope_id, from: Math.min(periodStart, minutesFrom) },
      );
      let spent = 0n;
      const minutes: [number, bigint][] = [];
      for (const x of r) {
        const m = num(x.m);
        const a = BigInt(x.amount);
        if (m >= periodStart) spent += a;
        if (m >= minutesFrom) minutes.push([m, a]);
      }
      return { spent, minutes };
    },
  };
}

/** Start of the minute containing `ms`. */
export function minuteStart(ms: number): number {
  return Math.floor(ms / MINUTE_MS) * MINUTE_MS;
}
