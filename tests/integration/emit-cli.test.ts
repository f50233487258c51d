/** `tokenledger emit --file` as a user runs it, against the real broker. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { kafkaBrokers } from '../../lib/config';
import { usageEventRegistry } from '../../schemas/usage-event/schema';
import { runCli, isolatedEnv } from '../helpers/cli';
import { consumeAll, useTestKafka } from '../helpers/kafka';

const k = useTestKafka();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenledger-emit-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const lines = [
  '{"team_id":"search","user_id":"u1","provider":"openai","request_model":"gpt-4.1","input_tokens":1200,"output_tokens":300,"occurred_at":"2026-11-01T10:00:00Z"}',
  '',
  '{"team_id":"search","provider":"anthropic","request_model":"claude-sonnet-4-5","input_tokens":10,"output_tokens":-5}',
  '{"team_id":"ads","provider":"openai","request_model":"gpt-4.1-mini","input_token":7}',
  'not json at all',
  '{"team_id":"ads","provider":"openai","request_model":"gpt-4.1-mini","input_tokens":7,"tags":{"ticket":"ADS-1"}}',
  '{"provider":"openai","request_model":"gpt-4.1"}',
];

test('bad lines are reported with line, field and value; good lines are published; exit 1', async () => {
  const topic = await k.topic(2);
  const file = path.join(dir, 'events.jsonl');
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
  const env = isolatedEnv({ KAFKA_BROKERS: kafkaBrokers(k.config).join(','), LOG_LEVEL: 'error' });
  const r = await runCli(['emit', '--file', file, '--topic', topic, '--quiet'], env);
  expect(r.code).toBe(1);
  expect(r.stderr).toContain('line 3: output_tokens must not be negative, got -5;');
  expect(r.stderr).toContain('line 4: unknown field "input_token" (value 7)\n');
  expect(r.stderr).toContain('line 5: not valid JSON');
  expect(r.stderr).toContain('line 7: team_id is required, got ""\n');
  expect(r.stdout).toContain(`2 event(s) published to ${topic}; 4 bad line(s) of 7`);

  const got = await consumeAll({
    kafka: k.kafka,
    config: k.config,
    topic,
    groupId: k.groupId(),
    timeoutMs: 30_000,
  });
  const events = got.map((c) => usageEventRegistry().decode(c.message.value as Buffer).value);
  expect(events.map((e) => [e.team_id, e.request_model, e.input_tokens]).sort()).toEqual([
    ['ads', 'gpt-4.1-mini', 7],
    ['search', 'gpt-4.1', 1200],
  ]);
  expect(events.find((e) => e.team_id === 'search')?.occurred_at).toBe(Date.UTC(2026, 10, 1, 10));
  expect(events.find((e) => e.team_id === 'ads')?.tags).toEqual({ ticket: 'ADS-1' });
});

test('--dry-run validates without publishing; a clean file exits 0', async () => {
  const file = path.join(dir, 'clean.jsonl');
  fs.writeFileSync(file, `${lines[0] ?? ''}\n${lines[5] ?? ''}\n`);
  const r = await runCli(
    ['emit', '--file', file, '--dry-run', '--quiet'],
    isolatedEnv({ KAFKA_BROKERS: '127.0.0.1:1' }),
  );
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(r.stdout).toContain('2 event(s) valid (dry run, nothing published); 0 bad line(s) of 2');
});

test('a missing file or a bad flag value exits 2 naming it', async () => {
  const missing = await runCli(['emit', '--file', path.join(dir, 'nope.jsonl')], isolatedEnv({}));
  expect(missing.code).toBe(2);
  expect(missing.stderr).toContain('nope.jsonl');
  const flag = await runCli(
    ['emit', '--file', path.join(dir, 'clean.jsonl'), '--max-errors', 'lots', '--dry-run'],
    isolatedEnv({}),
  );
  expect(flag.code).toBe(2);
  expect(flag.stderr).toContain('--max-errors must be a whole number ≥ 0, got "lots"');
});
