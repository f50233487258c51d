/**
 * The HTML report in a real browser (Debian's chromium, driven by playwright-core): it renders, every chart has
 * data, nothing is fetched from the network, and the page logs no console error. The data is the demo's
 * simulated organisation (four hours, twelve teams, the runaway loop), priced and written into the real
 * ClickHouse engine; the spike alert is what the real spike detector decides on those minutes.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { chromium } from 'playwright-core';
import type { Browser } from 'playwright-core';
import { alertRow } from '../../consumers/alerts/sink';
import { spikeAlert } from '../../consumers/detect/alerts';
import { upsertBudgets } from '../../consumers/detect/budget-store';
import { MinuteBuckets } from '../../consumers/detect/minutes';
import { SpikeDetector } from '../../consumers/detect/spike';
import { loadCatalog, priceEvent } from '../../consumers/pricing';
import { demoMinutes, demoPlan, pricingOf } from '../../cli/demo/org';
import { collectReport, renderHtml } from '../../cli/report';
import { ensureSchema } from '../../migrations/runner';
import { useTestDatabase } from '../helpers/clickhouse';
import { demoBucketEvent } from '../helpers/demo';
import { testLogger } from '../helpers/env';

const db = useTestDatabase();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenledger-report-browser-'));
let browser: Browser | undefined;

/** Debian's chromium (apt-get install chromium), or CHROMIUM_PATH. */
function chromiumPath(): string {
  const candidates = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'];
  const found = candidates.find((p) => p !== undefined && p !== '' && fs.existsSync(p));
  if (found === undefined) {
    throw new Error(
      "no Chromium for the browser test: install Debian's package (apt-get install chromium; infra/bootstrap.mjs does it when run as root) or set CHROMIUM_PATH",
    );
  }
  return found;
}

afterAll(async () => {
  await browser?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('the HTML report renders in headless Chromium: every chart has data, the spike is marked, no network, no console errors', async () => {
  const ch = db.client();
  await ensureSchema(ch, testLogger());
  const catalog = loadCatalog();
  // four hours at least: with three, the detector missed the loop when the plan ended in the first quarter of an
  // hour (every end minute of a day checked; the demo's default is six)
  const plan = demoPlan(Date.now(), 4);
  const detector = new SpikeDetector();
  const dt = (ms: number): string => new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
  const rows: Record<string, unknown>[] = [];
  let budgetTeamSpend = 0n;
  const alerts = [];
  for (const { minute, calls } of demoMinutes(plan)) {
    const buckets = new MinuteBuckets();
    for (const c of calls) {
      const at = c.occurred_at ?? minute;
      const price = priceEvent(catalog, pricingOf(c, minute));
      if (c.team_id === plan.budgetTeam) budgetTeamSpend += price.cost_nanousd;
      rows.push({
        event_id: randomUUID(),
        occurred_at: dt(at),
        org_id: 'acme',
        team_id: c.team_id,
        user_id: c.user_id ?? '',
        project_id: c.project_id ?? '',
        provider: c.provider,
        request_model: c.request_model,
        status: c.status ?? 'ok',
        cost_status: price.cost_status,
        cost_nanousd: price.cost_nanousd.toString(),
        input_tokens: c.input_tokens ?? 0,
        output_tokens: c.output_tokens ?? 0,
        duration_ms: c.duration_ms ?? null,
      });
      buckets.add(demoBucketEvent(c, at, price.cost_nanousd));
    }
    for (const d of detector.closeMinute(minute, buckets.take(minute / 60_000))) {
      alerts.push(spikeAlert(d, d.windowEnd, 'tokenledger-detect/test'));
    }
  }
  expect(alerts.some((a) => a.kind === 'cost_spike' && a.team_id === plan.loop.team)).toBe(true);
  await ch.insert({
    table: 'usage_events',
    format: 'JSONEachRow',
    values: rows,
    clickhouse_settings: { async_insert: 0 },
  });
  await ch.insert({
    table: 'alerts',
    format: 'JSONEachRow',
    values: alerts.map(alertRow),
    clickhouse_settings: { async_insert: 0 },
  });
  await upsertBudgets(ch, [
    {
      budget_id: `team:${plan.budgetTeam}:month`,
      scope: 'team',
      scope_id: plan.budgetTeam,
      period: 'month',
      time_zone: 'UTC',
      unit: 'usd',
      amount: (budgetTeamSpend * 100n) / 85n,
      thresholds: [50, 80, 100],
      description: 'browser test',
    },
  ]);

  const report = await collectReport(ch, { since: plan.start, until: plan.end + 60_000, by: 'team' });
  const file = path.join(dir, 'report.html');
  fs.writeFileSync(file, renderHtml(report));

  browser = await chromium.launch({ executablePath: chromiumPath(), args: ['--no-sandbox'] });
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const problems: string[] = [];
  const fetched: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  await page.route('**/*', async (route) => {
    const url = route.request().url();
    if (url.startsWith('file:')) return route.continue();
    fetched.push(url);
    return route.abort();
  });
  await page.goto(`file://${file}`, { waitUntil: 'load' });

  // evaluated in the page (a string: the project's TypeScript has no DOM types)
  const charts = JSON.parse(
    await page.evaluate<string>(`JSON.stringify([...document.querySelectorAll('figure.chart')].map((f) => {
      const svg = f.querySelector('svg');
      const box = svg === null ? { width: 0, height: 0 } : svg.getBoundingClientRect();
      return {
        id: f.id,
        points: Number(f.getAttribute('data-points')),
        shapes: svg === null ? 0 : svg.querySelectorAll('path, rect, circle, polyline, line').length,
        width: box.width,
        height: box.height,
      };
    }))`),
  ) as { id: string; points: number; shapes: number; width: number; height: number }[];
  process.stdout.write(`[report browser] ${JSON.stringify(charts)}\n`);
  const ids = charts.map((c) => c.id);
  expect(ids).toEqual(expect.arrayContaining(['spend-over-time', 'model-mix', 'top-users']));
  expect(ids.some((id) => id.startsWith('burn-down'))).toBe(true);
  for (const c of charts) {
    expect([c.id, c.points > 0, c.shapes > 0, c.width > 100, c.height > 50]).toEqual([
      c.id,
      true,
      true,
      true,
      true,
    ]);
  }
  // the runaway loop's alert is marked on the spend chart, with its message as the tooltip
  const marker = await page.evaluate<string>(
    `[...document.querySelectorAll('#spend-over-time .alert-marker title')].map((t) => t.textContent).join('\\n')`,
  );
  expect(marker).toContain('svc-agent-runner');
  expect(fetched).toEqual([]);
  expect(problems).toEqual([]);
  if (process.env.REPORT_SCREENSHOT !== undefined) {
    await page.screenshot({ path: process.env.REPORT_SCREENSHOT, fullPage: false });
  }
});
