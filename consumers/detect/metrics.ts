/** Detector metrics (prom-client): events by outcome, late events, alerts by kind and severity, watermark. */
import { Counter, Gauge, Registry } from 'prom-client';

export interface DetectMetrics {
  readonly registry: Registry;
  readonly events: Counter<'outcome'>;
  readonly alerts: Counter<'kind' | 'severity'>;
  readonly watermarkLag: Gauge;
  readonly scopes: Gauge;
  /** Totals by outcome and alerts by kind, for tests and the CLI's progress line. */
  snapshot(): Promise<Record<string, number>>;
}

export function createDetectMetrics(registry: Registry = new Registry()): DetectMetrics {
  const events = new Counter({
    name: 'tokenledger_detect_events_total',
    help: 'Usage events by outcome: counted, late (after their minute closed: budgets only), duplicate, refused (invalid; ingest dead-letters them), skipped_in_clickhouse_state',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const alerts = new Counter({
    name: 'tokenledger_detect_alerts_total',
    help: 'Alerts published, by kind and severity',
    labelNames: ['kind', 'severity'],
    registers: [registry],
  });
  const watermarkLag = new Gauge({
    name: 'tokenledger_detect_watermark_lag_seconds',
    help: 'Wall clock minus the event-time watermark (minutes close when the watermark passes them)',
    registers: [registry],
  });
  const scopes = new Gauge({
    name: 'tokenledger_detect_scopes',
    help: 'Scopes (team, team+model) with a baseline in memory',
    registers: [registry],
  });
  return {
    registry,
    events,
    alerts,
    watermarkLag,
    scopes,
    async snapshot() {
      const out: Record<string, number> = {};
      for (const v of (await events.get()).values) out[String(v.labels.outcome)] = v.value;
      for (const v of (await alerts.get()).values) {
        const key = `alert_${String(v.labels.kind)}`;
        out[key] = (out[key] ?? 0) + v.value;
      }
      return out;
    },
  };
}
