import { usageEventRegistry } from '../../schemas/usage-event/schema';
import type { UsageEvent } from '../../schemas/usage-event/types';
import { DEFAULT_LIMITS, describeIssues, validateUsageEvent } from '../../schemas/usage-event/validate';
import { uuidv7 } from '../../producers/emitter/uuid';

const now = Date.UTC(2026, 10, 29, 12, 0, 0);
const good = (): UsageEvent => ({
  event_id: uuidv7(now),
  occurred_at: now - 1000,
  org_id: null,
  team_id: 'team-a',
  user_id: 'u1',
  project_id: null,
  application: null,
  environment: null,
  provider: 'openai',
  operation: 'chat',
  request_model: 'gpt-4.1',
  response_model: null,
  streaming: false,
  service_tier: null,
  status: 'ok',
  error_type: null,
  duration_ms: 100,
  time_to_first_token_ms: null,
  input_tokens: 100,
  cache_read_input_tokens: 60,
  cache_creation_input_tokens: 40,
  output_tokens: 50,
  reasoning_output_tokens: 50,
  client_cost_nanousd: null,
  tags: {},
  sdk: 'test',
});
const check = (e: unknown): ReturnType<typeof validateUsageEvent> =>
  validateUsageEvent(e, usageEventRegistry().current.type, DEFAULT_LIMITS, now);

test('a good event (limits reached exactly) has no issues', () => {
  expect(check(good())).toEqual([]);
});

test.each<[string, (e: UsageEvent) => void, string, string]>([
  ['empty team', (e) => (e.team_id = '  '), 'team_missing', 'team_id'],
  ['negative tokens', (e) => (e.output_tokens = -1), 'tokens_negative', 'output_tokens'],
  ['fractional tokens', (e) => (e.input_tokens = 1.5), 'schema_type', 'input_tokens'],
  [
    'cache read + write over input',
    (e) => (e.cache_read_input_tokens = 61),
    'cache_exceeds_input',
    'cache_read_input_tokens',
  ],
  [
    'reasoning over output',
    (e) => (e.reasoning_output_tokens = 51),
    'reasoning_exceeds_output',
    'reasoning_output_tokens',
  ],
  [
    'occurred_at in the future',
    (e) => (e.occurred_at = now + 10 * 60_000),
    'occurred_at_future',
    'occurred_at',
  ],
  [
    'occurred_at before 2020',
    (e) => (e.occurred_at = Date.UTC(2019, 0, 1)),
    'occurred_at_too_old',
    'occurred_at',
  ],
  ['bad event id', (e) => (e.event_id = 'not-a-uuid'), 'event_id_invalid', 'event_id'],
  ['bad status', (e) => (e.status = 'maybe' as never), 'status_invalid', 'status'],
  ['long model name', (e) => (e.request_model = 'x'.repeat(600)), 'string_too_long', 'request_model'],
  [
    'too many tags',
    (e) => (e.tags = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v']))),
    'tags_too_many',
    'tags',
  ],
  ['long tag value', (e) => (e.tags = { pr: 'y'.repeat(2000) }), 'string_too_long', 'tags.pr'],
  [
    'wrong type',
    (e) => ((e as unknown as Record<string, unknown>).streaming = 'yes'),
    'schema_type',
    'streaming',
  ],
  [
    'missing team (undefined)',
    (e) => ((e as unknown as Record<string, unknown>).team_id = undefined),
    'schema_type',
    'team_id',
  ],
])('%s → %s at %s', (_name, mutate, reason, path) => {
  const e = good();
  mutate(e);
  const issues = check(e);
  expect(issues.map((i) => [i.reason, i.path])).toContainEqual([reason, path]);
  // the message names the field
  expect(describeIssues(issues)).toContain(path.split('.')[0]);
});

test('messages name the value', () => {
  const e = good();
  e.output_tokens = -7;
  expect(describeIssues(check(e))).toBe(
    'output_tokens: output_tokens must not be negative, got -7; reasoning_output_tokens: reasoning_output_tokens (50) must not exceed output_tokens (-7); output_tokens counts ALL output, reasoning included',
  );
  expect(describeIssues(check({ ...good(), streaming: 'yes' }))).toBe(
    'streaming: streaming must be a boolean, got "yes"',
  );
});

test('uuidv7: version 7, variant 10, time-ordered, unique', () => {
  const ids = Array.from({ length: 5000 }, () => uuidv7(now));
  for (const id of ids.slice(0, 50))
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  expect(new Set(ids).size).toBe(ids.length);
  expect([...ids].sort()).toEqual(ids);
  expect(
    parseInt(
      uuidv7(now + 10_000)
        .replace(/-/g, '')
        .slice(0, 12),
      16,
    ),
  ).toBe(now + 10_000);
});
