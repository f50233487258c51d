/**
 * The report's charts as inline SVG strings, pure: spend over time (stacked steps per team, with alert
 * markers), horizontal bars (model mix, top users) and a budget burn-down (cumulative spend, limit,
 * thresholds, forecast). Every piece of text goes through `esc`.
 */
import { localDateString, localTimeString, localDate, startOfLocalDay } from '../../consumers/detect/periods';
import type { BudgetBurn } from './types';
import { clip, esc, niceTicks, px, scale, timeTicks, utcTickLabel } from './svg';

export interface StackedSeries {
  readonly name: string;
  readonly color: string;
  readonly points: readonly bigint[];
}

export interface TimeMarker {
  readonly id: string;
  readonly start: number;
  readonly end: number;
  readonly color: string;
  /** the tooltip: shown by the browser from the marker's <title> */
  readonly title: string;
  readonly label: string;
}

const AXIS = 'fill="#6b7280" font-size="11"';

function yAxis(
  ticks: readonly number[],
  y: (v: number) => number,
  x0: number,
  x1: number,
  label: (v: number) => string,
): string {
  return ticks
    .map(
      (t) =>
        `<line x1="${px(x0)}" x2="${px(x1)}" y1="${px(y(t))}" y2="${px(y(t))}" stroke="#e5e7eb"/>` +
        `<text x="${px(x0 - 6)}" y="${px(y(t) + 4)}" text-anchor="end" ${AXIS}>${esc(label(t))}</text>`,
    )
    .join('');
}

function xAxis(
  ticks: readonly { at: number; label: string }[],
  x: (v: number) => number,
  y0: number,
): string {
  return ticks
    .map(
      (t) =>
        `<line x1="${px(x(t.at))}" x2="${px(x(t.at))}" y1="${px(y0)}" y2="${px(y0 + 4)}" stroke="#9ca3af"/>` +
        `<text x="${px(x(t.at))}" y="${px(y0 + 16)}" text-anchor="middle" ${AXIS}>${esc(t.label)}</text>`,
    )
    .join('');
}

export interface StackedChartInput {
  readonly buckets: readonly number[];
  readonly bucketMs: number;
  readonly series: readonly StackedSeries[];
  readonly markers: readonly TimeMarker[];
  readonly money: (v: bigint) => string;
  /** labels of the value axis */
  readonly axisLabel: (v: number) => string;
  readonly width?: number;
  readonly height?: number;
}

/** Spend per bucket stacked by series, drawn as steps (each bucket a flat top over its own span). */
export function stackedStepChart(c: StackedChartInput): string {
  const width = c.width ?? 960;
  const height = c.height ?? 320;
  const m = { left: 72, right: 16, top: 26, bottom: 30 };
  const n = c.buckets.length;
  const t0 = c.buckets[0] ?? 0;
  const t1 = (c.buckets[n - 1] ?? 0) + c.bucketMs;
  const totals = c.buckets.map((_, i) => c.series.reduce((s, ser) => s + (ser.points[i] ?? 0n), 0n));
  const max = totals.reduce((a, b) => (b > a ? b : a), 0n);
  const ticks = niceTicks(Number(max));
  const x = scale(t0, t1, m.left, width - m.right);
  const y = scale(0, ticks[ticks.length - 1] ?? 1, height - m.bottom, m.top);
  const layers: string[] = [];
  const lower = c.buckets.map(() => 0n);
  for (const s of c.series) {
    const upper = lower.map((l, i) => l + (s.points[i] ?? 0n));
    const top: string[] = [];
    const bottom: string[] = [];
    for (let i = 0; i < n; i++) {
      const xa = px(x(t0 + i * c.bucketMs));
      const xb = px(x(t0 + (i + 1) * c.bucketMs));
      top.push(`${xa},${px(y(Number(upper[i] ?? 0n)))}`, `${xb},${px(y(Number(upper[i] ?? 0n)))}`);
      bottom.push(`${xa},${px(y(Number(lower[i] ?? 0n)))}`, `${xb},${px(y(Number(lower[i] ?? 0n)))}`);
    }
    const total = s.points.reduce((a, b) => a + b, 0n);
    layers.push(
      `<path class="series" data-series="${esc(s.name)}" d="M${[...top, ...bottom.reverse()].join('L')}Z" fill="${s.color}" fill-opacity="0.85" stroke="#fff" stroke-width="0.5"><title>${esc(`${s.name}: ${c.money(total)}`)}</title></path>`,
    );
    upper.forEach((v, i) => (lower[i] = v));
  }
  const { step, ticks: times } = timeTicks(t0, t1);
  const markers = c.markers
    .filter((mk) => mk.end > t0 && mk.start < t1)
    .map((mk) => {
      const xa = x(Math.max(mk.start, t0));
      const xb = Math.max(x(Math.min(mk.end, t1)), xa + 2);
      const cx = (xa + xb) / 2;
      return (
        `<g class="alert-marker" data-alert-id="${esc(mk.id)}"><title>${esc(mk.title)}</title>` +
        `<rect x="${px(xa)}" y="${m.top}" width="${px(xb - xa)}" height="${px(height - m.bottom - m.top)}" fill="${mk.color}" fill-opacity="0.12"/>` +
        `<line x1="${px(cx)}" x2="${px(cx)}" y1="${m.top - 6}" y2="${px(height - m.bottom)}" stroke="${mk.color}" stroke-dasharray="3 3"/>` +
        `<circle cx="${px(cx)}" cy="${m.top - 12}" r="8" fill="${mk.color}"/>` +
        `<text x="${px(cx)}" y="${m.top - 8}" text-anchor="middle" fill="#fff" font-size="11" font-weight="700">${esc(mk.label)}</text></g>`
      );
    });
  return (
    `<svg viewBox="0 0 ${width} ${height}" width="100%" role="img" aria-label="spend over time per team">` +
    yAxis(ticks, y, m.left, width - m.right, c.axisLabel) +
    layers.join('') +
    `<line x1="${m.left}" x2="${width - m.right}" y1="${height - m.bottom}" y2="${height - m.bottom}" stroke="#9ca3af"/>` +
    xAxis(
      times.map((t) => ({ at: t, label: utcTickLabel(t, step) })),
      x,
      height - m.bottom,
    ) +
    markers.join('') +
    `</svg>`
  );
}

export interface Bar {
  readonly label: string;
  readonly value: bigint;
  readonly valueText: string;
  readonly title: string;
  readonly color: string;
}

/** Horizontal bars, one row each, the value written after the bar. */
export function barChart(bars: readonly Bar[], ariaLabel: string, width = 460): string {
  const row = 26;
  const m = { left: 200, right: 110, top: 6, bottom: 6 };
  const height = m.top + m.bottom + row * Math.max(bars.length, 1);
  const max = bars.reduce((a, b) => (b.value > a ? b.value : a), 0n);
  const x = scale(0, Math.max(Number(max), 1), 0, width - m.left - m.right);
  const rows = bars.map((b, i) => {
    const yTop = m.top + i * row;
    const w = Math.max(x(Number(b.value)), b.value > 0n ? 1.5 : 0);
    return (
      `<g class="bar"><title>${esc(b.title)}</title>` +
      `<text x="${m.left - 8}" y="${px(yTop + 17)}" text-anchor="end" fill="#374151" font-size="11.5">${esc(clip(b.label, 28))}</text>` +
      `<rect x="${m.left}" y="${px(yTop + 5)}" width="${px(w)}" height="16" rx="3" fill="${b.color}"/>` +
      `<text x="${px(m.left + w + 6)}" y="${px(yTop + 17)}" fill="#111827" font-size="12">${esc(b.valueText)}</text></g>`
    );
  });
  return `<svg viewBox="0 0 ${width} ${height}" width="100%" role="img" aria-label="${esc(ariaLabel)}">${rows.join('')}</svg>`;
}

/** Ticks of a burn-down's time axis in the budget's zone: every 6 h of a day, each day of a week, weekly in a month. */
function burnTicks(b: BudgetBurn): { at: number; label: string }[] {
  const zone = b.budget.time_zone;
  if (b.budget.period === 'day') {
    return [0, 6, 12, 18, 24].map((h) => {
      const at = Math.min(b.periodStart + h * 3_600_000, b.periodEnd);
      return { at, label: localTimeString(at, zone).slice(11) };
    });
  }
  const first = localDate(b.periodStart + 12 * 3_600_000, zone);
  const days = b.budget.period === 'week' ? [0, 1, 2, 3, 4, 5, 6, 7] : [0, 7, 14, 21, 28];
  return days
    .map((d) => startOfLocalDay(first.year, first.month, first.day + d, zone))
    .filter((at) => at <= b.periodEnd)
    .map((at) => ({ at, label: localDateString(at, zone).slice(5) }));
}

/** Cumulative spend against the limit over the period, thresholds, "now", and the forecast to the period's end. */
export function burnDownChart(
  b: BudgetBurn,
  amount: (v: bigint) => string,
  axisLabel: (v: number) => string,
  width = 460,
  height = 240,
): string {
  const m = { left: 72, right: 16, top: 16, bottom: 30 };
  const limit = b.budget.amount;
  const projected = b.forecast?.projected ?? 0n;
  const top = [limit, b.spent, projected].reduce((a, v) => (v > a ? v : a), 0n);
  const ticks = niceTicks(Number(top) * 1.05);
  const x = scale(b.periodStart, b.periodEnd, m.left, width - m.right);
  const y = scale(0, ticks[ticks.length - 1] ?? 1, height - m.bottom, m.top);
  const yl = (v: bigint): string => px(y(Number(v)));
  const line = b.points.map((p) => `${px(x(p.at))},${yl(p.cumulative)}`).join('L');
  const last = b.points[b.points.length - 1];
  const area =
    last === undefined ? '' : `M${px(x(b.periodStart))},${yl(0n)}L${line}L${px(x(last.at))},${yl(0n)}Z`;
  const parts: string[] = [yAxis(ticks, y, m.left, width - m.right, axisLabel)];
  for (const t of b.budget.thresholds.filter((t) => t !== 100)) {
    const v = (limit * BigInt(t)) / 100n;
    parts.push(
      `<line class="threshold" x1="${m.left}" x2="${width - m.right}" y1="${yl(v)}" y2="${yl(v)}" stroke="#9ca3af" stroke-dasharray="2 4"/>` +
        `<text x="${width - m.right - 2}" y="${px(y(Number(v)) - 3)}" text-anchor="end" ${AXIS}>${t}%</text>`,
    );
  }
  parts.push(
    `<line class="limit" x1="${m.left}" x2="${width - m.right}" y1="${yl(limit)}" y2="${yl(limit)}" stroke="#d62728" stroke-width="1.5" stroke-dasharray="6 3"/>` +
      `<text x="${m.left + 4}" y="${px(y(Number(limit)) - 4)}" fill="#d62728" font-size="11">limit ${esc(amount(limit))}</text>`,
  );
  if (area !== '') {
    parts.push(
      `<path d="${area}" fill="#4e79a7" fill-opacity="0.15"/><path class="spend" d="M${line}" fill="none" stroke="#4e79a7" stroke-width="2"/>`,
    );
  }
  parts.push(
    `<line class="now" x1="${px(x(b.asOf))}" x2="${px(x(b.asOf))}" y1="${m.top}" y2="${height - m.bottom}" stroke="#6b7280" stroke-dasharray="1 3"/>`,
  );
  const f = b.forecast;
  if (f !== null) {
    parts.push(
      `<path class="forecast" d="M${px(x(b.asOf))},${yl(b.spent)}L${px(x(b.periodEnd))},${yl(f.projected)}" fill="none" stroke="#f28e2b" stroke-width="2" stroke-dasharray="6 4"><title>${esc(`forecast at the pace of the last ${Math.round(f.paceWindowMs / 3_600_000)} h: ${amount(f.projected)} by the end of the period`)}</title></path>`,
    );
  }
  const exhausted = b.forecastAlert?.forecast_exhausted_at ?? f?.exhaustedAt ?? null;
  if (exhausted !== null && exhausted >= b.periodStart && exhausted <= b.periodEnd) {
    const title =
      b.forecastAlert?.message ??
      `at the recent pace the budget runs out ${localTimeString(exhausted, b.budget.time_zone)} (${b.budget.time_zone})`;
    parts.push(
      `<g class="forecast-marker"><title>${esc(title)}</title>` +
        `<line x1="${px(x(exhausted))}" x2="${px(x(exhausted))}" y1="${m.top}" y2="${height - m.bottom}" stroke="#e8891d" stroke-width="1.5"/>` +
        `<circle cx="${px(x(exhausted))}" cy="${yl(limit)}" r="5" fill="#e8891d"/></g>`,
    );
  }
  parts.push(
    `<line x1="${m.left}" x2="${width - m.right}" y1="${height - m.bottom}" y2="${height - m.bottom}" stroke="#9ca3af"/>`,
    xAxis(burnTicks(b), x, height - m.bottom),
  );
  return `<svg viewBox="0 0 ${width} ${height}" width="100%" role="img" aria-label="${esc(`burn-down of budget ${b.budget.budget_id}`)}">${parts.join('')}</svg>`;
}
