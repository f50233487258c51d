/** `tokenledger demo` (the README's first command) end to end on the test infrastructure. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { clickhouseUrl, kafkaBrokers } from '../../lib/config';
import { runCli } from '../helpers/cli';
import { testConfig, uniqueName } from '../helpers/env';

test('demo: a simulated organisation through emitter → Kafka → ingest + detect → ClickHouse; the spike and the budget alerts, a summary and the report', async () => {
  const config = testConfig();
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenledger-demo-'));
  const database = uniqueName('demo').replace(/\W/g, '_');
  const r = await runCli(
    ['demo', '--hours', '4', '--seconds', '15', '--database', database, '--timeout-ms', '90000'],
    {
      ...process.env,
      KAFKA_BROKERS: kafkaBrokers(config).join(','),
      CLICKHOUSE_URL: clickhouseUrl(config),
      TOKENLEDGER_HOME: home,
    },
    240_000,
  );
  process.stdout.write(
    `[demo] ${r.stdout
      .split('\n')
      .filter((l) => !l.includes('event time'))
      .join('\n[demo] ')}\n`,
  );
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/emitter: [\d,]+ events acknowledged by Kafka/);
  expect(r.stdout).not.toContain('stopped waiting');
  // the story: the runaway loop is a cost spike that ends, and the budget goes past 80 %
  expect(r.stdout).toMatch(
    /cost_spike\s+research\n\s+research spent \$[\d,.]+ in the last .*svc-agent-runner/,
  );
  expect(r.stdout).toMatch(/spike_resolved\s+research/);
  expect(r.stdout).toMatch(/budget_threshold support-bot\n\s+team support-bot has spent \$[\d,.]+ \(80%\)/);
  // no other team was alerted about a spike: every cost_spike is research's
  const spikeTeams = [...r.stdout.matchAll(/^ {2}\d\d:\d\d {2}\w+\s+cost_spike\s+(\S+)$/gm)].map((m) => m[1]);
  expect(spikeTeams.length).toBeGreaterThan(0);
  expect(new Set(spikeTeams)).toEqual(new Set(['research']));
  // the summary: 12 teams, the budget between 80 and 100 %, a report that exists, queries to try
  const teams = [...r.stdout.matchAll(/^([a-z-]+)\s+\d+\s+\d+\s+\$[\d,.]+$/gm)].map((m) => m[1]);
  expect(teams).toHaveLength(12);
  const used = /team:support-bot:month\s+\S+\s+\$[\d,.]+\s+\$[\d,.]+\s+([\d.]+) %/.exec(r.stdout);
  expect(Number(used?.[1])).toBeGreaterThanOrEqual(80);
  expect(Number(used?.[1])).toBeLessThan(100);
  const report = /▶ report: (\S+)/.exec(r.stdout)?.[1] ?? '';
  expect(fs.readFileSync(report, 'utf8')).toContain('<figure class="chart"');
  expect(r.stdout.match(/npx tokenledger sql "/g)).toHaveLength(3);
  fs.rmSync(home, { recursive: true, force: true });
});

test('demo: a bad flag exits 2 naming the value', async () => {
  for (const [args, message] of [
    [['--hours', 'lots'], '--hours must be a whole number from 4 to 24, got "lots"'],
    [['--seconds', '0'], '--seconds must be a whole number from 5 to 600, got "0"'],
    [
      ['--database', 'x;DROP'],
      '--database must be letters, digits and _ (not starting with a digit), got "x;DROP"',
    ],
  ] as const) {
    const r = await runCli(['demo', ...args], { ...process.env });
    expect([r.code, r.stderr.trim()]).toEqual([2, `tokenledger: ${message}`]);
  }
});
