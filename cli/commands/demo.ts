/**
 * `tokenledger demo`: the main job, end to end on real components. Brings the infrastructure up (unless
 * KAFKA_BROKERS / CLICKHOUSE_URL point elsewhere), then cli/demo/run.ts: its own database and topics, migrations,
 * ingest and the detector, a simulated organisation recorded through the emitter (hours of event time in about a
 * minute: a runaway agent loop and a budget taken past 80 %), live progress, the alerts as they arrive, a summary
 * and a self-contained HTML report. Stops what it started (unless --keep).
 */
import path from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from '../../lib/config';
import { TokenledgerError } from '../../lib/errors';
import { localInfra } from '../../infra/local';
import { runDemo } from '../demo/run';
import { say, table } from '../output';

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description(
      'run the pipeline end to end on a simulated organisation: emitter → Kafka → ingest + detector → ClickHouse, alerts, report',
    )
    .option('--hours <n>', 'hours of event time to simulate (4-24)', '6')
    .option('--seconds <n>', 'wall-clock seconds to spread them over (5-600)', '60')
    .option('--database <name>', "the demo's own ClickHouse database, emptied first", 'tokenledger_demo')
    .option('--keep', 'leave ingest and the detector running (Ctrl-C stops them) and the infrastructure up')
    .option(
      '--timeout-ms <ms>',
      'how long to wait for the pipeline to catch up after the simulation',
      '90000',
    )
    .addHelpText(
      'after',
      `
The simulated organisation: 12 teams, 200 people plus a service account, 8 models from OpenAI, Anthropic and Google.
One team's agent runner loops on claude-opus-4-1 for 25 minutes (a cost spike); one team has a monthly budget the
run takes past 80 %. The demo writes into its own database (--database, emptied at the start; it refuses a
database that holds tables it did not create) and topics named tokenledger.demo.<run>.*.

Examples:
  npm run demo                      # start everything, run, print the summary and the report path, stop
  npm run demo -- --keep            # ... and leave it running to explore with \`tokenledger sql\` or a BI tool
  npx tokenledger demo --hours 12 --seconds 90`,
    )
    .action(
      async (opts: {
        hours: string;
        seconds: string;
        database: string;
        keep?: boolean;
        timeoutMs: string;
      }) => {
        const int = (flag: string, value: string, min: number, max: number): number => {
          const n = Number(value);
          if (!Number.isInteger(n) || n < min || n > max) {
            throw new TokenledgerError(
              'CLI_USAGE',
              `${flag} must be a whole number from ${min} to ${max}, got ${JSON.stringify(value)}`,
            );
          }
          return n;
        };
        const hours = int('--hours', opts.hours, 4, 24);
        const seconds = int('--seconds', opts.seconds, 5, 600);
        const timeoutMs = int('--timeout-ms', opts.timeoutMs, 1000, 3_600_000);
        if (!/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(opts.database)) {
          throw new TokenledgerError(
            'CLI_USAGE',
            `--database must be letters, digits and _ (not starting with a digit), got ${JSON.stringify(opts.database)}`,
          );
        }
        const config = loadConfig();
        const infra = localInfra(config);
        const started = Date.now();
        say('▶ starting infrastructure (Kafka broker + ClickHouse endpoint) ...');
        const up = await infra.up();
        say(table([['service', 'address', 'outcome'], ...up.map((r) => [r.service, r.address, r.outcome])]));
        say(`  ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
        // Ctrl-C (or SIGTERM) at any point: stop simulating, stop the consumers, stop what this run started
        const abort = new AbortController();
        const onSignal = (): void => abort.abort();
        process.once('SIGINT', onSignal);
        process.once('SIGTERM', onSignal);
        let outcome: 'done' | 'interrupted' = 'interrupted';
        try {
          outcome = await runDemo(config, {
            hours,
            seconds,
            database: opts.database,
            keep: opts.keep === true,
            timeoutMs,
            reportDir: path.join(config.local.home, 'reports'),
            signal: abort.signal,
          });
        } finally {
          process.removeListener('SIGINT', onSignal);
          process.removeListener('SIGTERM', onSignal);
          if (opts.keep !== true || outcome === 'interrupted') {
            // Stop only what this run started; a broker someone already had running stays up.
            const ours = up.filter((r) => r.outcome === 'started').map((r) => r.service);
            for (const s of infra.services.filter((svc) => ours.includes(svc.name))) await s.stop();
            if (ours.length > 0) say(`▶ stopped ${ours.join(' and ')}`);
          } else {
            say('▶ --keep: infrastructure left running (stop it with `npx tokenledger infra down`)');
          }
          say(`▶ demo finished in ${((Date.now() - started) / 1000).toFixed(0)} s`);
          // interrupted before the end (not --keep's Ctrl-C, which is how that mode ends): the shell's 128 + SIGINT
          if (outcome === 'interrupted' && abort.signal.aborted) process.exitCode = 130;
        }
      },
    );
}
