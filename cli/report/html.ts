/**
 * The report as one self-contained HTML page, pure: inline CSS and inline SVG charts, no script, no font, no
 * image, no URL, so it renders the same offline and in a mail attachment. Every chart is a
 * `<figure class="chart" id="…" data-points="N">` (N: the values drawn), so a browser test can find each one
 * and see that it has data. All text is escaped; money is formatUsd of exact nano-USD.
 */
import { formatUsd } from '../../consumers/detect/alerts';
import { usdDecimal } from '../../consumers/detect/budget-store';
import { formatCount, formatPercent } from '../../consumers/alerts/slack';
import { localTimeString } from '../../consumers/detect/periods';
import type { BudgetBurn, ReportData } from './types';
import { OTHER_SERIES } from './types';
import { barChart, burnDownChart, stackedStepChart } from './charts';
import type { TimeMarker } from './charts';
import { keyText, reportTitle, windowText } from './render-text';
import { OTHER_COLOR, SEVERITY_COLOR, colorAt, compactCount, esc, usdAxisLabel } from './svg';

/** Rows of the breakdown table shown on the page (all of them are in --format csv / json). */
export const MAX_TABLE_ROWS = 50;

const CSS = `
:root{--ink:#111827;--muted:#6b7280;--line:#e5e7eb;--bg:#f7f8fb;--card:#fff;--accent:#4e79a7}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1100px;margin:0 auto;padding:28px 24px 48px}
header h1{font-size:24px;margin:0 0 2px;letter-spacing:-.01em}
header h1 span{color:var(--accent)}
.sub{color:var(--muted);margin:0 0 20px}
h2{font-size:17px;margin:0 0 4px}
.note{color:var(--muted);font-size:12.5px;margin:0 0 12px}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:18px 20px;margin:0 0 18px;box-shadow:0 1px 2px rgba(0,0,0,.03)}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(160px,1fr));gap:12px;background:none;border:0;padding:0;box-shadow:none}
.kpi{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:12px 14px}
.kpi .label{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.kpi .value{font-size:22px;font-weight:650;margin-top:2px;font-variant-numeric:tabular-nums}
.kpi .detail{color:var(--muted);font-size:12px}
figure{margin:0}
.legend{display:flex;flex-wrap:wrap;gap:6px 16px;margin:8px 0 0;padding:0;list-style:none;font-size:12.5px}
.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px;vertical-align:-1px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(440px,1fr));gap:18px;align-items:start}
.grid>section{margin:0}
.budgets{display:grid;grid-template-columns:repeat(auto-fit,minmax(330px,1fr));gap:16px}
.budgets figure{border:1px solid var(--line);border-radius:8px;padding:10px 12px}
figcaption{font-size:12.5px;color:var(--muted);margin-top:4px}
figcaption strong{color:var(--ink)}
.empty{color:var(--muted);padding:24px 0;text-align:center}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{color:var(--muted);font-weight:600;font-size:12px}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.badge{display:inline-block;padding:1px 7px;border-radius:9px;font-size:11.5px;color:#fff;font-weight:600}
.nowrap{white-space:nowrap}
footer{color:var(--muted);font-size:12px;text-align:center;margin-top:24px}
`;

const iso16 = (ms: number): string => new Date(ms).toISOString().slice(0, 16).replace('T', ' ');

function kpi(label: string, value: string, detail: string): string {
  return `<div class="kpi"><div class="label">${esc(label)}</div><div class="value">${esc(value)}</div><div class="detail">${esc(detail)}</div></div>`;
}

function figure(id: string, points: number, body: string, extra = '', cls = 'chart'): string {
  return `<figure class="${cls}" id="${esc(id)}" data-points="${points}"${extra}>${body}</figure>`;
}

function header(d: ReportData): string {
  const t = d.totals;
  const critical = d.alerts.filter((a) => a.severity === 'critical').length;
  return (
    `<header><h1><span>tokenledger</span> · AI spend report</h1>` +
    `<p class="sub">${esc(windowText(d.window))} · ${esc(d.team === null ? 'all teams' : `team ${d.team}`)} · generated ${esc(iso16(d.generatedAt))} UTC</p></header>` +
    `<section class="kpis" id="totals">` +
    kpi('Spend', formatUsd(t.cost_nanousd), `exactly $${usdDecimal(t.cost_nanousd)}`) +
    kpi(
      'Requests',
      formatCount(t.requests),
      `${formatCount(t.errors)} errors (${formatPercent(t.errors, t.requests)})`,
    ) +
    kpi(
      'Tokens',
      formatCount(t.input_tokens + t.output_tokens),
      `${formatCount(t.input_tokens)} in · ${formatCount(t.output_tokens)} out`,
    ) +
    kpi('Teams · users · models', `${t.teams} · ${t.users} · ${t.models}`, 'with usage in the window') +
    kpi('Alerts', formatCount(d.alerts.length), `${critical} critical`) +
    kpi('Unpriced requests', formatCount(t.unpriced_requests), 'not in the price catalog: cost 0') +
    `</section>`
  );
}

function spendOverTime(d: ReportData): string {
  const { buckets, series } = d.spendOverTime;
  const colored = series.map((s, i) => ({
    name: s.team,
    color: s.team === OTHER_SERIES ? OTHER_COLOR : colorAt(i),
    points: s.points,
  }));
  const t0 = buckets[0] ?? 0;
  const t1 = (buckets[buckets.length - 1] ?? 0) + d.window.bucketMs;
  const markers: TimeMarker[] = d.alerts
    .filter((a) => a.kind === 'cost_spike' && a.window_end > t0 && a.window_start < t1)
    .map((a) => ({
      id: a.alert_id,
      start: a.window_start,
      end: a.window_end,
      color: SEVERITY_COLOR[a.severity] ?? SEVERITY_COLOR.warning ?? '#e8891d',
      title: `${iso16(a.fired_at)} UTC · ${a.severity} · ${a.message}`,
      label: '!',
    }));
  const points = series.length * buckets.length;
  const step =
    d.window.bucketMs >= 3_600_000
      ? `${d.window.bucketMs / 3_600_000} h`
      : `${d.window.bucketMs / 60_000} min`;
  const body =
    series.length === 0
      ? '<p class="empty">no usage in this window</p>'
      : stackedStepChart({
          buckets,
          bucketMs: d.window.bucketMs,
          series: colored,
          markers,
          money: formatUsd,
          axisLabel: (v) => usdAxisLabel(v, formatUsd),
        }) +
        `<ul class="legend">${colored
          .map(
            (s) =>
              `<li><i style="background:${s.color}"></i>${esc(s.name)} <span class="note">${esc(formatUsd(s.points.reduce((a, b) => a + b, 0n)))}</span></li>`,
          )
          .join('')}</ul>`;
  return (
    `<section><h2>Spend over time per team</h2>` +
    `<p class="note">Cost per ${esc(step)} (UTC), stacked by team. Cost-spike alerts are marked <b>!</b> over their window: hover for the message.</p>` +
    figure(
      'spend-over-time',
      points,
      body,
      ` data-series="${series.length}" data-markers="${markers.length}"`,
    ) +
    `</section>`
  );
}

function forecastText(b: BudgetBurn, amount: (v: bigint) => string): string {
  const zone = b.budget.time_zone;
  if (b.spent >= b.budget.amount) return 'budget exhausted';
  const f = b.forecast;
  if (f === null) return 'no forecast yet (too early in the period, or no recent spend)';
  const pace = `at the pace of the last ${Math.round(f.paceWindowMs / 3_600_000)} h`;
  if (f.exhaustedAt === null) return `${pace}: ${amount(f.projected)} by the period's end, within budget`;
  return `${pace}: runs out ${localTimeString(f.exhaustedAt, zone)} (${zone}); ${amount(f.projected)} by the period's end`;
}

function budgets(d: ReportData): string {
  if (d.budgets.length === 0) {
    return `<section><h2>Budgets</h2><p class="empty">no budgets${d.team === null ? '' : ` for team ${esc(d.team)}`}: set one with <code>tokenledger budgets set</code></p></section>`;
  }
  const figures = d.budgets.map((b, i) => {
    const unit = b.budget.unit;
    const amount = (v: bigint): string => (unit === 'usd' ? formatUsd(v) : `${formatCount(v)} tokens`);
    const axis = (v: number): string => (unit === 'usd' ? usdAxisLabel(v, formatUsd) : compactCount(v));
    const alert =
      b.forecastAlert === null
        ? ''
        : `<br><span class="badge" style="background:${SEVERITY_COLOR.warning ?? '#e8891d'}">forecast alert</span> ${esc(b.forecastAlert.message)}`;
    const caption =
      `<figcaption><strong>${esc(b.budget.budget_id)}</strong> · ${esc(`${b.budget.scope} ${b.budget.scope_id}`)} · ${esc(b.periodLabel)} (${esc(b.budget.time_zone)})<br>` +
      `spent <strong>${esc(amount(b.spent))}</strong> of ${esc(amount(b.budget.amount))} (${esc(formatPercent(b.spent, b.budget.amount))}) · ${esc(forecastText(b, amount))}${alert}</figcaption>`;
    return figure(
      `burn-down-${i + 1}`,
      b.points.length,
      burnDownChart(b, amount, axis) + caption,
      ` data-budget-id="${esc(b.budget.budget_id)}"`,
      'chart burn-down',
    );
  });
  return (
    `<section><h2>Budget burn-down</h2>` +
    `<p class="note">Cumulative spend in each budget's current period against its limit (dashed red), thresholds (grey), now (dotted) and the forecast at the recent pace (dashed orange); an orange mark is the forecast exhaustion.</p>` +
    `<div class="budgets">${figures.join('')}</div></section>`
  );
}

/** "openai/gpt-4.1"; "(none)" for an empty part. */
function modelLabel(provider: string, model: string): string {
  return `${keyText(provider)}/${keyText(model)}`;
}

function modelMix(d: ReportData): string {
  const bars = d.models.map((m, i) => ({
    label: modelLabel(m.provider, m.model),
    value: m.cost_nanousd,
    valueText:
      m.cost_nanousd === 0n && m.unpriced_requests > 0n
        ? `unpriced · ${formatCount(m.requests)} requests`
        : `${formatUsd(m.cost_nanousd)} · ${formatPercent(m.cost_nanousd, d.totals.cost_nanousd)}`,
    title: `${modelLabel(m.provider, m.model)}: ${formatUsd(m.cost_nanousd)}, ${formatCount(m.requests)} requests, ${formatCount(m.input_tokens)} input and ${formatCount(m.output_tokens)} output tokens`,
    color: colorAt(i),
  }));
  const body =
    bars.length === 0 ? '<p class="empty">no usage in this window</p>' : barChart(bars, 'model mix by cost');
  return `<section><h2>Model mix</h2><p class="note">Cost by requested model${d.totals.models > d.models.length ? ` (top ${d.models.length} of ${d.totals.models})` : ''}.</p>${figure('model-mix', bars.length, body)}</section>`;
}

function topUsers(d: ReportData): string {
  const bars = d.topUsers.map((u) => ({
    label: u.user_id,
    value: u.cost_nanousd,
    valueText: formatUsd(u.cost_nanousd),
    title: `${u.user_id} (${u.teams.join(', ')}): ${formatUsd(u.cost_nanousd)}, ${formatCount(u.requests)} requests`,
    color: '#76b7b2',
  }));
  const rows = d.topUsers
    .map(
      (u) =>
        `<tr><td>${esc(u.user_id)}</td><td>${esc(u.teams.join(', '))}</td><td class="num">${esc(formatUsd(u.cost_nanousd))}</td><td class="num">${esc(formatCount(u.requests))}</td><td class="num">${esc(formatCount(u.input_tokens + u.output_tokens))}</td></tr>`,
    )
    .join('');
  const body =
    bars.length === 0
      ? '<p class="empty">no usage with a user id in this window</p>'
      : barChart(bars, 'top users by cost') +
        `<table><thead><tr><th>user</th><th>teams</th><th class="num">cost</th><th class="num">requests</th><th class="num">tokens</th></tr></thead><tbody>${rows}</tbody></table>`;
  return `<section><h2>Top users</h2><p class="note">The ${bars.length} users with the highest cost.</p>${figure('top-users', bars.length, body)}</section>`;
}

function breakdown(d: ReportData): string {
  const model = d.by === 'model';
  const shown = d.rows.slice(0, MAX_TABLE_ROWS);
  const rows = shown
    .map(
      (r) =>
        `<tr><td>${esc(keyText(r.key))}</td>${model ? `<td>${esc(r.provider ?? '')}</td>` : ''}<td class="num">${esc(formatUsd(r.cost_nanousd))}</td><td class="num">${esc(formatPercent(r.cost_nanousd, d.totals.cost_nanousd))}</td><td class="num">${esc(formatCount(r.requests))}</td><td class="num">${esc(formatCount(r.errors))}</td><td class="num">${esc(formatCount(r.input_tokens))}</td><td class="num">${esc(formatCount(r.output_tokens))}</td></tr>`,
    )
    .join('');
  const more =
    d.rows.length > shown.length
      ? `<p class="note">and ${d.rows.length - shown.length} more: use --format csv for all of them.</p>`
      : '';
  const t = d.totals;
  return (
    `<section id="breakdown"><h2>Spend by ${esc(d.by)}</h2><p class="note">${esc(reportTitle(d))}.</p>` +
    `<table><thead><tr><th>${esc(d.by)}</th>${model ? '<th>provider</th>' : ''}<th class="num">cost</th><th class="num">share</th><th class="num">requests</th><th class="num">errors</th><th class="num">input tokens</th><th class="num">output tokens</th></tr></thead>` +
    `<tbody>${rows}<tr><th>total</th>${model ? '<th></th>' : ''}<th class="num">${esc(formatUsd(t.cost_nanousd))}</th><th class="num">100%</th><th class="num">${esc(formatCount(t.requests))}</th><th class="num">${esc(formatCount(t.errors))}</th><th class="num">${esc(formatCount(t.input_tokens))}</th><th class="num">${esc(formatCount(t.output_tokens))}</th></tr></tbody></table>${more}</section>`
  );
}

function alertsList(d: ReportData): string {
  if (d.alerts.length === 0)
    return `<section id="alerts"><h2>Alerts</h2><p class="empty">no alerts fired in this window</p></section>`;
  const rows = d.alerts
    .map(
      (a) =>
        `<tr data-alert-id="${esc(a.alert_id)}"><td class="nowrap">${esc(iso16(a.fired_at))}</td><td><span class="badge" style="background:${SEVERITY_COLOR[a.severity] ?? '#6b7280'}">${esc(a.severity)}</span></td><td class="nowrap">${esc(a.kind)}</td><td>${esc(a.team_id)}</td><td>${esc(a.message)}</td></tr>`,
    )
    .join('');
  return (
    `<section id="alerts"><h2>Alerts</h2><p class="note">Fired in the window, newest first (UTC).</p>` +
    `<table><thead><tr><th>fired</th><th>severity</th><th>kind</th><th>team</th><th>message</th></tr></thead><tbody>${rows}</tbody></table></section>`
  );
}

/** The whole page. */
export function renderHtml(d: ReportData): string {
  return (
    `<!doctype html>\n<html lang="en"><head><meta charset="utf-8">` +
    `<meta name="viewport" content="width=device-width, initial-scale=1">` +
    `<title>${esc(`tokenledger report · ${windowText(d.window)}`)}</title><style>${CSS}</style></head>` +
    `<body><main>` +
    header(d) +
    spendOverTime(d) +
    budgets(d) +
    `<div class="grid">${modelMix(d)}${topUsers(d)}</div>` +
    breakdown(d) +
    alertsList(d) +
    `<footer>Generated by tokenledger from the ClickHouse ${esc(d.window.source)} rollup and the alerts and budgets tables. Money is exact from integer nano-USD.</footer>` +
    `</main></body></html>\n`
  );
}
