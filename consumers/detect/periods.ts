/**
 * Calendar periods of budgets (a day, a Monday-to-Sunday week, a month) in an IANA time zone, as UTC instants.
 * Pure: only Intl (the ICU time-zone data Node ships), no I/O and no dependency.
 *
 * A period starts at local midnight of its first day and ends at local midnight of the day after its last, so
 * its length follows the zone's rules: a Europe/Berlin day in late March is 23 h, in late October 25 h. Where a
 * zone skips local midnight (America/Santiago, America/Havana switch at 00:00), the day starts at the first
 * local instant of that date (01:00).
 */
import { TokenledgerError } from '../../lib/errors';
import type { BudgetPeriod } from '../../schemas/alert/types';

export interface PeriodBounds {
  /** ms since the epoch (UTC), inclusive */
  readonly start: number;
  /** ms since the epoch (UTC), exclusive */
  readonly end: number;
}

/** A local calendar date (month 1-12). */
export interface LocalDate {
  readonly year: number;
  readonly month: number;
  readonly day: number;
}

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (f === undefined) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/**
 * The zone's name as stored (`canonicalTimeZone`) when Intl knows `timeZone` as an IANA zone;
 * throws CONFIG_INVALID naming the value otherwise. Fixed offsets ("+05:30") are refused: a budget follows a
 * place's rules, summer time included.
 */
export function assertTimeZone(timeZone: string): string {
  const zone = canonicalTimeZone(timeZone);
  if (zone === undefined) {
    throw new TokenledgerError(
      'CONFIG_INVALID',
      `time zone ${JSON.stringify(timeZone)} is not an IANA time zone name (like "UTC", "Europe/Berlin", "America/New_York")`,
      { context: { time_zone: timeZone } },
    );
  }
  return zone;
}

/**
 * The name to store for an IANA zone Intl knows, or undefined. The spelling is fixed ("europe/berlin" →
 * "Europe/Berlin") but a valid alias is kept as given: ICU resolves "Asia/Kolkata" to the older
 * "Asia/Calcutta", which is not what a user wrote or expects to read back.
 */
export function canonicalTimeZone(timeZone: string): string | undefined {
  if (timeZone.trim() === '' || timeZone !== timeZone.trim() || /^[+-]/.test(timeZone)) return undefined;
  try {
    const resolved = new Intl.DateTimeFormat('en-US', { timeZone }).resolvedOptions().timeZone;
    return resolved.toLowerCase() === timeZone.toLowerCase() ? resolved : timeZone;
  } catch {
    return undefined;
  }
}

interface LocalParts extends LocalDate {
  readonly hour: number;
  readonly minute: number;
  readonly second: number;
}

function localParts(atMs: number, timeZone: string): LocalParts {
  const out = { year: 0, month: 0, day: 0, hour: 0, minute: 0, second: 0 };
  for (const p of formatter(timeZone).formatToParts(atMs)) {
    if (p.type in out) out[p.type as keyof typeof out] = Number(p.value);
  }
  return out;
}

/** The local calendar date of an instant in the zone. */
export function localDate(atMs: number, timeZone: string): LocalDate {
  const { year, month, day } = localParts(atMs, timeZone);
  return { year, month, day };
}

/** "YYYY-MM-DD", the local date of an instant in the zone. */
export function localDateString(atMs: number, timeZone: string): string {
  return dateString(localDate(atMs, timeZone));
}

/** "YYYY-MM-DD hh:mm", the local date and time of an instant in the zone. */
export function localTimeString(atMs: number, timeZone: string): string {
  const p = localParts(atMs, timeZone);
  return `${dateString(p)} ${String(p.hour).padStart(2, '0')}:${String(p.minute).padStart(2, '0')}`;
}

function dateString(d: LocalDate): string {
  return `${String(d.year).padStart(4, '0')}-${String(d.month).padStart(2, '0')}-${String(d.day).padStart(2, '0')}`;
}

/** Days since 1970-01-01 of a (normalised) calendar date: comparable, and month/day overflow rolls over. */
function dayNumber(year: number, month: number, day: number): number {
  return Math.floor(Date.UTC(year, month - 1, day) / DAY_MS);
}

/** Local wall-clock time minus UTC at an instant, in ms (whole seconds). */
function offsetAt(atMs: number, timeZone: string): number {
  const p = localParts(atMs, timeZone);
  const wall = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);
  return wall - (atMs - (((atMs % 1000) + 1000) % 1000));
}

/**
 * The first instant whose local date in the zone is (year, month, day), after normalising the date
 * (day 32 = the 1st of the next month). Usually local 00:00; after a transition that skips midnight, the first
 * local time that exists on that date.
 */
export function startOfLocalDay(year: number, month: number, day: number, timeZone: string): number {
  const target = dayNumber(year, month, day);
  const wallMidnight = target * DAY_MS;
  // Two rounds of "wall time minus the offset in force there": exact unless a transition is near.
  let t = wallMidnight - offsetAt(wallMidnight, timeZone);
  t = wallMidnight - offsetAt(t, timeZone);
  const at = localParts(t, timeZone);
  const before = localParts(t - 1, timeZone);
  if (
    dayNumber(at.year, at.month, at.day) === target &&
    at.hour === 0 &&
    at.minute === 0 &&
    at.second === 0 &&
    dayNumber(before.year, before.month, before.day) < target
  ) {
    return t;
  }
  // A transition at or near midnight: the smallest instant whose local date is the target. Local dates only
  // move forward with time (offsets change by at most a few hours), so a binary search over ±16 h finds it.
  let lo = wallMidnight - 16 * HOUR_MS; // local date before the target (offsets are at most +14 h)
  let hi = wallMidnight + 16 * HOUR_MS; // local date at or after the target (offsets are at least -12 h)
  while (hi - lo > 1) {
    const mid = lo + Math.floor((hi - lo) / 2);
    const p = localParts(mid, timeZone);
    if (dayNumber(p.year, p.month, p.day) >= target) hi = mid;
    else lo = mid;
  }
  return hi;
}

/**
 * The calendar period containing the instant, in the zone, as UTC instants: a day, a week (Monday 00:00 to the
 * next Monday 00:00, local) or a month. The zone must be valid (`assertTimeZone`).
 */
export function periodBounds(atMs: number, period: BudgetPeriod, timeZone: string): PeriodBounds {
  const d = localDate(atMs, timeZone);
  let first: LocalDate;
  let next: LocalDate;
  switch (period) {
    case 'day':
      first = d;
      next = { ...d, day: d.day + 1 };
      break;
    case 'week': {
      const sinceMonday = (new Date(Date.UTC(d.year, d.month - 1, d.day)).getUTCDay() + 6) % 7;
      first = { ...d, day: d.day - sinceMonday };
      next = { ...d, day: d.day - sinceMonday + 7 };
      break;
    }
    case 'month':
      first = { ...d, day: 1 };
      next = { year: d.year, month: d.month + 1, day: 1 };
      break;
  }
  return {
    start: startOfLocalDay(first.year, first.month, first.day, timeZone),
    end: startOfLocalDay(next.year, next.month, next.day, timeZone),
  };
}

const MONTHS = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
] as const;

/** The period for people: "2026-11-29", "week of 2026-11-23", "November 2026". `start` is the period's start. */
export function periodLabel(start: number, period: BudgetPeriod, timeZone: string): string {
  // The middle of the period's first day: immune to a start that is not exactly local midnight.
  const d = localDate(start + 12 * HOUR_MS, timeZone);
  switch (period) {
    case 'day':
      return dateString(d);
    case 'week':
      return `week of ${dateString(d)}`;
    case 'month':
      return `${MONTHS[d.month - 1] ?? String(d.month)} ${d.year}`;
  }
}

/** "daily", "weekly", "monthly". */
export function periodAdjective(period: BudgetPeriod): string {
  return period === 'day' ? 'daily' : period === 'week' ? 'weekly' : 'monthly';
}
