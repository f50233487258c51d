import {
  escapeMrkdwn,
  formatCount,
  formatPercent,
  formatWindow,
  slackMessage,
} from '../../consumers/alerts/slack';
import type { SlackBlock, SlackMessage } from '../../consumers/alerts/slack';
import {
  LruSet,
  MAX_RETRY_AFTER_MS,
  backoffMs,
  retryAfterMs,
  verdictOf,
  webhookOrigin,
} from '../../consumers/alerts/relay';
import type { Alert } from '../../schemas/alert/types';

const spike: Alert = {
  alert_id: '0123456789abcdef0123456789abcdef',
  kind: 'cost_spike',
  severity: 'critical',
  fired_at: Date.UTC(2026, 10, 29, 12, 16, 3),
  org_id: 'acme',
  team_id: 'team-search',
  scope: 'team',
  model: null,
  user_id: null,
  project_id: null,
  window_start: Date.UTC(2026, 10, 29, 12, 0),
  window_end: Date.UTC(2026, 10, 29, 12, 15),
  observed_cost_nanousd: 412_000_000_000n,
  expected_cost_nanousd: 44_200_000_000n,
  observed_tokens: 41_000_000n,
  expected_tokens: 4_400_000n,
  score: 9.321,
  rule: 'window 15m: observed >= 3x expected and >= $50/h over expected',
  budget: null,
  top_contributors: [
    { dimension: 'user', value: 'svc-indexer', cost_nanousd: 333_720_000_000n, share: 0.81 },
    { dimension: 'model', value: 'claude-opus-4-1', cost_nanousd: 78_280_000_000n, share: 0.19 },
  ],
  message: 'team-search spent $412 in the last 15 min, 9.3x its usual $44; 81% from user svc-indexer',
  related_alert_id: null,
  detector: 'tokenledger-detect/0.1.0',
};

/** Everything a person would read: the fallback text and every text of every block. */
function allText(m: SlackMessage): string {
  const texts: string[] = [m.text];
  for (const b of m.blocks) {
    if (b.type === 'header') texts.push(b.text.text);
    if (b.type === 'section') texts.push(b.text?.text ?? '', ...(b.fields ?? []).map((f) => f.text));
    if (b.type === 'context') texts.push(...b.elements.map((e) => e.text));
  }
  return texts.join('\n');
}

function ofType<T extends SlackBlock['type']>(m: SlackMessage, type: T): Extract<SlackBlock, { type: T }>[] {
  return m.blocks.filter((b): b is Extract<SlackBlock, { type: T }> => b.type === type);
}

test('a spike: text is the severity emoji and the message; header, figures, contributors, alert_id', () => {
  const m = slackMessage(spike);
  expect(m.text).toBe(`:rotating_light: ${spike.message}`);
  expect(ofType(m, 'header')).toEqual([
    {
      type: 'header',
      text: { type: 'plain_text', text: ':rotating_light: Cost spike (critical): team-search', emoji: true },
    },
  ]);
  const fields = ofType(m, 'section').flatMap((s) => (s.fields ?? []).map((f) => f.text));
  expect(fields).toEqual([
    '*Team / scope*\nteam-search',
    '*Window*\n2026-11-29 12:00–12:15 UTC (15 min)',
    '*Observed vs expected*\n$412 vs $44.20',
    '*Tokens*\n41,000,000 vs 4,400,000 expected',
    '*Score*\n9.32',
    '*Rule*\nwindow 15m: observed &gt;= 3x expected and &gt;= $50/h over expected',
  ]);
  expect(allText(m)).toContain(
    '*Top contributors*\n• user `svc-indexer`: $334 (81%)\n• model `claude-opus-4-1`: $78.28 (19%)',
  );
  const context = ofType(m, 'context')[0]?.elements[0]?.text ?? '';
  expect(context).toContain('alert_id `0123456789abcdef0123456789abcdef`');
  expect(context).toContain('fired 2026-11-29 12:16:03 UTC');
  // the body is plain JSON (no bigint left in it)
  expect(() => JSON.stringify(m)).not.toThrow();
});

test('emoji by severity; a resolved spike is a check mark and names the spike it ends', () => {
  expect(slackMessage({ ...spike, severity: 'warning' }).text.startsWith(':warning: ')).toBe(true);
  expect(slackMessage({ ...spike, severity: 'info' }).text.startsWith(':information_source: ')).toBe(true);
  const resolved = slackMessage({
    ...spike,
    kind: 'spike_resolved',
    severity: 'info',
    related_alert_id: 'ffffffffffffffffffffffffffffffff',
  });
  expect(resolved.text.startsWith(':white_check_mark: ')).toBe(true);
  expect(ofType(resolved, 'header')[0]?.text.text).toBe(
    ':white_check_mark: Spike resolved (info): team-search',
  );
  expect(ofType(resolved, 'context')[0]?.elements[0]?.text).toContain(
    'resolves `ffffffffffffffffffffffffffffffff`',
  );
});

test('scopes in words: team+model, team+user, project, user', () => {
  const header = (a: Alert): string => ofType(slackMessage(a), 'header')[0]?.text.text ?? '';
  expect(header({ ...spike, scope: 'team_model', model: 'gpt-4.1' })).toContain(
    'team-search · model gpt-4.1',
  );
  expect(header({ ...spike, scope: 'team_user', user_id: 'ann' })).toContain('team-search · user ann');
  expect(header({ ...spike, scope: 'project', project_id: 'search' })).toContain(
    'project search (team team-search)',
  );
  expect(header({ ...spike, scope: 'user', user_id: 'bob' })).toContain('user bob (team team-search)');
});

test('a budget alert shows the budget figures exactly, money above 2^53 included', () => {
  const limit = 10n ** 17n; // $100,000,000
  const m = slackMessage({
    ...spike,
    kind: 'budget_burn_rate',
    severity: 'warning',
    scope: 'team',
    expected_cost_nanousd: 0n,
    expected_tokens: 0n,
    score: 14.4,
    top_contributors: [],
    budget: {
      budget_id: 'team:team-search:month',
      period: 'month',
      period_start: Date.UTC(2026, 10, 1),
      period_end: Date.UTC(2026, 11, 1),
      time_zone: 'UTC',
      unit: 'usd',
      limit,
      spent: limit / 3n + 1n,
      threshold_percent: null,
      burn_rate: 14.4,
      burn_window: '1h/5m',
      forecast_exhausted_at: Date.UTC(2026, 10, 30, 6),
    },
  });
  const fields = ofType(m, 'section').flatMap((s) => (s.fields ?? []).map((f) => f.text));
  expect(fields).toContain('*Budget*\nteam:team-search:month: $100,000,000 per month (UTC)');
  expect(fields).toContain('*Spent this month*\n$33,333,333 (33.3%) since 2026-11-01 00:00 UTC');
  expect(fields).toContain('*Burn rate*\n14.4x over 1h/5m');
  expect(fields).toContain('*Runs out*\n2026-11-30 06:00 UTC (period ends 2026-12-01 00:00 UTC)');
  expect(fields).toContain('*Observed in window*\n$412, 41,000,000 tokens');
  expect(fields.some((f) => f.startsWith('*Observed vs expected*'))).toBe(false);
  expect(allText(m)).not.toContain('Top contributors');
  for (const s of ofType(m, 'section')) expect((s.fields ?? []).length).toBeLessThanOrEqual(10);
});

test('a token budget is shown in tokens; a threshold names the percent', () => {
  const m = slackMessage({
    ...spike,
    kind: 'budget_threshold',
    budget: {
      budget_id: 'b1',
      period: 'day',
      period_start: Date.UTC(2026, 10, 29),
      period_end: Date.UTC(2026, 10, 30),
      time_zone: 'Europe/Berlin',
      unit: 'tokens',
      limit: 1_000_000n,
      spent: 800_000n,
      threshold_percent: 80,
      burn_rate: null,
      burn_window: null,
      forecast_exhausted_at: null,
    },
  });
  const text = allText(m);
  expect(text).toContain('b1: 1,000,000 tokens per day (Europe/Berlin)');
  expect(text).toContain('*Spent this day*\n800,000 tokens (80.0%)');
  expect(text).toContain('*Threshold crossed*\n80%');
});

test('user-supplied strings cannot inject links or mentions; long ones are clipped to Slack limits', () => {
  const m = slackMessage({
    ...spike,
    team_id: '<!channel>',
    message: `<https://evil.example|click> & ${'x'.repeat(5000)}`,
  });
  // the header is plain_text, which Slack never parses for links or mentions; everything else is mrkdwn
  const header = ofType(m, 'header')[0]?.text;
  expect(header?.type).toBe('plain_text');
  const text = allText({ ...m, blocks: m.blocks.filter((b) => b.type !== 'header') });
  expect(text).not.toMatch(/<!channel>|<https:/);
  expect(text).toContain('&lt;!channel&gt;');
  expect(text).toContain('&lt;https://evil.example|click&gt; &amp; ');
  expect(m.text.length).toBeLessThanOrEqual(3000);
  expect(header?.text.length).toBeLessThanOrEqual(150);
  for (const s of ofType(m, 'section')) expect((s.text?.text ?? '').length).toBeLessThanOrEqual(3000);
});

test('formatting helpers', () => {
  expect(escapeMrkdwn('a<b>&c')).toBe('a&lt;b&gt;&amp;c');
  expect(formatCount(2n ** 60n)).toBe('1,152,921,504,606,846,976');
  expect(formatPercent(1n, 3n)).toBe('33.3%');
  expect(formatPercent(5n, 0n)).toBe('n/a');
  expect(formatWindow(Date.UTC(2026, 10, 29, 23, 30), Date.UTC(2026, 10, 30, 0, 30))).toBe(
    '2026-11-29 23:30–2026-11-30 00:30 UTC (1 h)',
  );
});

describe('webhook delivery policy (consumers/alerts/relay.ts, pure parts)', () => {
  test('2xx delivered; 408, 429 and 5xx retried; other statuses permanent', () => {
    expect([200, 201, 204].map(verdictOf)).toEqual(['delivered', 'delivered', 'delivered']);
    expect([408, 429, 500, 502, 503, 504].map(verdictOf)).toEqual(Array(6).fill('retry'));
    expect([301, 400, 401, 403, 404, 410, 413].map(verdictOf)).toEqual(Array(7).fill('permanent'));
  });

  test('Retry-After as seconds or an HTTP date, capped; absent or bad is undefined', () => {
    const now = Date.UTC(2026, 10, 29, 12, 0, 0);
    expect(retryAfterMs('7', now)).toBe(7000);
    expect(retryAfterMs(' 0 ', now)).toBe(0);
    expect(retryAfterMs(new Date(now + 90_000).toUTCString(), now)).toBe(90_000);
    expect(retryAfterMs(new Date(now - 5000).toUTCString(), now)).toBe(0);
    expect(retryAfterMs('86400', now)).toBe(MAX_RETRY_AFTER_MS);
    expect(retryAfterMs(null, now)).toBeUndefined();
    expect(retryAfterMs('soon', now)).toBeUndefined();
  });

  test('backoff doubles from the initial step to the cap, jittered within the upper half of the step', () => {
    const low = (attempt: number): number => backoffMs(attempt, 500, 30_000, () => 0);
    const high = (attempt: number): number => backoffMs(attempt, 500, 30_000, () => 1);
    expect([1, 2, 3, 4, 5, 6, 7, 8].map(high)).toEqual([500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
    expect([1, 2, 7].map(low)).toEqual([250, 500, 15_000]);
    expect(high(10_000)).toBe(30_000);
  });

  test('the LRU of delivered ids forgets the least recently used beyond its capacity', () => {
    const s = new LruSet(3);
    for (const id of ['a', 'b', 'c']) s.add(id);
    expect(s.has('a')).toBe(true); // a is now the most recent
    s.add('d'); // evicts b
    expect([s.has('a'), s.has('b'), s.has('c'), s.has('d'), s.size]).toEqual([true, false, true, true, 3]);
  });

  test('only the origin of a webhook URL is shown (its path is the secret)', () => {
    expect(webhookOrigin('https://hooks.slack.com/services/T0/B0/secret')).toBe('https://hooks.slack.com');
    expect(webhookOrigin('not a url')).toBe('<invalid url>');
  });
});
