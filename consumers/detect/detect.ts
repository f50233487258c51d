/**
 * The spike and budget detector: its own consumer group on the usage topic; alerts to tokenledger.alerts.v1
 * and the ClickHouse alerts table. docs/decisions/0012-detector.md explains the design; in short:
 *
 *  - Each assigned partition is warmed from ClickHouse before its first message is counted: the newest offset
 *    X ingest wrote for it, hourly baselines (5 weeks of the hour rollup), the last one or two hours of its raw
 *    events with offset ≤ X replayed minute by minute, budget spend-to-date from its raw events with offset ≤ X,
 *    and the alerts already recorded. Then it consumes from X + 1 (seeking back if its own offset is ahead), so
 *    no event is counted twice or missed, and a restart neither opens a blind period nor fires again.
 *  - Events are priced and validated exactly as ingest does (the same converter); invalid ones are left to
 *    ingest's dead-letter topic. Each event adds to its event-time minute (team, team+model) and to the budgets
 *    it matches; a threshold alert is decided by the event that crosses the threshold.
 *  - A watermark (newest event time − allowed lateness; advanced by the wall clock when the stream is idle)
 *    closes minutes: closed minutes go to the spike detector (spike.ts), then burn-rate and forecast checks run.
 *    An event for a closed minute is late: it still counts for budgets, and is counted as late.
 *  - Alerts are delivered (topic, then ClickHouse) before the batch's offsets are committed.
 *  - A rebalance drops all partition state (and the budgets' share of revoked partitions); partitions are
 *    warmed again on their next batch.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import type { Consumer, EachBatchPayload, Kafka, Producer } from 'kafkajs';
import type { Registry } from 'prom-client';
import { classifyClickHouseError, isTokenledgerError } from '../../lib/errors';
import { rateLimitedLog } from '../../lib/logger';
import type { Logger } from '../../lib/logger';
import type { Alert } from '../../schemas/alert/types';
import { usageEventRegistry } from '../../schemas/usage-event/schema';
import type { UsageEvent } from '../../schemas/usage-event/types';
import { createAlertSink, openSpikes, recordedAlertIds } from '../alerts';
import type { AlertSink } from '../alerts';
import { createConverter, PartitionDedupe } from '../ingest';
import type { UsageRow } from '../ingest';
import type { Catalog } from '../pricing';
import { decisionAlertId, spikeAlert } from './alerts';
import { loadBudgets } from './budget-store';
import { BudgetLedger } from './budgets';
import type { BudgetSettings } from './budgets';
import { createDetectMetrics } from './metrics';
import type { DetectMetrics } from './metrics';
import { MinuteBuckets } from './minutes';
import { periodBounds } from './periods';
import { SpikeDetector } from './spike';
import type { SpikeSettings } from './spike';
import { HOUR_MS, MINUTE_MS } from './types';
import type { SpikeDecision } from './types';
import { clickhouseWarmSource, minuteStart } from './warm';
import type { RepeatCandidate, WarmSource } from './warm';

export interface DetectOptions {
  readonly kafka: Kafka;
  readonly clickhouse: ClickHouseClient;
  readonly logger: Logger;
  readonly catalog: Catalog;
  readonly topic: string;
  readonly groupId: string;
  readonly alertsTopic: string;
  /** How long after a minute ends its late events are still counted in it (default 30 s). */
  readonly allowedLatenessMs?: number;
  /** With no events for this long, the watermark follows the wall clock (default 60 s). */
  readonly idleAdvanceMs?: number;
  /** How often budgets are re-read from ClickHouse (default 30 s). */
  readonly budgetReloadMs?: number;
  readonly sessionTimeoutMs?: number;
  readonly spike?: Partial<SpikeSettings>;
  readonly budgets?: Partial<BudgetSettings>;
  readonly warm?: WarmSource;
  readonly metricsRegistry?: Registry;
  /** Alert.detector; default tokenledger-detect/<group> */
  readonly name?: string;
  /** Called once when the detector stops for good on an error retrying cannot fix. */
  readonly onFatal?: (err: Error) => void;
}

export interface Detect {
  start(): Promise<void>;
  /** Finishes the batch in progress (alerts delivered, offsets committed), then leaves the group. */
  stop(): Promise<void>;
  ready(): boolean;
  healthy(): boolean;
  readonly metrics: DetectMetrics;
}

interface PartitionState {
  readonly engine: SpikeDetector;
  readonly buckets: MinuteBuckets;
  /** the next minute (index) to close; NaN until the partition's first event when ClickHouse had none */
  nextMinute: number;
  /** offsets at or below this are counted (warm-up or live) */
  done: number;
  readonly dedupe: PartitionDedupe;
  /** newest event time seen in the partition (clamped to the wall clock): its watermark's basis */
  newestAt: number;
  /** wall clock of its last event: an idle partition's watermark follows the wall clock */
  lastEventWall: number;
  /** the last batch reached the partition's high watermark: silence means no events, not a backlog */
  caughtUp: boolean;
}

/** Baselines look back 5 weeks; recorded alerts as far. */
const HISTORY_MS = 35 * 24 * HOUR_MS;
/** A warm-up replays at most this many minutes of raw events. */
const MAX_REPLAY_MINUTES = 180;

export function createDetect(o: DetectOptions): Detect {
  const log = o.logger.child({ module: 'detect', topic: o.topic, groupId: o.groupId });
  const name = o.name ?? `tokenledger-detect/${o.groupId}`;
  const lateness = o.allowedLatenessMs ?? 30_000;
  const idleAdvance = o.idleAdvanceMs ?? 60_000;
  const warm = o.warm ?? clickhouseWarmSource(o.clickhouse);
  const metrics = createDetectMetrics(o.metricsRegistry);
  const converter = createConverter(usageEventRegistry(), o.catalog);
  const ledger = new BudgetLedger({
    ...(o.budgets === undefined ? {} : { settings: o.budgets }),
    detector: name,
  });
  const partitions = new Map<number, PartitionState>();
  /** alert ids delivered or recorded: never delivered again by this process */
  const delivered = new Set<string>();
  /** alerts decided and not yet delivered (a failed delivery is retried with the next batch or tick) */
  let pending: Alert[] = [];
  const logLimited = rateLimitedLog(log, 'warn');
  let consumer: Consumer | undefined;
  let producer: Producer | undefined;
  let sink: AlertSink | undefined;
  let joined = false;
  let clickhouseOk = true;
  let fatal: Error | undefined;
  let stopping = false;
  let evaluatedMinute = Number.NaN;
  let budgetsChanged = false;
  let ticking = false;
  let timers: NodeJS.Timeout[] = [];
  // one thing at a time: batches, the idle clock and budget changes all touch the same state
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = queue.then(fn, fn);
    queue = run.catch(() => undefined);
    return run;
  };

  async function withRetry<T>(what: string, fn: () => Promise<T>, beat?: () => Promise<void>): Promise<T> {
    let delay = 200;
    for (let attempt = 1; ; attempt++) {
      try {
        const r = await fn();
        clickhouseOk = true;
        return r;
      } catch (err) {
        const retriable = isTokenledgerError(err) ? err.retriable : classifyClickHouseError(err).retriable;
        if (!retriable || stopping) throw err;
        clickhouseOk = false;
        logLimited('retry', { err, what, attempt }, 'detector: dependency unavailable; retrying');
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(5000, delay * 2);
        await beat?.().catch(() => undefined);
      }
    }
  }

  /** Delivers what is pending plus `alerts`; what fails stays pending (and the error is thrown). */
  async function deliver(alerts: readonly Alert[], beat?: () => Promise<void>): Promise<void> {
    for (const a of alerts) if (!delivered.has(a.alert_id)) pending.push(a);
    if (pending.length === 0 || sink === undefined) return;
    const s = sink;
    const batch = pending.filter((a, i) => pending.findIndex((b) => b.alert_id === a.alert_id) === i);
    await withRetry(`delivering ${batch.length} alerts`, () => s.deliver(batch), beat);
    pending = [];
    for (const a of batch) {
      delivered.add(a.alert_id);
      metrics.alerts.inc({ kind: a.kind, severity: a.severity });
      log.info({ alertId: a.alert_id, kind: a.kind, severity: a.severity, team: a.team_id }, a.message);
    }
  }

  function spikeAlerts(decisions: readonly SpikeDecision[], now: number): Alert[] {
    return decisions.filter((d) => !delivered.has(decisionAlertId(d))).map((d) => spikeAlert(d, now, name));
  }

  /** Rebuilds a partition's state from ClickHouse (see the header). Returns it and the alerts it decided. */
  async function warmPartition(
    partition: number,
    beat: () => Promise<void>,
  ): Promise<{ state: PartitionState; alerts: Alert[] }> {
    const started = Date.now();
    const progress = await warm.progress(o.topic, partition);
    const ref = Number.isNaN(progress.newestAt) ? Date.now() : Math.min(progress.newestAt, Date.now());
    const replayFrom = Math.floor(ref / HOUR_MS) * HOUR_MS - HOUR_MS;
    // nothing of the partition in ClickHouse: nothing to learn (rollup rows written since belong to offsets this
    // detector is about to consume, and would be counted twice)
    const teams = progress.offset < 0 ? [] : await warm.teams(o.topic, partition, ref - HISTORY_MS);
    await beat();
    const engine = new SpikeDetector(o.spike);
    const hours = await warm.hours(teams, replayFrom - HISTORY_MS, replayFrom);
    await beat();
    const teamHours = new Map<string, { cost: number; tokens: number; requests: number }>();
    for (const h of hours) {
      engine.warmHour(
        { scope: 'team_model', team_id: h.team_id, model: h.model, org_id: null },
        h.hour,
        h.cost,
        h.tokens,
        h.requests,
      );
      const key = `${h.team_id}\u0000${h.hour}`;
      const t = teamHours.get(key) ?? { cost: 0, tokens: 0, requests: 0 };
      t.cost += h.cost;
      t.tokens += h.tokens;
      t.requests += h.requests;
      teamHours.set(key, t);
    }
    for (const [key, t] of teamHours) {
      const [team, hour] = key.split('\u0000');
      engine.warmHour(
        { scope: 'team', team_id: team ?? '', model: null, org_id: null },
        Number(hour),
        t.cost,
        t.tokens,
        t.requests,
      );
    }
    engine.finishWarm(replayFrom);

    // every alert recorded lately (budget alerts of project and user budgets may carry any team)
    const recorded = await recordedAlertIds(o.clickhouse, { since: ref - HISTORY_MS });
    for (const id of recorded) delivered.add(id);
    ledger.markFired(recorded);
    // episodes an earlier run opened before the replay window and did not resolve: resumed, not alerted
    // again; later ones are decided again by the replay itself (with the same ids)
    const open = await openSpikes(o.clickhouse, ref - HISTORY_MS);
    let adopted = 0;
    for (const e of open) {
      if (!teams.includes(e.team_id) || e.window_start >= replayFrom) continue;
      if (e.scope !== 'team' && e.scope !== 'team_model') continue;
      engine.adoptEpisode(
        { scope: e.scope, team_id: e.team_id, model: e.model, org_id: e.org_id },
        e.window_start,
        e.opened_with,
        e.severity,
      );
      adopted++;
    }
    await beat();

    // replay the last hour or two minute by minute: recent windows, and decisions a crash may have lost
    const buckets = new MinuteBuckets();
    for (const r of await warm.minutes(o.topic, partition, progress.offset, replayFrom)) {
      buckets.addTotals(r.minute / MINUTE_MS, {
        org_id: r.org_id === '' ? null : r.org_id,
        team_id: r.team_id,
        user_id: r.user_id === '' ? null : r.user_id,
        model: r.model,
        cost_nanousd: r.cost,
        cost_sq: r.cost_sq,
        max_call_nanousd: r.max_call,
        tokens: r.tokens,
      });
    }
    const now = Date.now();
    const decisions: SpikeDecision[] = [];
    // nothing of this partition in ClickHouse yet: its minutes start with its first event (NaN until then)
    let next = Number.NaN;
    if (progress.offset >= 0) {
      const closeBefore = Math.floor((ref - lateness) / MINUTE_MS);
      next = Math.max(replayFrom / MINUTE_MS, closeBefore - MAX_REPLAY_MINUTES);
      for (; next < closeBefore; next++) {
        decisions.push(...engine.closeMinute(next * MINUTE_MS, buckets.take(next)));
      }
    }
    await beat();

    for (const b of ledger.list()) {
      const bounds = periodBounds(ref, b.period, b.time_zone);
      const spend = await warm.budgetSpend(
        o.topic,
        partition,
        progress.offset,
        b,
        bounds.start,
        minuteStart(ref) - ledger.historyMs(b.budget_id),
      );
      ledger.seed(partition, b.budget_id, bounds.start, spend.spent, spend.minutes);
      await beat();
    }
    log.info(
      {
        partition,
        resumeAfterOffset: progress.offset,
        teams: teams.length,
        hours: hours.length,
        adoptedEpisodes: adopted,
        recordedAlerts: recorded.size,
        ms: Date.now() - started,
      },
      'partition assigned: warmed from ClickHouse',
    );
    return {
      state: {
        engine,
        buckets,
        nextMinute: next,
        done: progress.offset,
        dedupe: new PartitionDedupe(
          10 * 60_000,
          Number.isNaN(progress.newestAt) ? -Infinity : progress.newestAt,
        ),
        newestAt: Number.isNaN(progress.newestAt) ? -Infinity : ref,
        lastEventWall: now,
        caughtUp: false,
      },
      alerts: spikeAlerts(decisions, now),
    };
  }

  /**
   * Closes every minute each partition's watermark has passed (its newest event time − the allowed lateness;
   * the wall clock when it has been idle), then the budget checks up to the slowest partition's watermark.
   */
  function closeMinutes(now: number): Alert[] {
    const alerts: Alert[] = [];
    let scopes = 0;
    let slowest = Number.POSITIVE_INFINITY;
    for (const st of partitions.values()) {
      scopes += st.engine.size;
      // idle only when caught up: a partition waiting behind a backlog (or a broker outage) is not silent
      const idle = st.caughtUp && now - st.lastEventWall >= idleAdvance;
      const basis = idle ? Math.max(st.newestAt, now - idleAdvance) : st.newestAt;
      if (!Number.isFinite(basis)) continue;
      const target = Math.floor((basis - lateness) / MINUTE_MS);
      slowest = Math.min(slowest, target);
      if (Number.isNaN(st.nextMinute)) {
        const first = st.buckets.earliest();
        if (first === undefined) continue;
        st.nextMinute = first;
      }
      // a long gap (an idle stretch) is closed from at most an hour back; minutes with spend before that are
      // closed first, in order, so their spend still reaches the hourly history
      if (target - st.nextMinute > 60) {
        for (let m = st.buckets.earliest(); m !== undefined && m < target - 60; m = st.buckets.earliest()) {
          alerts.push(...spikeAlerts(st.engine.closeMinute(m * MINUTE_MS, st.buckets.take(m)), now));
        }
        st.nextMinute = target - 60;
      }
      for (; st.nextMinute < target; st.nextMinute++) {
        alerts.push(
          ...spikeAlerts(
            st.engine.closeMinute(st.nextMinute * MINUTE_MS, st.buckets.take(st.nextMinute)),
            now,
          ),
        );
      }
    }
    metrics.scopes.set(scopes);
    if (Number.isFinite(slowest)) {
      metrics.watermarkLag.set(Math.max(0, (now - slowest * MINUTE_MS) / 1000));
      if (!(evaluatedMinute >= slowest)) {
        evaluatedMinute = slowest;
        alerts.push(...ledger.evaluate(slowest * MINUTE_MS, now));
      }
    }
    return alerts;
  }

  async function eachBatch(p: EachBatchPayload): Promise<void> {
    const { batch } = p;
    const partition = batch.partition;
    const beat = (): Promise<void> => p.heartbeat();
    const alerts: Alert[] = [];
    let st = partitions.get(partition);
    if (st === undefined) {
      const warmed = await withRetry(
        `warming partition ${partition}`,
        () => warmPartition(partition, beat),
        beat,
      );
      st = warmed.state;
      partitions.set(partition, st);
      alerts.push(...warmed.alerts);
      const first = Number(batch.firstOffset() ?? batch.highWatermark);
      if (first > st.done + 1) {
        // this group's own offset is ahead of ClickHouse: go back to where ingest's rows end
        await deliver(alerts, beat);
        consumer?.seek({ topic: o.topic, partition, offset: String(st.done + 1) });
        return;
      }
    }
    const now = Date.now();
    const fresh: { row: UsageRow; event: UsageEvent; offset: number }[] = [];
    const lookups: RepeatCandidate[] = [];
    let last: string | undefined;
    for (const m of batch.messages) {
      if (!p.isRunning() || p.isStale()) break;
      last = m.offset;
      const offset = Number(m.offset);
      if (offset <= st.done) {
        metrics.events.inc({ outcome: 'skipped_in_clickhouse_state' });
        continue;
      }
      const c = converter.convert(
        { topic: o.topic, partition, offset: m.offset, key: m.key, value: m.value, headers: m.headers },
        now,
      );
      if (!c.ok) {
        metrics.events.inc({ outcome: 'refused' });
        continue;
      }
      fresh.push({ row: c.row, event: c.event, offset });
      if (st.dedupe.needsLookup(c.row.occurred_at)) {
        lookups.push({
          event_id: c.row.event_id,
          team_id: c.row.team_id,
          occurred_at: c.row.occurred_at,
          partition,
          offset,
        });
      }
    }
    // client repeats of events ClickHouse has from earlier messages (older than memory can tell)
    const repeats =
      lookups.length === 0
        ? new Set<string>()
        : await withRetry('looking up repeats', () => warm.repeats(o.topic, lookups), beat);
    for (const { row, event, offset } of fresh) {
      st.done = offset;
      if (st.dedupe.has(row.event_id) || repeats.has(`${row.event_id}@${offset}`)) {
        metrics.events.inc({ outcome: 'duplicate' });
        continue;
      }
      st.dedupe.add(row.event_id, row.occurred_at);
      const tokens = row.input_tokens + row.output_tokens;
      alerts.push(
        ...ledger.add(
          partition,
          {
            event_id: row.event_id,
            occurred_at: row.occurred_at,
            org_id: event.org_id,
            team_id: row.team_id,
            project_id: event.project_id,
            user_id: event.user_id,
            cost_nanousd: BigInt(row.cost_nanousd),
            tokens: BigInt(tokens),
          },
          now,
        ),
      );
      if (Math.floor(row.occurred_at / MINUTE_MS) < st.nextMinute) {
        metrics.events.inc({ outcome: 'late' });
      } else {
        st.buckets.add({
          occurred_at: row.occurred_at,
          org_id: event.org_id,
          team_id: row.team_id,
          user_id: event.user_id,
          model: row.request_model,
          cost_nanousd: Number(row.cost_nanousd),
          tokens,
        });
        metrics.events.inc({ outcome: 'counted' });
      }
      // an event from the future (clock skew within validation's limit) must not push the watermark ahead
      st.newestAt = Math.max(st.newestAt, Math.min(row.occurred_at, now));
      st.lastEventWall = now;
    }
    st.caughtUp = last !== undefined && Number(last) + 1 >= Number(batch.highWatermark);
    alerts.push(...closeMinutes(Date.now()));
    // alerts first, then the offsets: a crash in between repeats the batch, and its alerts keep their ids
    await deliver(alerts, beat);
    if (last !== undefined && !p.isStale()) {
      p.resolveOffset(last);
      await consumer?.commitOffsets([{ topic: o.topic, partition, offset: String(Number(last) + 1) }]);
    }
  }

  /** Reads budgets (I/O outside the queue), then applies them inside it. */
  async function reloadBudgets(): Promise<void> {
    const list = await loadBudgets(o.clickhouse);
    await serial(async () => {
      const fresh = ledger.setBudgets(list);
      if (fresh.length > 0 && partitions.size > 0) {
        // a new budget needs its spend so far: the partitions are warmed again on their next batch
        log.info({ budgets: fresh }, 'budgets changed: partitions are warmed again');
        budgetsChanged = true;
      }
      await Promise.resolve();
    });
  }

  function dropAll(): void {
    for (const partition of partitions.keys()) ledger.dropPartition(partition);
    partitions.clear();
    evaluatedMinute = Number.NaN;
  }

  return {
    metrics,
    ready: () => joined && clickhouseOk && fatal === undefined,
    healthy: () => fatal === undefined,
    async start() {
      ledger.setBudgets(await withRetry('loading budgets', () => loadBudgets(o.clickhouse)));
      producer = o.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
      await producer.connect();
      sink = createAlertSink({ producer, clickhouse: o.clickhouse, topic: o.alertsTopic, logger: o.logger });
      const c = o.kafka.consumer({
        groupId: o.groupId,
        sessionTimeout: o.sessionTimeoutMs ?? 30_000,
        maxWaitTimeInMs: 250,
      });
      consumer = c;
      c.on(c.events.GROUP_JOIN, () => {
        joined = true;
        void serial(async () => {
          dropAll();
          await Promise.resolve();
        });
      });
      c.on(c.events.CRASH, (e) => {
        joined = false;
        const err = e.payload.error;
        if (!e.payload.restart) {
          fatal = err;
          log.error({ err }, 'detector stopped');
          o.onFatal?.(err);
        }
      });
      await c.connect();
      await c.subscribe({ topic: o.topic, fromBeginning: true });
      await c.run({
        autoCommit: false,
        partitionsConsumedConcurrently: 1,
        eachBatchAutoResolve: false,
        eachBatch: (p) =>
          serial(async () => {
            if (fatal !== undefined) return;
            if (budgetsChanged) {
              budgetsChanged = false;
              dropAll();
            }
            try {
              await eachBatch(p);
            } catch (err) {
              if (isTokenledgerError(err) && !err.retriable) {
                fatal = err;
                log.error({ err }, 'detector stopped on an error retrying cannot fix');
                o.onFatal?.(err);
                void c.stop();
              }
              throw err;
            }
          }),
      });
      timers = [
        // the idle clock: a partition without events follows the wall clock, so a spike can end in silence
        setInterval(() => {
          if (ticking || stopping) return;
          ticking = true;
          void serial(() => deliver(closeMinutes(Date.now())))
            .catch((err: unknown) =>
              logLimited('idle', { err }, 'detector: closing idle minutes failed; retried'),
            )
            .finally(() => {
              ticking = false;
            });
        }, 1000),
        setInterval(() => {
          void reloadBudgets().catch((err: unknown) =>
            logLimited('budgets', { err }, 'detector: reloading budgets failed'),
          );
        }, o.budgetReloadMs ?? 30_000),
      ];
    },
    async stop() {
      stopping = true;
      for (const t of timers) clearInterval(t);
      timers = [];
      await consumer?.disconnect();
      await serial(() => Promise.resolve());
      await producer?.disconnect();
      joined = false;
    },
  };
}
