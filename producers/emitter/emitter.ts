/**
 * The client-side emitter: `record()` takes a usage event in a few microseconds and never waits for the network
 * nor throws into the caller's LLM code path; batches go to Kafka in the background (acks=all, idempotent
 * producer, compression, key team_id, several produce requests in flight).
 *
 * Delivery: an event is in memory (bounded), in flight, acknowledged by Kafka, or in the local spool. When a
 * send fails (Kafka unreachable), that batch and everything after it go to the spool, in order, and the emitter
 * retries Kafka every `retryIntervalMs` with a fresh producer; when Kafka answers, the spool is replayed in
 * order and direct sending resumes. A send whose outcome is unknown is spooled too, so a Kafka outage can cause
 * repeats of the same event_id (counted once by ingest), never a loss. Only a full spool drops events, by the
 * configured policy, counted and logged.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { CompressionTypes } from 'kafkajs';
import type { Message, Producer } from 'kafkajs';
import { createLogger, rateLimitedLog } from '../../lib/logger';
import type { Logger } from '../../lib/logger';
import { usageEventRegistry } from '../../schemas/usage-event/schema';
import type { UsageEvent, UsageEventInput } from '../../schemas/usage-event/types';
import { describeIssues, validateUsageEvent } from '../../schemas/usage-event/validate';
import { openSpool } from '../spool/spool';
import type { Spool, SpoolRecord } from '../spool/spool';
import { createMetrics } from './metrics';
import type { EmitterOptions, EventDefaults } from './options';
import { resolveOptions } from './options';
import type { DropReason, EmitterError, EmitterMetrics, UsageRecorder } from './types';
import { buildEvent } from './build';
import { EventQueue } from './queue';
import { cachedDefaultPartitioner } from './partitioner';

export interface Emitter extends UsageRecorder {
  /** Runs `fn` with identity defaults (team, user, ...) applied to every event recorded inside it, async included. */
  withContext<T>(context: EventDefaults, fn: () => T): T;
  /** Resolves when every event recorded so far is acknowledged by Kafka, or safely in the spool. */
  flush(): Promise<void>;
  /** Flushes, then stops; what cannot be sent within `timeoutMs` is spooled for the next start. */
  close(options?: { timeoutMs?: number }): Promise<void>;
  /** A snapshot of the counters. */
  metrics(): EmitterMetrics;
}

const LOG_EVERY_MS = 10_000;

/**
 * Broker answers that no replay can change: the batch itself is refused. Everything else — connection errors,
 * retries exhausted (kafkajs calls that "non-retriable" too), leadership changes, authorisation that an operator
 * can still fix — keeps the batch in the spool.
 */
const PERMANENT = new Set(['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE', 'INVALID_RECORD']);
export function isPermanentRejection(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; depth++) {
    const type = (e as { type?: unknown }).type;
    if (typeof type === 'string' && PERMANENT.has(type)) return true;
    e = e.cause;
  }
  return false;
}

export function createEmitter(options: EmitterOptions): Emitter {
  const o = resolveOptions(options);
  const log: Logger = (options.logger ?? createLogger({ level: 'warn' })).child({
    module: 'emitter',
    topic: o.topic,
  });
  const registry = usageEventRegistry();
  const type = registry.current.type;
  const context = new AsyncLocalStorage<EventDefaults>();

  const queue = new EventQueue();
  const inFlightBatches = new Set<readonly Message[]>();
  /** In-flight batches that close() already spooled or counted: their outcome must not be counted again. */
  const abandoned = new Set<readonly Message[]>();
  let spoolClosed = false;
  let inFlightEvents = 0;
  let degraded = false; // a send failed: new events go to the spool until Kafka answers again
  let closed = false;
  /** One linger timer for the emitter's life, re-armed with refresh(): no timer allocated per batch. */
  let lingerTimer: NodeJS.Timeout | undefined;
  let lingerArmed = false;
  let drainScheduled = false;
  let retryTimer: NodeJS.Timeout | undefined;
  let recovering = false;
  let producerFailed = false; // a send failed on the current producer: recovery starts a fresh one
  let producer: Producer | undefined;
  let connecting: Promise<Producer> | undefined;
  let waiters: (() => void)[] = [];

  const spool: Spool | undefined =
    o.spool === false
      ? undefined
      : openSpool({
          dir: o.spool.dir,
          maxBytes: o.spool.maxBytes,
          dropPolicy: o.spool.dropPolicy,
          fsync: o.spool.fsync,
          onDrop: (count, reason) => dropped(reason, count),
        });

  const metrics = createMetrics(options.metricsRegistry, () => ({
    queueDepth: queue.length,
    inFlight: inFlightEvents,
    spoolBytes: spool?.bytes() ?? 0,
  }));
  metrics.values.adoptedSpoolSegments = spool?.adoptedSegments ?? 0;

  // ---- reporting: counted always, logged at most once per reason every 10 s, onError always --------------
  const logLimited = rateLimitedLog(log, 'error', LOG_EVERY_MS);

  function report(error: EmitterError): void {
    try {
      options.onError?.(error);
    } catch {
      // a throwing onError must not reach the caller's code path either
    }
  }
  function dropped(reason: DropReason, count: number): void {
    metrics.drop(reason, count);
    const message = `${count} usage event(s) dropped: ${reason}`;
    logLimited(`dropped:${reason}`, { count }, 'usage events dropped');
    report({ kind: 'dropped', reason, count, message });
  }

  // ---- record ------------------------------------------------------------------------------------------
  function record(input: UsageEventInput): void {
    try {
      if (closed) {
        dropped('closed', 1);
        return;
      }
      const now = Date.now();
      const event = buildEvent(input, { defaults: o.defaults, scope: context.getStore(), sdk: o.sdk, now });
      const issues = validateUsageEvent(event, type, o.limits, now, input.event_id === undefined);
      if (issues.length > 0) {
        metrics.drop('invalid', 1);
        const message = `invalid usage event: ${describeIssues(issues)}`;
        logLimited(
          `invalid:${issues[0]?.reason ?? ''}`,
          { issues: issues.slice(0, 5) },
          'invalid usage event not sent',
        );
        report({ kind: 'invalid', issues, message, event: input });
        return;
      }
      metrics.count('recorded', 1);
      if (queue.length >= o.queueMaxEvents || queue.bytes >= o.queueMaxBytes) {
        if (spool === undefined) {
          dropped('queue_full', 1);
          return;
        }
        // Memory is full (Kafka slower than the callers): move the older half of the queue to the spool in one
        // write and replay it from there, keeping order, rather than grow. The cost is paid once per half queue.
        spill();
      }
      queue.push(event);
      schedule();
    } catch (err) {
      // A bug in metering must never break the caller's call; the event is counted as lost, never silently.
      metrics.drop('internal_error', 1);
      logLimited('internal', { err }, 'emitter failed to record an event');
    }
  }

  // ---- batching and sending ----------------------------------------------------------------------------
  function schedule(): void {
    if (queue.length >= o.batchMaxEvents || queue.bytes >= o.batchMaxBytes) {
      if (!drainScheduled) {
        drainScheduled = true;
        setImmediate(drain);
      }
    } else if (!lingerArmed && inFlightBatches.size === 0) {
      // (With a batch in flight no timer is needed: its completion drains the queue.)
      lingerArmed = true;
      if (lingerTimer === undefined) lingerTimer = setTimeout(onLinger, o.lingerMs);
      else lingerTimer.refresh();
    }
  }

  /** Encodes a batch; an event that will not encode is dropped (counted) without taking its batch with it. */
  function encodeAll(events: readonly UsageEvent[]): Message[] {
    try {
      const values = registry.encodeMany(events);
      return events.map((e, i) => ({ key: e.team_id, value: values[i] ?? Buffer.alloc(0) }));
    } catch {
      const out: Message[] = [];
      for (const e of events) {
        try {
          out.push({ key: e.team_id, value: registry.encode(e) });
        } catch (err) {
          dropped('encode_failed', 1);
          logLimited('encode_failed', { err }, 'a usage event could not be encoded');
        }
      }
      return out;
    }
  }

  /** Appends to the spool; every way it can fail is counted and reported, none is thrown. */
  function toSpool(messages: readonly Message[]): void {
    if (messages.length === 0) return;
    if (spool === undefined) {
      dropped('queue_full', messages.length);
      return;
    }
    const records: SpoolRecord[] = messages.map((m) => ({ key: String(m.key), value: m.value as Buffer }));
    try {
      if (spool.append(records)) metrics.count('spooled', records.length);
      else if (closed && spoolClosed) dropped('not_delivered', records.length);
      // (otherwise the spool was full: onDrop already counted and logged them)
    } catch (err) {
      dropped('spool_error', records.length);
      logLimited(
        'spool_error',
        { err, dir: o.spool === false ? null : o.spool.dir },
        'writing to the spool failed',
      );
    }
  }

  function takeBatch(): UsageEvent[] {
    return queue.take(o.batchMaxEvents, o.batchMaxBytes);
  }

  function onLinger(): void {
    lingerArmed = false;
    drain();
  }

  function drain(): void {
    drainScheduled = false;
    while (queue.length > 0) {
      if (degraded) {
        if (spool === undefined) break; // keep them in memory until Kafka answers
        toSpool(encodeAll(takeBatch()));
        continue;
      }
      if (inFlightBatches.size >= o.maxInFlight) break; // resumed when a request completes
      sendDirect(takeBatch());
    }
    settleWaiters();
  }

  function sendDirect(events: readonly UsageEvent[]): void {
    let messages: Message[];
    try {
      messages = encodeAll(events);
    } catch (err) {
      dropped('encode_failed', events.length);
      log.error({ err }, 'encoding a batch failed');
      return;
    }
    inFlightBatches.add(messages);
    inFlightEvents += messages.length;
    send(messages)
      .then(() => {
        if (!abandoned.has(messages)) metrics.count('sent', messages.length);
      })
      .catch((err: unknown) => {
        // close() already spooled this batch (or counted it lost): nothing more to do with it.
        if (abandoned.has(messages)) return;
        if (isPermanentRejection(err)) {
          // Kafka refused it for good (authorisation, a message too large, ...): replaying cannot help.
          metrics.count('sendErrors', 1);
          dropped('rejected', messages.length);
          logLimited('rejected', { err }, 'Kafka rejected a batch permanently');
          return;
        }
        // Unknown outcome: spool the batch (a repeat is harmless, a loss is not) and go degraded.
        metrics.count('sendErrors', 1);
        logLimited(
          'send_failed',
          { err, events: messages.length },
          'sending to Kafka failed; spooling until it is back',
        );
        report({
          kind: 'send_failed',
          count: messages.length,
          message: `sending ${messages.length} events failed`,
          cause: err,
        });
        producerFailed = true;
        degrade();
        if (spool === undefined) requeue(messages);
        else toSpool(messages);
      })
      .finally(() => {
        if (abandoned.delete(messages)) return;
        inFlightBatches.delete(messages);
        inFlightEvents -= messages.length;
        drain();
      });
  }

  function requeue(messages: readonly Message[]): void {
    const events = messages.map((m) => registry.decode(m.value as Buffer).value);
    const room = Math.max(0, o.queueMaxEvents - queue.length);
    if (room < events.length) dropped('queue_full', events.length - room);
    queue.unshift(events.slice(0, room));
  }

  async function connectedProducer(): Promise<Producer> {
    if (producer !== undefined) return producer;
    connecting ??= (async () => {
      const p = o.kafka.producer({
        idempotent: true,
        maxInFlightRequests: o.maxInFlight,
        // Bounded retries, so an outage is noticed in seconds and events move to the spool (a retried batch
        // that did arrive is a repeat of the same event_id, which ingest counts once).
        retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 2000 },
        allowAutoTopicCreation: false,
        createPartitioner: cachedDefaultPartitioner,
      });
      try {
        await p.connect();
      } catch (err) {
        await p.disconnect().catch(() => undefined);
        throw err;
      }
      producer = p;
      return p;
    })().finally(() => {
      connecting = undefined;
    });
    return connecting;
  }

  async function send(messages: Message[]): Promise<void> {
    const p = await connectedProducer();
    await p.send({
      topic: o.topic,
      acks: -1,
      compression: o.compression === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None,
      messages,
    });
  }

  // ---- degraded mode and recovery -------------------------------------------------------------------------
  /**
   * Memory is full (Kafka slower than the callers): move the older half of the queue to the spool in one write,
   * and let new events follow it there, so order is kept; the spool is replayed on the same, healthy producer.
   */
  function spill(): void {
    toSpool(encodeAll(queue.take(Math.ceil(queue.length / 2), Number.MAX_SAFE_INTEGER)));
    if (!degraded)
      log.warn(
        { queueDepth: queue.length },
        'queue full: Kafka slower than the callers, spilling to the spool',
      );
    degraded = true;
    if (retryTimer === undefined) scheduleRecovery(0);
  }

  function degrade(): void {
    if (!degraded)
      log.warn({ spool: o.spool === false ? null : o.spool.dir }, 'Kafka unreachable: spooling events');
    degraded = true;
    scheduleRecovery();
  }

  function scheduleRecovery(delay = o.retryIntervalMs): void {
    if (retryTimer !== undefined || closed) return;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      void recover();
    }, delay);
    retryTimer.unref();
  }

  /** Tries Kafka with a fresh producer; replays the spool in order; then sends directly again. */
  async function recover(): Promise<boolean> {
    if (recovering) return false;
    recovering = true;
    try {
      if (producerFailed) {
        // A fresh producer id: the old one's sequence numbers died with the outage.
        producerFailed = false;
        const old = producer;
        producer = undefined;
        if (old !== undefined) await old.disconnect().catch(() => undefined);
      }
      for (;;) {
        const batch = spool?.peek(o.batchMaxEvents);
        if (batch === undefined) break;
        await send(batch.records.map((r) => ({ key: r.key, value: r.value })));
        batch.commit();
        metrics.count('sent', batch.records.length);
        metrics.count('replayed', batch.records.length);
      }
      if (degraded) log.info({}, 'Kafka reachable again: spool replayed, sending directly');
      degraded = false;
      drain();
      return true;
    } catch (err) {
      logLimited('replay_failed', { err }, 'Kafka still unreachable; will retry');
      producerFailed = true;
      degraded = true;
      scheduleRecovery();
      return false;
    } finally {
      recovering = false;
      settleWaiters();
    }
  }

  // ---- flush / close / exit hooks ---------------------------------------------------------------------
  function idle(): boolean {
    return queue.length === 0 && inFlightBatches.size === 0 && !recovering;
  }
  function settleWaiters(): void {
    if (!idle()) return;
    const w = waiters;
    waiters = [];
    for (const resolve of w) resolve();
  }
  function flush(): Promise<void> {
    drain();
    if (idle()) return Promise.resolve();
    return new Promise((resolve) => waiters.push(resolve));
  }

  /**
   * Synchronously puts everything not yet acknowledged into the spool (repeats are possible, losses are not);
   * without a spool, counts it as not delivered. In-flight batches are abandoned: their late outcome is ignored.
   */
  function spoolEverythingNow(): void {
    const rest = queue.takeAll();
    if (spool === undefined) {
      const lost = rest.length + inFlightEvents;
      if (lost > 0) dropped('not_delivered', lost);
    } else {
      toSpool(encodeAll(rest));
      for (const batch of inFlightBatches) toSpool(batch);
    }
    for (const batch of inFlightBatches) abandoned.add(batch);
    inFlightBatches.clear();
    inFlightEvents = 0;
  }

  const onExit = (): void => spoolEverythingNow();
  const onBeforeExit = (): void => {
    if (!idle() && !closed) void flush();
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    void close({ timeoutMs: 5000 }).finally(() => {
      process.kill(process.pid, signal);
    });
  };
  if (o.exitHooks) {
    process.on('exit', onExit);
    process.on('beforeExit', onBeforeExit);
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  }

  async function close(opts: { timeoutMs?: number } = {}): Promise<void> {
    if (closed) return;
    const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
    closed = true;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>(
      (resolve) => (timer = setTimeout(() => resolve('timeout'), Math.max(0, deadline - Date.now()))),
    );
    try {
      let outcome = await Promise.race([flush().then(() => 'done' as const), timedOut]);
      if (
        outcome === 'done' &&
        degraded &&
        spool !== undefined &&
        !spool.isEmpty() &&
        Date.now() < deadline
      ) {
        // One last try to deliver what the spool holds, within the time left.
        outcome = await Promise.race([recover().then(() => 'done' as const), timedOut]);
      }
      spoolEverythingNow();
    } finally {
      clearTimeout(timer);
      if (retryTimer !== undefined) clearTimeout(retryTimer);
      if (lingerTimer !== undefined) clearTimeout(lingerTimer);
      if (o.exitHooks) {
        process.off('exit', onExit);
        process.off('beforeExit', onBeforeExit);
        process.off('SIGTERM', onSignal);
        process.off('SIGINT', onSignal);
      }
      // A producer still connecting (a recovery under way) is disconnected too, so nothing runs after close.
      const pending = connecting;
      await producer?.disconnect().catch(() => undefined);
      await pending?.then((p) => p.disconnect()).catch(() => undefined);
      spoolClosed = true;
      spool?.close();
    }
  }

  // Segments left by an earlier process: deliver them first.
  if (spool !== undefined && !spool.isEmpty()) {
    degraded = true;
    log.info(
      { bytes: spool.bytes(), segments: spool.adoptedSegments },
      'replaying events spooled by an earlier process',
    );
    scheduleRecovery(0);
  }

  return {
    record,
    withContext: (ctx, fn) =>
      context.run({ ...context.getStore(), ...ctx, tags: { ...context.getStore()?.tags, ...ctx.tags } }, fn),
    flush,
    close,
    metrics: () => ({
      ...metrics.values,
      dropped: { ...metrics.values.dropped },
      queueDepth: queue.length,
      inFlight: inFlightEvents,
      spoolBytes: spool?.bytes() ?? 0,
    }),
  };
}
