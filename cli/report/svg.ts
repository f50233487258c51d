/**
 * SVG building blocks for the HTML report, pure: escaping, scales, "nice" axis ticks, time ticks. Charts are
 * drawn server-side as inline SVG (no script, no library, no URL). Pixel positions are floats; the values
 * they stand for stay exact elsewhere (bigint nano-USD).
 */

/** Escapes text for HTML and SVG, in element content and in attribute values. */
export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) =>
    c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : '&#39;',
  );
}

/** A coordinate for SVG text: at most one decimal. */
export function px(n: number): string {
  return String(Math.round(n * 10) / 10);
}

/** Linear map from [d0, d1] to [r0, r1]; a degenerate domain maps to r0. */
export function scale(d0: number, d1: number, r0: number, r1: number): (v: number) => number {
  const span = d1 - d0;
  return (v) => (span === 0 ? r0 : r0 + ((v - d0) / span) * (r1 - r0));
}

/**
 * Axis ticks from 0 to a "nice" maximum at or above `max` (steps of 1, 2, 2.5 or 5 × 10^k), about `count`
 * steps. `[0, 1]` when max ≤ 0.
 */
export function niceTicks(max: number, count = 4): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / count;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 2.5, 5, 10].find((m) => m * pow >= raw) ?? 10) * pow;
  const ticks: number[] = [];
  for (let i = 0; ; i++) {
    const v = i * step;
    ticks.push(v);
    if (v >= max) break;
  }
  return ticks;
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const TIME_STEPS = [
  MINUTE,
  5 * MINUTE,
  15 * MINUTE,
  30 * MINUTE,
  HOUR,
  3 * HOUR,
  6 * HOUR,
  12 * HOUR,
  DAY,
  2 * DAY,
  7 * DAY,
  14 * DAY,
  28 * DAY,
];

/** UTC-aligned ticks inside [t0, t1]: the smallest step from the list giving at most `max` ticks. */
export function timeTicks(t0: number, t1: number, max = 7): { step: number; ticks: number[] } {
  const step = TIME_STEPS.find((s) => (t1 - t0) / s <= max) ?? Math.ceil((t1 - t0) / max / DAY) * DAY;
  const ticks: number[] = [];
  for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) ticks.push(t);
  return { step, ticks };
}

/** A tick label in UTC: "14:00", "11-29 00:00" at midnight, "11-29" for day steps and up. */
export function utcTickLabel(ms: number, step: number): string {
  const iso = new Date(ms).toISOString();
  const date = iso.slice(5, 10);
  if (step >= DAY) return date;
  const time = iso.slice(11, 16);
  return time === '00:00' ? `${date} ${time}` : time;
}

/** An axis label for nano-USD: "$0", then formatUsd ("$0.50", "$1,500"). */
export function usdAxisLabel(nanousd: number, formatUsd: (v: bigint) => string): string {
  return nanousd <= 0 ? '$0' : formatUsd(BigInt(Math.round(nanousd)));
}

/** An axis label for a count: 950, 1.5k, 2M, 3.2B (tick values are round numbers). */
export function compactCount(n: number): string {
  const units: [number, string][] = [
    [1e9, 'B'],
    [1e6, 'M'],
    [1e3, 'k'],
  ];
  for (const [size, suffix] of units) {
    if (Math.abs(n) >= size) return `${+(n / size).toFixed(2)}${suffix}`;
  }
  return String(+n.toFixed(2));
}

/** Shortens a label to `max` characters with an ellipsis. */
export function clip(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, Math.max(1, max - 1))}…`;
}

/** Categorical colours for a light background (Tableau 10), and the grey for "other". */
export const PALETTE = [
  '#4e79a7',
  '#f28e2b',
  '#59a14f',
  '#e15759',
  '#76b7b2',
  '#edc948',
  '#b07aa1',
  '#ff9da7',
  '#9c755f',
] as const;
export const OTHER_COLOR = '#bab0ac';

export const SEVERITY_COLOR: Readonly<Record<string, string>> = {
  critical: '#d62728',
  warning: '#e8891d',
  info: '#4e79a7',
};

export function colorAt(i: number): string {
  return PALETTE[i % PALETTE.length] ?? OTHER_COLOR;
}
