/** Types shared by the emitter and whatever feeds it (provider wrappers, the `emit` command). */
import type { UsageEventInput } from '../../schemas/usage-event/types';
import type { ValidationIssue } from '../../schemas/usage-event/validate';

export type { UsageEventInput };

/**
 * Anything that accepts usage events. `record()` is synchronous, cheap, and never throws into the caller: an
 * event it cannot take is reported (log, counter, `onError`) and dropped.
 */
export interface UsageRecorder {
  record(event: UsageEventInput): void;
}

/**
 * Why events were lost, each counted: invalid; queue_full (memory bound, no spool); spool_full (the drop policy);
 * spool_corrupt (a torn tail, estimated); spool_error (the spool could not be written: disk full, permissions);
 * closed (recorded after close); not_delivered (left when close() ran out of time without a spool); encode_failed;
 * rejected (Kafka refused a batch for good); internal_error (a bug in the emitter caught in record()).
 */
export const DROP_REASONS = [
  'invalid',
  'queue_full',
  'spool_full',
  'spool_corrupt',
  'spool_error',
  'closed',
  'not_delivered',
  'encode_failed',
  'rejected',
  'internal_error',
] as const;
export type DropReason = (typeof DROP_REASONS)[number];

/** What `onError` receives. */
export type EmitterError =
  | {
      readonly kind: 'invalid';
      readonly issues: readonly ValidationIssue[];
      readonly message: string;
      readonly event: unknown;
    }
  | {
      readonly kind: 'dropped';
      readonly reason: DropReason;
      readonly count: number;
      readonly message: string;
    }
  | {
      readonly kind: 'send_failed';
      readonly count: number;
      readonly message: string;
      readonly cause: unknown;
    };

export interface EmitterMetrics {
  /** record() calls that produced a valid event. */
  recorded: number;
  /** Events acknowledged by Kafka (acks=all), directly or from the spool. */
  sent: number;
  /** Events written to the spool. */
  spooled: number;
  /** Spooled events later acknowledged by Kafka (also counted in `sent`). */
  replayed: number;
  dropped: Record<DropReason, number>;
  /** Events waiting in memory. */
  queueDepth: number;
  /** Events in produce requests awaiting acknowledgement. */
  inFlight: number;
  /** Undelivered bytes in the spool. */
  spoolBytes: number;
  sendErrors: number;
  /** Spool segments of earlier (dead) processes adopted at start. */
  adoptedSpoolSegments: number;
}
