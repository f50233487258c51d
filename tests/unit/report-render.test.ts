/**
 * The report's pure parts: flags and windows, the series pivot, burn-down and forecast arithmetic, the table /
 * CSV / JSON / HTML renderers, and `tokenledger sql`'s query check, parameters and output formats.
 */
import { isTokenledgerError } from '../../lib/errors';
import { parseReportFlags } from '../../cli/commands/report';
import { cellText, formatResult, parseParams, readOnlyQuery } from '../../cli/commands/sql';
import {
  OTHER_SERIES,
  burnPoints,
  forecast,
  paceWindow,
  parseInstant,
  pivotSeries,
  planWindow,
  renderCsv,
  renderHtml,
  renderJson,
  renderTable,
} from '../../cli/report';
import type { BudgetBurn, Measures, ReportAlert, ReportData } from '../../cli/report';

const MIN = 60_000;
const H = 60 * MIN;
const DAY = 24 * H;
const USD = 1_000_000_000n;
const NOW = Date.UTC(2026, 10, 29, 12, 34, 56, 789);

function usage(message: () => unknown): string {
  try {
    message();
  } catch (err) {
    if (isTokenledgerError(err, 'CLI_USAGE')) return err.message;
    throw err;
  }
  throw new Error('expected a CLI_USAGE error');
}

describe('--since / --until', () => {
  test.each([
    ['now', NOW],
    ['90m', NOW - 90 * MIN],
    ['24h', NOW - DAY],
    ['7d', NOW - 7 * DAY],
    ['2w', NOW - 14 * DAY],
    ['2026-11-01', Date.UTC(2026, 10, 1)],
    ['2026-11-01T12:00', Date.UTC(2026, 10, 1, 12)],
    ['2026-11-01T12:00:30Z', Date.UTC(2026, 10, 1, 12, 0, 30)],
    ['2026-11-01 12:00:00.250+01:00', Date.UTC(2026, 10, 1, 11, 0, 0, 250)],
  ])('%s', (text, want) => {
    expect(parseInstant(text, '--since', NOW)).toBe(want);
  });

  test.each(['yesterday', '7', '7y', '-1d', '2026-02-30', '2026-13-01', '2026-11-01T25:00Z', ''])(
    'refuses %j naming the flag and the value',
    (text) => {
      expect(usage(() => parseInstant(text, '--until', NOW))).toContain(`--until must be`);
      expect(usage(() => parseInstant(text, '--until', NOW))).toContain(JSON.stringify(text));
    },
  );

  const flags = { since: '7d', until: 'now', by: 'team', format: 'table' };
  test('bad flags name the flag and the value', () => {
    expect(usage(() => parseReportFlags({ ...flags, by: 'org' }, NOW))).toBe(
      '--by must be one of team, user, model, provider; got "org"',
    );
    expect(usage(() => parseReportFlags({ ...flags, format: 'xml' }, NOW))).toBe(
      '--format must be one of table, csv, json, html; got "xml"',
    );
    expect(usage(() => parseReportFlags({ ...flags, since: '1h', until: '2h' }, NOW))).toMatch(
      /^--since "1h" \(.*\) must be before --until "2h"/,
    );
    expect(usage(() => parseReportFlags({ ...flags, team: ' ' }, NOW))).toContain('--team');
    expect(parseReportFlags({ ...flags, team: "x' OR 1=1 --" }, NOW)).toEqual({
      since: NOW - 7 * DAY,
      until: NOW,
      by: 'team',
      team: "x' OR 1=1 --",
      format: 'table',
      out: undefined,
    });
  });
});

describe('planWindow', () => {
  test('short windows read the minute rollup, widened to whole minutes', () => {
    const w = planWindow(NOW - 2 * H, NOW, NOW);
    expect(w).toMatchObject({ source: 'usage_minute', bucketMs: MIN });
    expect(w.since).toBe(Date.UTC(2026, 10, 29, 10, 34));
    expect(w.until).toBe(Date.UTC(2026, 10, 29, 12, 35));
    expect(planWindow(NOW - DAY, NOW, NOW)).toMatchObject({ source: 'usage_minute', bucketMs: 15 * MIN });
  });
  test('a week reads the hour rollup; a year the day rollup', () => {
    const w = planWindow(NOW - 7 * DAY, NOW, NOW);
    expect(w).toMatchObject({ source: 'usage_hour', bucketMs: H });
    expect(w.since).toBe(Date.UTC(2026, 10, 22, 12));
    expect(w.until).toBe(Date.UTC(2026, 10, 29, 13));
    const y = planWindow(NOW - 365 * DAY, NOW, NOW);
    expect(y).toMatchObject({ source: 'usage_day', bucketMs: DAY, until: Date.UTC(2026, 10, 30) });
  });
  test('a short window older than the minute rollup keeps falls back to hours', () => {
    expect(planWindow(NOW - 40 * DAY, NOW - 39 * DAY, NOW)).toMatchObject({
      source: 'usage_hour',
      bucketMs: H,
    });
  });
});

describe('pivotSeries', () => {
  const window = { since: Date.UTC(2026, 10, 29, 10), until: Date.UTC(2026, 10, 29, 13), bucketMs: H };
  const row = (hour: number, team: string, cost: bigint): Record<string, unknown> => ({
    bucket: String(Date.UTC(2026, 10, 29, hour) / 1000),
    team_id: team,
    cost_nanousd: cost.toString(),
  });

  test('one series per team, biggest first, zeros where a team spent nothing', () => {
    const s = pivotSeries(window, [row(10, 'b', 5n), row(12, 'a', 9n), row(11, 'b', 7n)]);
    expect(s.buckets).toEqual([10, 11, 12].map((h) => Date.UTC(2026, 10, 29, h)));
    expect(s.series).toEqual([
      { team: 'b', points: [5n, 7n, 0n] },
      { team: 'a', points: [0n, 0n, 9n] },
    ]);
  });

  test('beyond 8 teams, the smallest are summed into one series; nothing is lost', () => {
    const big = 2n ** 60n; // sums past 2^53 stay exact
    const rows = Array.from({ length: 12 }, (_, i) => row(10 + (i % 3), `t${i}`, big + BigInt(i)));
    const s = pivotSeries(window, rows);
    expect(s.series).toHaveLength(8);
    expect(s.series.map((x) => x.team).slice(0, 3)).toEqual(['t11', 't10', 't9']);
    expect(s.series[7]?.team).toBe(OTHER_SERIES);
    const total = s.series.flatMap((x) => x.points).reduce((a, b) => a + b, 0n);
    expect(total).toBe(12n * big + 66n);
  });
});

describe('burn-down and forecast', () => {
  const start = Date.UTC(2026, 10, 1);
  const end = Date.UTC(2026, 11, 1);

  test('cumulative points from 0 at the start to the spend at asOf', () => {
    const asOf = start + 7 * H + 30 * MIN;
    const points = burnPoints(
      start,
      asOf,
      3 * H,
      new Map([
        [0, 5n],
        [2, 7n],
      ]),
    );
    expect(points).toEqual([
      { at: start, cumulative: 0n },
      { at: start + 3 * H, cumulative: 5n },
      { at: start + 6 * H, cumulative: 5n },
      { at: asOf, cumulative: 12n },
    ]);
  });

  test('no forecast before min(10% of the period, 24 h) has passed; then the pace of the last 24 h', () => {
    expect(paceWindow(start, end, start + 23 * H)).toBeUndefined();
    expect(paceWindow(start, end, start + 24 * H)).toBe(24 * H);
    expect(paceWindow(start, end, start + 10 * DAY)).toBe(24 * H);
    const dayStart = Date.UTC(2026, 10, 29);
    expect(paceWindow(dayStart, dayStart + DAY, dayStart + 2 * H)).toBeUndefined();
    expect(paceWindow(dayStart, dayStart + DAY, dayStart + 3 * H)).toBe(3 * H);
  });

  test('linear at the recent pace, exact in bigint, the exhaustion instant rounded up', () => {
    const asOf = start + 10 * DAY;
    // $100 spent, $30 of it in the last day; $400 budget: $300 left at $30/day = 10 days.
    const f = forecast({
      amount: 400n * USD,
      periodEnd: end,
      asOf,
      spent: 100n * USD,
      paceWindowMs: DAY,
      paceSpent: 30n * USD,
    });
    expect(f).toEqual({
      paceWindowMs: DAY,
      paceSpent: 30n * USD,
      projected: 100n * USD + 20n * 30n * USD,
      exhaustedAt: asOf + 10 * DAY,
    });
    const slow = forecast({
      ...{ amount: 400n * USD, periodEnd: end, asOf },
      spent: 1n,
      paceWindowMs: DAY,
      paceSpent: 3n,
    });
    expect(slow?.exhaustedAt).toBeNull();
    expect(slow?.projected).toBe(1n + 60n);
    const odd = forecast({ amount: 10n, periodEnd: end, asOf, spent: 0n, paceWindowMs: 3, paceSpent: 2n });
    expect(odd?.exhaustedAt).toBe(asOf + 15); // 10 * 3 / 2 = 15 exactly
    const up = forecast({ amount: 10n, periodEnd: end, asOf, spent: 0n, paceWindowMs: 1, paceSpent: 3n });
    expect(up?.exhaustedAt).toBe(asOf + 4); // 10 / 3 = 3.33 → 4
    expect(
      forecast({ amount: 10n, periodEnd: end, asOf, spent: 1n, paceWindowMs: DAY, paceSpent: 0n }),
    ).toBeNull();
  });
});

function m(cost: bigint, requests: bigint, extra: Partial<Measures> = {}): Measures {
  return {
    cost_nanousd: cost,
    requests,
    errors: 0n,
    unpriced_requests: 0n,
    input_tokens: requests * 100n,
    output_tokens: requests * 10n,
    cache_read_input_tokens: 0n,
    ...extra,
  };
}

const EVIL = '<script>alert("x")</script>, "quoted"';
const spike: ReportAlert = {
  alert_id: 'a1',
  kind: 'cost_spike',
  severity: 'critical',
  fired_at: Date.UTC(2026, 10, 28, 12, 26),
  team_id: 'search',
  scope: 'team',
  model: '',
  user_id: '',
  window_start: Date.UTC(2026, 10, 28, 12, 10),
  window_end: Date.UTC(2026, 10, 28, 12, 25),
  observed_cost_nanousd: 412n * USD,
  expected_cost_nanousd: 44n * USD,
  budget_id: '',
  forecast_exhausted_at: null,
  message: 'search spent $412 in the last 15 min, 9.4x its usual $44 & more',
};

function burn(): BudgetBurn {
  const start = Date.UTC(2026, 10, 1);
  return {
    budget: {
      budget_id: 'team:search:month',
      scope: 'team',
      scope_id: 'search',
      period: 'month',
      time_zone: 'Europe/Berlin',
      unit: 'usd',
      amount: 5000n * USD,
      thresholds: [50, 80, 100],
      description: '',
    },
    periodStart: start,
    periodEnd: Date.UTC(2026, 11, 1),
    periodLabel: 'November 2026',
    asOf: NOW,
    spent: 4000n * USD,
    bucketMs: 3 * H,
    points: [
      { at: start, cumulative: 0n },
      { at: start + 3 * H, cumulative: 1000n * USD },
      { at: NOW, cumulative: 4000n * USD },
    ],
    forecast: {
      paceWindowMs: DAY,
      paceSpent: 500n * USD,
      projected: 5100n * USD,
      exhaustedAt: NOW + DAY,
    },
    forecastAlert: null,
  };
}

function data(over: Partial<ReportData> = {}): ReportData {
  const since = Date.UTC(2026, 10, 28, 12);
  return {
    generatedAt: NOW,
    window: {
      requestedSince: since,
      requestedUntil: NOW,
      since,
      until: Date.UTC(2026, 10, 29, 12, 35),
      source: 'usage_minute',
      bucketMs: 15 * MIN,
    },
    by: 'team',
    team: null,
    totals: {
      ...m(2n ** 60n + 1500n * USD, 30n, { errors: 2n, unpriced_requests: 3n }),
      teams: 2,
      users: 3,
      models: 2,
    },
    rows: [
      { key: 'search', ...m(2n ** 60n, 20n) },
      { key: EVIL, ...m(1500n * USD, 10n) },
    ],
    spendOverTime: {
      buckets: [since, since + 15 * MIN, since + 30 * MIN],
      series: [
        { team: 'search', points: [1n, 2n, 3n] },
        { team: EVIL, points: [0n, 5n, 0n] },
      ],
    },
    alerts: [spike],
    budgets: [burn()],
    models: [
      { provider: 'openai', model: 'gpt-4.1', ...m(1000n * USD, 10n) },
      { provider: 'anthropic', model: EVIL, ...m(500n * USD, 5n) },
    ],
    topUsers: [{ user_id: 'alice@example.com', teams: ['search'], ...m(700n * USD, 7n) }],
    ...over,
  };
}

describe('renderTable / renderCsv / renderJson', () => {
  test('table: a title, aligned rows, a total line, money from nano-USD', () => {
    const text = renderTable(data());
    const lines = text.split('\n');
    expect(lines[0]).toBe(
      'Spend by team, 2026-11-28 12:00 – 2026-11-29 12:35 UTC (minute rollup), all teams',
    );
    expect(lines[2]).toMatch(/^team\s+cost\s+share\s+requests/);
    expect(text).toContain('$1,152,921,505'); // $1,152,921,504.61 to the dollar
    expect(text).toContain('$1,500');
    expect(lines.find((l) => l.startsWith('total'))).toMatch(/^total\s+\$1,152,923,005\s+100\.0%\s+30\s+2\s/);
    // numbers are right-aligned: every row ends at the same column
    const widths = new Set(lines.slice(2, 6).map((l) => l.length));
    expect(widths.size).toBe(1);
  });

  test('csv: header, one line per value with exact USD, quoted fields, a total row', () => {
    const lines = renderCsv(data()).trimEnd().split('\n');
    expect(lines[0]).toBe(
      'row,team,cost_usd,cost_nanousd,requests,errors,unpriced_requests,input_tokens,output_tokens,cache_read_input_tokens',
    );
    expect(lines[1]).toBe('item,search,1152921504.606846976,1152921504606846976,20,0,0,2000,200,0');
    expect(lines[2]).toBe(
      `item,"<script>alert(""x"")</script>, ""quoted""",1500,1500000000000,10,0,0,1000,100,0`,
    );
    expect(lines[3]).toBe('total,,1152923004.606846976,1152923004606846976,30,2,3,3000,300,0');
  });

  test('csv by model has a provider column', () => {
    const d = data({ by: 'model', rows: [{ key: 'gpt-4.1', provider: 'openai', ...m(5n, 1n) }] });
    const lines = renderCsv(d).trimEnd().split('\n');
    expect(lines[0]).toMatch(/^row,model,provider,cost_usd,/);
    expect(lines[1]).toMatch(/^item,gpt-4\.1,openai,0\.000000005,5,1,/);
    expect(renderTable(d).split('\n')[2]).toMatch(/^model\s+provider\s+cost/);
  });

  test('json: every section, 64-bit numbers as strings, instants as ISO 8601', () => {
    const j = JSON.parse(renderJson(data())) as Record<string, unknown> & {
      totals: Record<string, unknown>;
      rows: Record<string, unknown>[];
      budgets: Record<string, unknown>[];
      alerts: Record<string, unknown>[];
      spend_over_time: { buckets: string[]; series: { team: string; cost_nanousd: string[] }[] };
    };
    expect(j.totals.cost_nanousd).toBe((2n ** 60n + 1500n * USD).toString());
    expect(j.totals.cost_usd).toBe('1152923004.606846976');
    expect(j.rows[1]).toMatchObject({ team: EVIL, cost_nanousd: '1500000000000', requests: '10' });
    expect(j.spend_over_time.buckets[0]).toBe('2026-11-28T12:00:00.000Z');
    expect(j.spend_over_time.series[1]).toEqual({ team: EVIL, cost_nanousd: ['0', '5', '0'] });
    expect(j.budgets[0]).toMatchObject({
      budget_id: 'team:search:month',
      spent: '4000000000000',
      spent_percent: '80.0%',
      forecast: { projected: '5100000000000', exhausted_at: new Date(NOW + DAY).toISOString() },
    });
    expect(j.alerts[0]).toMatchObject({ alert_id: 'a1', fired_at: '2026-11-28T12:26:00.000Z' });
  });
});

describe('renderHtml', () => {
  const html = renderHtml(data());

  test('self-contained: no script, no stylesheet link, no URL of any kind', () => {
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/<link|<img|<iframe|@import|url\(/i);
    expect(html).not.toMatch(/https?:|\/\/[a-z]/i);
    expect(html).toContain('<style>');
  });

  test('every chart is a figure with a stable id and its point count', () => {
    const figures = [...html.matchAll(/<figure class="chart[^"]*" id="([^"]+)" data-points="(\d+)"/g)].map(
      (x) => [x[1], Number(x[2])],
    );
    expect(figures).toEqual([
      ['spend-over-time', 6], // 2 teams x 3 buckets
      ['burn-down-1', 3],
      ['model-mix', 2],
      ['top-users', 1],
    ]);
  });

  test('user text is escaped everywhere', () => {
    expect(html).not.toContain('<script>alert');
    expect(html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;');
    expect(html).toContain('9.4x its usual $44 &amp; more');
  });

  test('the cost spike is marked on the chart, its message in a <title> tooltip; totals in the header', () => {
    expect(html).toMatch(
      /<g class="alert-marker" data-alert-id="a1"><title>2026-11-28 12:26 UTC · critical · search spent \$412 in the last 15 min/,
    );
    expect(html).toContain('data-markers="1"');
    expect(html).toContain('<div class="value">$1,152,923,005</div>');
    expect(html).toContain('exactly $1152923004.606846976');
  });

  test('budget burn-down: limit, thresholds, forecast line and its exhaustion date in the zone', () => {
    expect(html).toContain('limit $5,000');
    expect(html).toContain('class="forecast"');
    expect(html).toContain('class="forecast-marker"');
    expect(html).toContain('runs out 2026-11-30 13:34 (Europe/Berlin)');
    expect(html).toContain('data-budget-id="team:search:month"');
  });

  test('no data: charts say so with data-points="0", no budget figure', () => {
    const empty = renderHtml(
      data({
        rows: [],
        spendOverTime: { buckets: [1, 2], series: [] },
        budgets: [],
        models: [],
        topUsers: [],
        alerts: [],
      }),
    );
    expect(empty).toContain('id="spend-over-time" data-points="0"');
    expect(empty).toContain('id="model-mix" data-points="0"');
    expect(empty).not.toContain('burn-down-1');
    expect(empty).toContain('no budgets');
    expect(empty).toContain('no alerts fired in this window');
  });
});

describe('tokenledger sql', () => {
  test('read queries pass, comments and a final ; stripped', () => {
    expect(readOnlyQuery('  -- spend\n/* by team */ select 1;  ')).toBe('select 1');
    expect(readOnlyQuery('WITH x AS (SELECT 1) SELECT * FROM x')).toBe(
      'WITH x AS (SELECT 1) SELECT * FROM x',
    );
    expect(readOnlyQuery('(SELECT 1) UNION ALL (SELECT 2)')).toBe('(SELECT 1) UNION ALL (SELECT 2)');
    for (const q of ['SHOW TABLES', 'DESCRIBE usage_day', 'desc budgets', 'EXPLAIN SELECT 1', 'EXISTS t']) {
      expect(readOnlyQuery(q)).toBe(q);
    }
  });

  test.each([
    'INSERT INTO t VALUES (1)',
    'DROP TABLE usage_events',
    '-- x\nALTER TABLE t DELETE WHERE 1',
    'SET readonly = 0',
    '',
  ])('refuses %j naming it', (q) => {
    const msg = usage(() => readOnlyQuery(q));
    expect(msg).toContain('only read queries run here');
    expect(msg).toContain(JSON.stringify(q.trim()));
  });

  test('parameters: name=value, the value may hold "="; bad or repeated names refused', () => {
    expect(parseParams(['team=search', 'expr=a=b', 'empty='])).toEqual({
      team: 'search',
      expr: 'a=b',
      empty: '',
    });
    expect(usage(() => parseParams(['1team=x']))).toContain('"1team=x"');
    expect(usage(() => parseParams(['team']))).toContain('"team"');
    expect(usage(() => parseParams(['t=1', 't=2']))).toBe('--param t is given twice; got "t=2"');
  });

  const result = {
    names: ['team', 'cost', 'tags', 'note'],
    types: ['String', 'Int64', 'Array(String)', 'Nullable(String)'],
    rows: [
      ['search', '1152921504606846976', ['a', 'b'], null],
      ['ads, "x"', '7', [], 'two\nlines'],
    ],
  };

  test('table: numbers right-aligned, NULL shown, control characters escaped', () => {
    expect(formatResult(result, 'table')).toBe(
      [
        'team                     cost  tags       note',
        '--------  -------------------  ---------  ----------',
        'search    1152921504606846976  ["a","b"]  NULL',
        'ads, "x"                    7  []         two\\nlines',
        '',
      ].join('\n'),
    );
    expect(cellText('\u0001')).toBe('\\u0001');
  });

  test('csv, json and jsonl keep values exact', () => {
    expect(formatResult(result, 'csv')).toBe(
      'team,cost,tags,note\nsearch,1152921504606846976,"[""a"",""b""]",\n"ads, ""x""",7,[],"two\nlines"\n',
    );
    const json = JSON.parse(formatResult(result, 'json')) as unknown[];
    expect(json).toEqual([
      { team: 'search', cost: '1152921504606846976', tags: ['a', 'b'], note: null },
      { team: 'ads, "x"', cost: '7', tags: [], note: 'two\nlines' },
    ]);
    const lines = formatResult(result, 'jsonl').trimEnd().split('\n');
    expect(lines.map((l) => JSON.parse(l) as unknown)).toEqual(json);
    expect(formatResult({ names: ['x'], types: ['UInt8'], rows: [] }, 'json')).toBe('[]\n');
  });
});
