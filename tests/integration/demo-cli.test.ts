/** `tokenledger demo` (the README's first command) end to end on the test infrastructure. */
import { clickhouseUrl, kafkaBrokers } from '../../lib/config';
import { runCli } from '../helpers/cli';
import { useTestDatabase } from '../helpers/clickhouse';
import { testConfig } from '../helpers/env';

const db = useTestDatabase();

test('demo: emitter → Kafka → ingest → ClickHouse, spend by team and model, latency, dead letters; exit 0', async () => {
  const config = testConfig();
  const r = await runCli(['demo', '--events', '3000'], {
    ...process.env,
    KAFKA_BROKERS: kafkaBrokers(config).join(','),
    CLICKHOUSE_URL: clickhouseUrl(db.config),
    CLICKHOUSE_DATABASE: db.name,
  });
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(r.stdout).toContain('3000 events recorded, 3000 acknowledged by Kafka');
  expect(r.stdout).toMatch(/all 3000 events in ClickHouse/);
  expect(r.stdout).toMatch(/Spend by team[\s\S]*search\s+\d+/);
  expect(r.stdout).toMatch(/claude-sonnet-4-5\s+\d+\s+\d+\.\d+/);
  expect(r.stdout).toMatch(/bad_magic\s+1[\s\S]*team_missing\s+1[\s\S]*tokens_negative\s+1/);
  // the numbers printed are the ones in ClickHouse: total requests of this run's teams add up
  const requests = [
    ...r.stdout.matchAll(/^(search|support-bot|code-review|analytics|marketing|research)\s+(\d+)/gm),
  ].reduce((a, m) => a + Number(m[2]), 0);
  expect(requests).toBe(3000);
});

test('demo: a bad --events exits 2 naming the value', async () => {
  const r = await runCli(['demo', '--events', 'lots'], { ...process.env });
  expect(r.code).toBe(2);
  expect(r.stderr).toContain('--events must be a whole number between 1 and 10000000, got "lots"');
});
