/** The `tokenledger` command line: parses arguments, runs one command, maps errors to messages and exit codes. */
import { Command, CommanderError } from 'commander';
import { registerAlerts } from './commands/alerts';
import { registerBudgets } from './commands/budgets';
import { registerConfig } from './commands/config';
import { registerDemo } from './commands/demo';
import { registerDetect } from './commands/detect';
import { registerEmit } from './commands/emit';
import { registerInfra } from './commands/infra';
import { registerMigrate } from './commands/migrate';
import { registerIngest } from './commands/ingest';
import { registerPrices } from './commands/prices';
import { registerReport } from './commands/report';
import { registerSql } from './commands/sql';
import { EXIT, report } from './output';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const pkg = require('../package.json') as { version: string };

export function buildProgram(): Command {
  const program = new Command('tokenledger')
    .description(
      'tokenledger: real-time metering of AI model spend (Kafka → ClickHouse, spike and budget alerts)',
    )
    .version(pkg.version, '-v, --version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerInfra(program);
  registerConfig(program);
  registerDemo(program);
  registerEmit(program);
  registerPrices(program);
  registerMigrate(program);
  registerIngest(program);
  registerDetect(program);
  registerAlerts(program);
  registerBudgets(program);
  registerReport(program);
  registerSql(program);
  program.addHelpText(
    'after',
    `
Configuration comes from environment variables; \`tokenledger config check --list\` lists them.
Docs: README.md and docs/ in the repository.`,
  );
  return program;
}

async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander already printed the message; help and version are successes.
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    return report(err);
  }
}

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.exitCode = report(err);
  },
);
