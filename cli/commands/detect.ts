/**
 * `tokenledger detect`: the long-running spike and budget detector (consumers/detect), with /metrics,
 * /healthz and /readyz, a progress line every 10 s, and a graceful stop on SIGTERM/SIGINT.
 */
import type { Command } from 'commander';
import { Registry } from 'prom-client';
import { loadConfig } from '../../lib/config';
import { createLogger } from '../../lib/logger';
import { TOPICS } from '../../lib/topics';
import { createDetect } from '../../consumers/detect';
import type { Detect } from '../../consumers/detect';
import { prepareConsumer, serveConsumer } from '../consumer-startup';
import { parsePortFlag } from '../output';

export function registerDetect(program: Command): void {
  program
    .command('detect')
    .description('watch usage events for cost spikes and budget thresholds; publish alerts, until stopped')
    .option('--http-port <port>', 'port of /metrics, /healthz, /readyz (default DETECT_HTTP_PORT or 9465)')
    .addHelpText(
      'after',
      `
What it does: event-time 1-minute buckets per team and team+model, a seasonal baseline per scope (warmed from
ClickHouse on start, so a restart neither goes blind nor fires again), cost_spike / spike_resolved alerts, and
budget_threshold / budget_burn_rate / budget_forecast alerts for the budgets set with \`tokenledger budgets\`.
Alerts go to DETECT_ALERTS_TOPIC (key team_id) and the ClickHouse table alerts; read them with
\`tokenledger alerts tail\`. Design and defaults: docs/decisions/0012-detector.md, docs/budgets.md.

Settings (environment): DETECT_TOPIC, DETECT_GROUP_ID, DETECT_ALERTS_TOPIC, DETECT_ALLOWED_LATENESS_MS,
DETECT_IDLE_ADVANCE_MS, DETECT_BUDGET_RELOAD_MS, DETECT_HTTP_PORT, PRICES_OVERRIDES_FILE, plus the Kafka and
ClickHouse ones (tokenledger config check --list). Run it next to \`tokenledger ingest\`: it starts from the
offsets ingest has written to ClickHouse.`,
    )
    .action(async (opts: { httpPort?: string }) => {
      process.exitCode = await runDetect(opts);
    });
}

async function runDetect(opts: { httpPort?: string }): Promise<number> {
  const config = loadConfig(process.env, ['kafka', 'clickhouse', 'local', 'ingest', 'detect', 'log']);
  const httpPort = parsePortFlag('--http-port', opts.httpPort, config.detect.httpPort);
  const logger = createLogger({ level: config.logLevel });
  const { catalog, clickhouse, kafka } = await prepareConsumer({
    config,
    logger,
    application: 'tokenledger-detect',
    topics: [
      { ...TOPICS.usage, name: config.detect.topic },
      { ...TOPICS.alerts, name: config.detect.alertsTopic },
    ],
  });

  const registry = new Registry();
  let detect: Detect | undefined;
  return serveConsumer({
    name: 'detect',
    registry,
    port: httpPort,
    logger,
    clickhouse,
    create: (onFatal) =>
      (detect = createDetect({
        kafka,
        clickhouse,
        logger,
        catalog,
        topic: config.detect.topic,
        groupId: config.detect.groupId,
        alertsTopic: config.detect.alertsTopic,
        allowedLatenessMs: config.detect.allowedLatenessMs,
        idleAdvanceMs: config.detect.idleAdvanceMs,
        budgetReloadMs: config.detect.budgetReloadMs,
        metricsRegistry: registry,
        onFatal,
      })),
    progress: async () => {
      const s = (await detect?.metrics.snapshot()) ?? {};
      logger.info(
        {
          counted: s.counted ?? 0,
          late: s.late ?? 0,
          duplicates: s.duplicate ?? 0,
          refused: s.refused ?? 0,
          spikes: s.alert_cost_spike ?? 0,
          budgetAlerts:
            (s.alert_budget_threshold ?? 0) +
            (s.alert_budget_burn_rate ?? 0) +
            (s.alert_budget_forecast ?? 0),
        },
        'detect progress',
      );
    },
  });
}
