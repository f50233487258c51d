/** Emitter options: what a platform team sets once when it wires the emitter into every LLM call. */
import os from 'node:os';
import path from 'node:path';
import type { Kafka } from 'kafkajs';
import type { Registry } from 'prom-client';
import type { Logger } from '../../lib/logger';
import { TokenledgerError } from '../../lib/errors';
import type { ValidationLimits } from '../../schemas/usage-event/validate';
import { DEFAULT_LIMITS } from '../../schemas/usage-event/validate';
import type { DropPolicy } from '../spool/spool';
import type { EmitterError } from './types';

/** Identity fields filled into every event unless the event or the current context sets them. */
export interface EventDefaults {
  readonly org_id?: string;
  readonly team_id?: string;
  readonly user_id?: string;
  readonly project_id?: string;
  readonly application?: string;
  readonly environment?: string;
  readonly tags?: Readonly<Record<string, string>>;
}

export interface EmitterOptions {
  /** A kafkajs client (e.g. from lib/kafka `createKafka`); the emitter creates its own producer on it. */
  readonly kafka: Kafka;
  /** Topic the events go to. */
  readonly topic?: string;
  readonly defaults?: EventDefaults;
  readonly logger?: Logger;
  /**
   * A batch is sent when it has this many events, this many bytes, or its first event is this old (lingerMs, default
   * 10) — or, while a batch is in flight, as soon as that batch is acknowledged: no linger timer runs then.
   */
  readonly batch?: { readonly maxEvents?: number; readonly maxBytes?: number; readonly lingerMs?: number };
  /** Produce requests awaiting acknowledgement at once (Kafka keeps order for up to 5 with idempotence). */
  readonly maxInFlight?: number;
  readonly compression?: 'gzip' | 'none';
  /** Memory bound for events not yet sent; beyond it events go to the spool (or are dropped without one). */
  readonly queue?: { readonly maxEvents?: number; readonly maxBytes?: number };
  /** Local spool for when Kafka is unreachable; `false` disables it (events beyond the queue are then dropped). */
  readonly spool?:
    | false
    | {
        readonly dir?: string;
        readonly maxBytes?: number;
        readonly dropPolicy?: DropPolicy;
        readonly fsync?: boolean;
      };
  /** How often to try Kafka again while spooling. */
  readonly retryIntervalMs?: number;
  readonly validation?: Partial<ValidationLimits>;
  /** Called for every event that is invalid or dropped, and for send errors. Never throws into record(). */
  readonly onError?: (error: EmitterError) => void;
  /** Flush on process exit: SIGTERM/SIGINT/beforeExit flush and close; on 'exit' the queue is spooled synchronously. */
  readonly exitHooks?: boolean;
  /** Also expose the metrics as prom-client metrics in this registry. */
  readonly metricsRegistry?: Registry;
  /** `sdk` field of every event. */
  readonly sdk?: string;
}

export interface ResolvedOptions {
  readonly kafka: Kafka;
  readonly topic: string;
  readonly defaults: EventDefaults;
  readonly batchMaxEvents: number;
  readonly batchMaxBytes: number;
  readonly lingerMs: number;
  readonly maxInFlight: number;
  readonly compression: 'gzip' | 'none';
  readonly queueMaxEvents: number;
  readonly queueMaxBytes: number;
  readonly spool:
    | false
    | {
        readonly dir: string;
        readonly maxBytes: number;
        readonly dropPolicy: DropPolicy;
        readonly fsync: boolean;
      };
  readonly retryIntervalMs: number;
  readonly limits: ValidationLimits;
  readonly exitHooks: boolean;
  readonly sdk: string;
}

export const USAGE_TOPIC = 'tokenledger.usage.v1';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const VERSION = (require('../../package.json') as { version: string }).version;

function positiveInt(name: string, value: number | undefined, fallback: number, problems: string[]): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v <= 0)
    problems.push(`${name} must be a positive integer, got ${String(value)}`);
  return v;
}

/** Fills defaults and checks every option, reporting all problems in one error. */
export function resolveOptions(o: EmitterOptions): ResolvedOptions {
  const problems: string[] = [];
  const topic = o.topic ?? USAGE_TOPIC;
  const batchMaxEvents = positiveInt('batch.maxEvents', o.batch?.maxEvents, 5000, problems);
  const batchMaxBytes = positiveInt('batch.maxBytes', o.batch?.maxBytes, 1024 * 1024, problems);
  const lingerMs = o.batch?.lingerMs ?? 10;
  if (!Number.isFinite(lingerMs) || lingerMs < 0)
    problems.push(`batch.lingerMs must be ≥ 0, got ${String(o.batch?.lingerMs)}`);
  const maxInFlight = positiveInt('maxInFlight', o.maxInFlight, 3, problems);
  if (maxInFlight > 5)
    problems.push(
      `maxInFlight must be at most 5 (Kafka keeps order with idempotence up to 5), got ${maxInFlight}`,
    );
  const queueMaxEvents = positiveInt('queue.maxEvents', o.queue?.maxEvents, 200_000, problems);
  const queueMaxBytes = positiveInt('queue.maxBytes', o.queue?.maxBytes, 128 * 1024 * 1024, problems);
  const retryIntervalMs = positiveInt('retryIntervalMs', o.retryIntervalMs, 1000, problems);
  // Options come from JavaScript callers too: check values the types already rule out.
  const compression: string | undefined = o.compression;
  if (compression !== undefined && compression !== 'gzip' && compression !== 'none') {
    problems.push(`compression must be "gzip" or "none", got ${JSON.stringify(o.compression)}`);
  }
  let spool: ResolvedOptions['spool'] = false;
  if (o.spool !== false) {
    const s = o.spool ?? {};
    const dropPolicy = s.dropPolicy ?? 'drop-newest';
    const policy: string = dropPolicy;
    if (policy !== 'drop-newest' && policy !== 'drop-oldest') {
      problems.push(
        `spool.dropPolicy must be "drop-newest" or "drop-oldest", got ${JSON.stringify(dropPolicy)}`,
      );
    }
    spool = {
      dir: s.dir ?? path.join(os.tmpdir(), 'tokenledger-spool', topic.replace(/[^A-Za-z0-9._-]/g, '_')),
      maxBytes: positiveInt('spool.maxBytes', s.maxBytes, 1024 * 1024 * 1024, problems),
      dropPolicy,
      fsync: s.fsync ?? false,
    };
  }
  if (problems.length > 0) {
    throw new TokenledgerError('CONFIG_INVALID', `invalid emitter options:\n  - ${problems.join('\n  - ')}`);
  }
  return {
    kafka: o.kafka,
    topic,
    defaults: o.defaults ?? {},
    batchMaxEvents,
    batchMaxBytes,
    lingerMs,
    maxInFlight,
    compression: o.compression ?? 'gzip',
    queueMaxEvents,
    queueMaxBytes,
    spool,
    retryIntervalMs,
    limits: { ...DEFAULT_LIMITS, ...o.validation },
    exitHooks: o.exitHooks ?? false,
    sdk: o.sdk ?? `tokenledger-node/${VERSION}`,
  };
}
