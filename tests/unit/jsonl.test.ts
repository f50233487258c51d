import { parseEventLine } from '../../producers/jsonl';

test('a good line becomes an event input; ISO occurred_at becomes epoch ms', () => {
  expect(
    parseEventLine(
      '{"team_id":"a","provider":"openai","request_model":"gpt-4.1","input_tokens":5,"occurred_at":"2026-11-01T10:00:00Z"}',
    ),
  ).toEqual({
    kind: 'event',
    input: {
      team_id: 'a',
      provider: 'openai',
      request_model: 'gpt-4.1',
      input_tokens: 5,
      occurred_at: Date.UTC(2026, 10, 1, 10),
    },
  });
  expect(parseEventLine('   ')).toEqual({ kind: 'blank' });
  expect(parseEventLine('// a comment')).toEqual({ kind: 'blank' });
});

test.each([
  ['{not json', '(line)', /not valid JSON/],
  ['[1,2]', '(line)', /expected a JSON object, got \[1,2\]/],
  [
    '{"provider":"openai","request_model":"m","input_token":5}',
    'input_token',
    /unknown field "input_token" \(value 5\)/,
  ],
  [
    '{"provider":"openai","request_model":"m","occurred_at":"yesterday"}',
    'occurred_at',
    /ISO-8601 time, got "yesterday"/,
  ],
  ['{"request_model":"m"}', 'provider', /provider is required \(a string\), got undefined/],
])('%s → error at %s', (line, field, message) => {
  const r = parseEventLine(line);
  expect(r.kind).toBe('error');
  if (r.kind === 'error') {
    expect(r.field).toBe(field);
    expect(r.message).toMatch(message);
  }
});
