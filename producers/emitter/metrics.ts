/** Emitter metrics: a plain object always, and prom-client metrics when a registry is given. */
import { Counter, Gauge } from 'prom-client';
import type { Registry } from 'prom-client';
import type { DropReason, EmitterMetrics } from './types';
import { DROP_REASONS } from './types';

export type CountedField = 'recorded' | 'sent' | 'spooled' | 'replayed' | 'sendErrors';

export interface MetricsSink {
  readonly values: EmitterMetrics;
  count(field: CountedField, n: number): void;
  drop(reason: DropReason, n: number): void;
}

export function createMetrics(
  registry: Registry | undefined,
  gauges: () => Pick<EmitterMetrics, 'queueDepth' | 'inFlight' | 'spoolBytes'>,
): MetricsSink {
  const values: EmitterMetrics = {
    recorded: 0,
    sent: 0,
    spooled: 0,
    replayed: 0,
    dropped: Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>,
    queueDepth: 0,
    inFlight: 0,
    spoolBytes: 0,
    sendErrors: 0,
    adoptedSpoolSegments: 0,
  };
  let events: Counter<'outcome'> | undefined;
  let dropped: Counter<'reason'> | undefined;
  let sendErrors: Counter | undefined;
  if (registry !== undefined) {
    events = new Counter({
      name: 'tokenledger_emitter_events_total',
      help: 'Usage events by outcome: recorded, sent (acknowledged by Kafka), spooled, replayed (sent from the spool)',
      labelNames: ['outcome'],
      registers: [registry],
    });
    dropped = new Counter({
      name: 'tokenledger_emitter_dropped_events_total',
      help: 'Usage events dropped, by reason',
      labelNames: ['reason'],
      registers: [registry],
    });
    sendErrors = new Counter({
      name: 'tokenledger_emitter_send_errors_total',
      help: 'Failed produce requests',
      registers: [registry],
    });
    const gauge = (name: string, help: string, pick: (m: ReturnType<typeof gauges>) => number): void => {
      new Gauge({
        name,
        help,
        registers: [registry],
        collect() {
          this.set(pick(gauges()));
        },
      });
    };
    gauge('tokenledger_emitter_queue_depth', 'Usage events waiting in memory', (m) => m.queueDepth);
    gauge(
      'tokenledger_emitter_in_flight_events',
      'Usage events in produce requests awaiting acknowledgement',
      (m) => m.inFlight,
    );
    gauge('tokenledger_emitter_spool_bytes', 'Undelivered bytes in the local spool', (m) => m.spoolBytes);
  }
  return {
    values,
    count(field, n) {
      values[field] += n;
      if (field === 'sendErrors') sendErrors?.inc(n);
      else events?.inc({ outcome: field }, n);
    },
    drop(reason, n) {
      values.dropped[reason] += n;
      dropped?.inc({ reason }, n);
    },
  };
}
