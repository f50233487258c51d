/**
 * The webhook relay: a consumer group on the alerts topic that posts each alert to a Slack-compatible incoming
 * webhook (slack.ts builds the body). At least once, deduplicated by alert_id:
 *
 *  - one message at a time per partition, in offset order; the offset is committed only after the POST was
 *    answered 2xx, or the alert was given up as permanently refused (a 4xx other than 408/429), skipped as a
 *    repeat, filtered out by team, or found undecodable. A crash before the commit: the alert is read and
 *    posted again by the next relay of the group (the one duplicate at-least-once allows).
 *  - 5xx, 408, 429, timeouts and network errors are retried without limit while the relay runs, with
 *    exponential backoff and jitter (0.5 s doubling to 30 s by default), at least as long as `Retry-After` asks
 *    (capped at 15 min). The group heartbeat is kept during the waits; a rebalance or a stop abandons the alert
 *    uncommitted (whoever owns the partition next posts it).
 *  - a bounded LRU of the alert_ids delivered (default 100,000) drops a re-emitted alert (the detector
 *    publishes an alert again with the same alert_id after a crash between publishing and recording it). On
 *    start it is warmed with the alert_ids of the messages the group already passed, so a restart of the relay
 *    does not forget them.
 *  - an undecodable message is logged (rate-limited) and counted, then skipped: it never stops the relay.
 *
 * The webhook URL is a secret (Slack's carries the token in its path): only its origin is ever logged.
 */
import type { Consumer, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import { rateLimitedLog } from '../../lib/logger';
import type { Logger } from '../../lib/logger';
import { TOPICS } from '../../lib/topics';
import { decodeAlert } from '../../schemas/alert/schema';
import type { Alert } from '../../schemas/alert/types';
import { ALERT_ID_HEADER } from './sink';
import { slackMessage } from './slack';

export const DEFAULT_RELAY_GROUP = 'tokenledger-alerts-relay';

export interface AlertRelayOptions {
  readonly kafka: Kafka;
  readonly logger: Logger;
  /** http(s) URL of the incoming webhook. */
  readonly webhookUrl: string;
  /** Default TOPICS.alerts.name. */
  readonly topic?: string;
  /** Default DEFAULT_RELAY_GROUP. Relays with the same group share the partitions; another group gets every alert. */
  readonly groupId?: string;
  /** Only alerts of these teams are posted (others are skipped and committed). Default: all teams. */
  readonly teams?: readonly string[];
  /** Timeout of one POST (default 10 s). */
  readonly timeoutMs?: number;
  /** Backoff between attempts: initialMs doubling to maxMs, with jitter (default 500 ms to 30 s). */
  readonly retry?: { readonly initialMs?: number; readonly maxMs?: number };
  /** How many delivered alert_ids are remembered (default 100,000). */
  readonly dedupeCapacity?: number;
  /** Consumer-group session timeout (default 30 s). */
  readonly sessionTimeoutMs?: number;
  /** Called once when the consumer stops for good (kafkajs gave up restarting it). */
  readonly onFatal?: (err: Error) => void;
}

export interface RelayCounts {
  /** alerts posted and answered 2xx */
  delivered: number;
  /** alerts skipped because their alert_id was delivered already */
  deduplicated: number;
  /** attempts that failed in a retriable way and were tried again */
  retries: number;
  /** alerts the webhook refused with a permanent status (skipped) */
  permanentFailures: number;
  /** messages that are not an alert (skipped) */
  undecodable: number;
  /** alerts of other teams (skipped) */
  filtered: number;
}

export interface AlertRelay {
  start(): Promise<void>;
  /** Stops taking new alerts, lets a POST in flight finish (its alert committed if it succeeded), leaves the group. */
  stop(): Promise<void>;
  counts(): Readonly<RelayCounts>;
}

// ---------------------------------------------------------------------------------------------------------------
// Pure delivery policy (unit-tested in tests/unit/alert-slack.test.ts).

export type PostVerdict = 'delivered' | 'retry' | 'permanent';

/** 2xx delivered; 408, 429 and 5xx worth another try; anything else (400, 403, 404, 410, ...) permanent. */
export function verdictOf(status: number): PostVerdict {
  if (status >= 200 && status < 300) return 'delivered';
  if (status === 408 || status === 429 || status >= 500) return 'retry';
  return 'permanent';
}

export const MAX_RETRY_AFTER_MS = 15 * 60_000;

/** `Retry-After` (delta-seconds or an HTTP-date) in ms from `now`, capped at 15 min; undefined when absent or bad. */
export function retryAfterMs(header: string | null | undefined, now: number): number | undefined {
  if (header === null || header === undefined || header.trim() === '') return undefined;
  const text = header.trim();
  let ms: number;
  if (/^\d+$/.test(text)) ms = Number(text) * 1000;
  else {
    const at = Date.parse(text);
    if (Number.isNaN(at)) return undefined;
    ms = at - now;
  }
  return Math.min(MAX_RETRY_AFTER_MS, Math.max(0, ms));
}

/**
 * The wait before attempt `attempt + 1` (attempt ≥ 1): initial·2^(attempt-1) capped at max, the upper half
 * jittered ("equal jitter": never less than half the step, so relays do not retry in lockstep).
 */
export function backoffMs(attempt: number, initialMs: number, maxMs: number, random: () => number): number {
  const step = Math.min(maxMs, initialMs * 2 ** Math.min(30, Math.max(0, attempt - 1)));
  return Math.round(step / 2 + random() * (step / 2));
}

/** A set of strings that forgets the least recently used one beyond `capacity`. */
export class LruSet {
  private readonly items = new Map<string, true>();
  constructor(readonly capacity: number) {}

  get size(): number {
    return this.items.size;
  }

  /** True when present (and marks it as recently used). */
  has(id: string): boolean {
    if (!this.items.has(id)) return false;
    this.items.delete(id);
    this.items.set(id, true);
    return true;
  }

  add(id: string): void {
    this.items.delete(id);
    this.items.set(id, true);
    while (this.items.size > this.capacity) {
      const oldest = this.items.keys().next();
      if (oldest.done === true) break;
      this.items.delete(oldest.value);
    }
  }
}

/** The origin of a URL, for logs: the path and query of a webhook URL are its secret. */
export function webhookOrigin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '<invalid url>';
  }
}

// ---------------------------------------------------------------------------------------------------------------

/** What became of one message: committed after it, or abandoned (not committed, read again). */
type Handled = 'done' | 'abandoned';

export function createAlertRelay(o: AlertRelayOptions): AlertRelay {
  const topic = o.topic ?? TOPICS.alerts.name;
  const groupId = o.groupId ?? DEFAULT_RELAY_GROUP;
  const origin = webhookOrigin(o.webhookUrl);
  const log = o.logger.child({ module: 'alert-relay', topic, groupId, webhook: origin });
  const logLimited = rateLimitedLog(log, 'warn');
  const timeoutMs = o.timeoutMs ?? 10_000;
  const initialMs = o.retry?.initialMs ?? 500;
  const maxMs = o.retry?.maxMs ?? 30_000;
  const sessionTimeoutMs = o.sessionTimeoutMs ?? 30_000;
  const heartbeatMs = Math.max(500, Math.floor(sessionTimeoutMs / 10));
  const delivered = new LruSet(o.dedupeCapacity ?? 100_000);
  const teams = o.teams === undefined || o.teams.length === 0 ? undefined : new Set(o.teams);
  const counts: RelayCounts = {
    delivered: 0,
    deduplicated: 0,
    retries: 0,
    permanentFailures: 0,
    undecodable: 0,
    filtered: 0,
  };
  let consumer: Consumer | undefined;
  let stopping = false;
  /** Wakes the waits between attempts when the relay stops. */
  const stopWaits = new AbortController();

  /** Waits `ms` in slices, heartbeating; false when the relay stops, the batch went stale or the group rebalances. */
  async function pause(ms: number, p: EachBatchPayload): Promise<boolean> {
    const until = Date.now() + ms;
    for (;;) {
      const left = until - Date.now();
      if (left <= 0) return true;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.min(left, heartbeatMs));
        function done(): void {
          clearTimeout(timer);
          stopWaits.signal.removeEventListener('abort', done);
          resolve();
        }
        stopWaits.signal.addEventListener('abort', done);
      });
      if (stopping || !p.isRunning() || p.isStale()) return false;
      try {
        await p.heartbeat();
      } catch (err) {
        log.warn(
          { err },
          'group rebalancing while waiting to retry: alert left uncommitted for the next owner',
        );
        return false;
      }
    }
  }

  /** Posts until 2xx or a permanent refusal; 'abandoned' when stopping or losing the partition meanwhile. */
  async function post(alert: Alert, p: EachBatchPayload): Promise<Handled> {
    const body = JSON.stringify(slackMessage(alert));
    for (let attempt = 1; ; attempt++) {
      let verdict: PostVerdict;
      let status: number | undefined;
      let wait: number | undefined;
      let err: unknown;
      try {
        const res = await fetch(o.webhookUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json; charset=utf-8' },
          body,
          signal: AbortSignal.timeout(timeoutMs),
        });
        status = res.status;
        const text = await res.text().catch(() => '');
        verdict = verdictOf(res.status);
        wait = retryAfterMs(res.headers.get('retry-after'), Date.now());
        if (verdict === 'permanent') {
          counts.permanentFailures++;
          log.error(
            { alert_id: alert.alert_id, status, response: text.slice(0, 200), attempt },
            'webhook refused the alert permanently: skipped',
          );
          return 'done';
        }
      } catch (e) {
        verdict = 'retry';
        err = e;
      }
      if (verdict === 'delivered') {
        delivered.add(alert.alert_id);
        counts.delivered++;
        log.info(
          { alert_id: alert.alert_id, kind: alert.kind, team_id: alert.team_id, status, attempts: attempt },
          'alert posted',
        );
        return 'done';
      }
      counts.retries++;
      const delay = Math.max(backoffMs(attempt, initialMs, maxMs, Math.random), wait ?? 0);
      logLimited(
        'webhook_retry',
        { alert_id: alert.alert_id, attempt, status, err, retryInMs: delay },
        'webhook unavailable; retrying',
      );
      if (stopping || !(await pause(delay, p))) return 'abandoned';
    }
  }

  function idOf(m: KafkaMessage): string | undefined {
    const h = m.headers?.[ALERT_ID_HEADER];
    const v = Array.isArray(h) ? h[0] : h;
    return v === undefined ? undefined : v.toString();
  }

  async function handle(m: KafkaMessage, partition: number, p: EachBatchPayload): Promise<Handled> {
    let alert: Alert;
    try {
      if (m.value === null) throw new Error('empty message (no value)');
      alert = decodeAlert(m.value).value;
    } catch (err) {
      counts.undecodable++;
      const reason = typeof err === 'object' && err !== null && 'code' in err ? err.code : undefined;
      logLimited(
        `undecodable:${typeof reason === 'string' ? reason : 'other'}`,
        { err, partition, offset: m.offset },
        'message is not an alert: skipped',
      );
      return 'done';
    }
    if (teams !== undefined && !teams.has(alert.team_id)) {
      counts.filtered++;
      return 'done';
    }
    if (delivered.has(alert.alert_id)) {
      counts.deduplicated++;
      log.info({ alert_id: alert.alert_id, partition, offset: m.offset }, 'alert delivered already: skipped');
      return 'done';
    }
    return post(alert, p);
  }

  async function commit(partition: number, offset: string): Promise<void> {
    try {
      await consumer?.commitOffsets([{ topic, partition, offset: String(Number(offset) + 1) }]);
    } catch (err) {
      // The alert was handled; a lost commit only means reading it again (and dropping it as delivered).
      logLimited('commit', { err, partition }, 'committing the offset failed');
    }
  }

  async function eachBatch(p: EachBatchPayload): Promise<void> {
    const { partition } = p.batch;
    for (const m of p.batch.messages) {
      if (stopping || !p.isRunning() || p.isStale()) return;
      // Not resolved when abandoned: kafkajs fetches the partition again from this message.
      if ((await handle(m, partition, p)) === 'abandoned') return;
      p.resolveOffset(m.offset);
      await commit(partition, m.offset);
      await p.heartbeat().catch(() => undefined);
    }
  }

  /**
   * Remembers the alert_ids of the messages the group has passed (those before its committed offsets, at most
   * the LRU's capacity spread over the partitions), read with a throwaway group that commits nothing.
   */
  async function warmUp(): Promise<number> {
    const admin = o.kafka.admin();
    await admin.connect();
    const ranges = new Map<number, { from: number; to: number }>();
    try {
      const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
      const ends = await admin.fetchTopicOffsets(topic);
      const perPartition = Math.ceil(delivered.capacity / Math.max(1, ends.length));
      for (const e of ends) {
        const c = Number(committed?.partitions.find((x) => x.partition === e.partition)?.offset ?? -1);
        const from = Math.max(Number(e.low), c - perPartition);
        if (c > from) ranges.set(e.partition, { from, to: c - 1 });
      }
    } finally {
      await admin.disconnect();
    }
    if (ranges.size === 0) return 0;
    const reader = o.kafka.consumer({ groupId: `${groupId}-warmup-${process.pid}-${Date.now()}` });
    let remembered = 0;
    try {
      await reader.connect();
      await reader.subscribe({ topic, fromBeginning: true });
      const pending = new Set(ranges.keys());
      let finished: () => void = () => undefined;
      const done = new Promise<void>((resolve) => (finished = resolve));
      await reader.run({
        autoCommit: false,
        eachMessage: ({ partition, message }) => {
          const r = ranges.get(partition);
          const offset = Number(message.offset);
          if (r !== undefined && offset >= r.from && offset <= r.to) {
            let id = idOf(message);
            if (id === undefined && message.value !== null) {
              try {
                id = decodeAlert(message.value).value.alert_id;
              } catch {
                id = undefined;
              }
            }
            if (id !== undefined) {
              delivered.add(id);
              remembered++;
            }
          }
          if (r === undefined || offset >= r.to) pending.delete(partition);
          if (pending.size === 0) finished();
          return Promise.resolve();
        },
      });
      for (const [partition, r] of ranges) reader.seek({ topic, partition, offset: String(r.from) });
      const bound = setTimeout(finished, 60_000);
      await done;
      clearTimeout(bound);
      if (pending.size > 0)
        log.warn({ partitions: [...pending] }, 'warm-up incomplete after 60 s: continuing');
    } finally {
      await reader.disconnect().catch(() => undefined);
    }
    return remembered;
  }

  return {
    counts: () => ({ ...counts }),
    async start() {
      const remembered = await warmUp();
      log.info({ remembered }, 'alert_ids of already-passed alerts remembered');
      const c = o.kafka.consumer({
        groupId,
        sessionTimeout: sessionTimeoutMs,
        heartbeatInterval: heartbeatMs,
        maxWaitTimeInMs: 1000,
        retry: { retries: 10 },
      });
      consumer = c;
      c.on(c.events.CRASH, (e) => {
        log.error({ err: e.payload.error, restart: e.payload.restart }, 'relay consumer crashed');
        if (!e.payload.restart && !stopping) o.onFatal?.(e.payload.error);
      });
      await c.connect();
      await c.subscribe({ topic, fromBeginning: true });
      await c.run({ autoCommit: false, eachBatchAutoResolve: false, eachBatch });
      log.info({ teams: teams === undefined ? 'all' : [...teams], timeoutMs }, 'alert relay started');
    },
    async stop() {
      stopping = true;
      stopWaits.abort();
      await consumer?.disconnect().catch((err: unknown) => log.warn({ err }, 'consumer disconnect failed'));
      log.info({ ...counts }, 'alert relay stopped');
    },
  };
}
