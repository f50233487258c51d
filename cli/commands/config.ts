/** `tokenledger config check`: validates the environment, reports every problem at once, never prints secrets. */
import type { Command } from 'commander';
import { describeSettings, loadConfig, redactedConfig } from '../../lib/config';
import { say, table } from '../output';

export function registerConfig(program: Command): void {
  const config = program.command('config').description('inspect configuration');
  config
    .command('check')
    .description('validate settings from the environment; exit 2 and list every problem when any is invalid')
    .option('--list', 'list every setting with its meaning instead')
    .action((opts: { list?: boolean }) => {
      if (opts.list === true) {
        say(table([['setting', 'meaning'], ...describeSettings().map((s) => [s.env, s.doc])]));
        return;
      }
      const cfg = loadConfig();
      say('configuration is valid (secrets redacted):');
      say(JSON.stringify(redactedConfig(cfg), null, 2));
    });
}
