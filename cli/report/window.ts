/**
 * The report's time window, pure: `--since` / `--until` values, and which rollup and time-series step fit a
 * window. Bad values throw CLI_USAGE naming the flag and the value.
 */
import { TokenledgerError } from '../../lib/errors';
import type { ReportWindow } from './types';

export const MINUTE_MS = 60_000;
export const HOUR_MS = 60 * MINUTE_MS;
export const DAY_MS = 24 * HOUR_MS;

/** The minute rollup keeps 35 days (migrations/0001); a window reaching further back reads the hour rollup. */
const MINUTE_ROLLUP_REACH_MS = 34 * DAY_MS;

const UNIT_MS: Readonly<Record<string, number>> = {
  m: MINUTE_MS,
  h: HOUR_MS,
  d: DAY_MS,
  w: 7 * DAY_MS,
};

const DURATION = /^(\d{1,6})([mhdw])$/;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATE_TIME = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?)(Z|[+-]\d{2}:\d{2})?$/;

export const INSTANT_HELP =
  'a duration back from now like 90m, 24h, 7d, 2w, a UTC date like 2026-11-01, a time like 2026-11-01T12:00Z, or now';

/** Midnight UTC of a `YYYY-MM-DD` date that exists (not 2026-02-30), or undefined. */
function utcDate(text: string): number | undefined {
  const m = DATE.exec(text);
  if (m === null) return undefined;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const ms = Date.UTC(y, mo - 1, d);
  const back = new Date(ms);
  return back.getUTCFullYear() === y && back.getUTCMonth() === mo - 1 && back.getUTCDate() === d
    ? ms
    : undefined;
}

/**
 * An instant from a flag value: "now", a duration back from `now` (`90m`, `24h`, `7d`, `2w`), a date
 * (`2026-11-01`, midnight UTC) or a date and time (`2026-11-01T12:00`, UTC unless it carries `Z` or an offset).
 */
export function parseInstant(text: string, flag: string, now: number): number {
  const value = text.trim();
  const fail = (): never => {
    throw new TokenledgerError('CLI_USAGE', `${flag} must be ${INSTANT_HELP}; got ${JSON.stringify(text)}`);
  };
  if (value === 'now') return now;
  const d = DURATION.exec(value);
  if (d !== null) return now - Number(d[1]) * (UNIT_MS[d[2] ?? ''] ?? fail());
  const date = DATE.exec(value);
  if (date !== null) return utcDate(date[0]) ?? fail();
  const dt = DATE_TIME.exec(value);
  if (dt !== null && utcDate(dt[1] ?? '') !== undefined) {
    const ms = Date.parse(`${dt[1] ?? ''}T${dt[2] ?? ''}${dt[3] ?? 'Z'}`);
    if (!Number.isNaN(ms)) return ms;
  }
  return fail();
}

/** The step of the spend-over-time series for a window of this length (about 100 to 360 points). */
export function bucketFor(spanMs: number): number {
  if (spanMs <= 3 * HOUR_MS) return MINUTE_MS;
  if (spanMs <= 12 * HOUR_MS) return 5 * MINUTE_MS;
  if (spanMs <= 2 * DAY_MS) return 15 * MINUTE_MS;
  if (spanMs <= 14 * DAY_MS) return HOUR_MS;
  if (spanMs <= 92 * DAY_MS) return 6 * HOUR_MS;
  return DAY_MS;
}

const floorTo = (ms: number, step: number): number => Math.floor(ms / step) * step;
const ceilTo = (ms: number, step: number): number => Math.ceil(ms / step) * step;

/**
 * Which rollup a window is read from and its series step. Sub-hour steps read usage_minute while the window
 * is within its 35 days, else the step becomes an hour; hour steps read usage_hour; day steps usage_day. The
 * window is widened to whole rows of that rollup, so every total is an exact sum of rollup rows.
 */
export function planWindow(since: number, until: number, now: number): ReportWindow {
  let bucketMs = bucketFor(until - since);
  if (bucketMs < HOUR_MS && since < now - MINUTE_ROLLUP_REACH_MS) bucketMs = HOUR_MS;
  const source = bucketMs < HOUR_MS ? 'usage_minute' : bucketMs < DAY_MS ? 'usage_hour' : 'usage_day';
  const grain = source === 'usage_minute' ? MINUTE_MS : source === 'usage_hour' ? HOUR_MS : DAY_MS;
  return {
    requestedSince: since,
    requestedUntil: until,
    since: floorTo(since, grain),
    until: ceilTo(until, grain),
    source,
    bucketMs,
  };
}

/** The bucket starts of a window's series: epoch-aligned multiples of the step, covering [since, until). */
export function bucketStarts(window: Pick<ReportWindow, 'since' | 'until' | 'bucketMs'>): number[] {
  const out: number[] = [];
  for (let t = floorTo(window.since, window.bucketMs); t < window.until; t += window.bucketMs) out.push(t);
  return out;
}
