/** `tokenledger infra up|down|status`: the local Kafka broker and ClickHouse endpoint together. */
import type { Command } from 'commander';
import { loadConfig } from '../../lib/config';
import { localInfra } from '../../infra/local';
import { EXIT, say, table } from '../output';

export function registerInfra(program: Command): void {
  const infra = program
    .command('infra')
    .description('start, stop and inspect the local Kafka broker and ClickHouse endpoint')
    .addHelpText(
      'after',
      `
Services named by KAFKA_BROKERS or CLICKHOUSE_URL are external and not started locally.
State (data, logs, pid files) lives in TOKENLEDGER_HOME (default .tokenledger/).

Examples:
  tokenledger infra up          start both (harmless when already running)
  tokenledger infra status      show pids, addresses and whether each answers
  tokenledger infra down        stop both; no process is left behind`,
    );

  infra
    .command('up')
    .description('start the local broker and ClickHouse endpoint and wait until both answer')
    .action(async () => {
      const t0 = Date.now();
      const reports = await localInfra(loadConfig()).up();
      say(
        table([
          ['service', 'address', 'outcome', 'ms'],
          ...reports.map((r) => [r.service, r.address, r.outcome, String(r.ms)]),
        ]),
      );
      say(`infra up in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    });

  infra
    .command('down')
    .description('stop the local broker and ClickHouse endpoint')
    .action(async () => {
      const reports = await localInfra(loadConfig()).down();
      say(table([['service', 'outcome'], ...reports.map((r) => [r.service, r.outcome])]));
    });

  infra
    .command('status')
    .description('show whether the local services run and answer (exit 1 when a wanted one does not)')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const config = loadConfig();
      const infraUnit = localInfra(config);
      const statuses = await infraUnit.status();
      if (opts.json === true) {
        say(JSON.stringify({ local: statuses, external: infraUnit.external }, null, 2));
      } else {
        say(
          table([
            ['service', 'address', 'running', 'answering', 'pid', 'log'],
            ...statuses.map((s) => [
              s.name,
              s.address,
              String(s.running),
              String(s.answering),
              String(s.pid ?? '-'),
              s.logFile,
            ]),
            ...infraUnit.external.map((e) => [e.service, e.address, 'external', '-', '-', '-']),
          ]),
        );
      }
      const wantedDown = statuses.some(
        (s) => !s.answering && !infraUnit.external.some((e) => e.service === s.name),
      );
      process.exitCode = wantedDown ? EXIT.failure : EXIT.ok;
    });
}
