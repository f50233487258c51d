import {
  assertTimeZone,
  localDateString,
  periodBounds,
  periodLabel,
  startOfLocalDay,
} from '../../consumers/detect/periods';
import { isTokenledgerError } from '../../lib/errors';
import type { BudgetPeriod } from '../../schemas/alert/types';

const H = 3_600_000;
const iso = (ms: number): string => new Date(ms).toISOString();
const at = (text: string): number => Date.parse(text);

/** The bounds as ISO strings and the length in hours, for readable expectations. */
function bounds(instant: string, period: BudgetPeriod, zone: string): [string, string, number] {
  const b = periodBounds(at(instant), period, zone);
  return [iso(b.start), iso(b.end), (b.end - b.start) / H];
}

describe('UTC', () => {
  test('day, week (Monday to Monday) and month', () => {
    expect(bounds('2026-11-29T13:45:00Z', 'day', 'UTC')).toEqual([
      '2026-11-29T00:00:00.000Z',
      '2026-11-30T00:00:00.000Z',
      24,
    ]);
    // 2026-11-29 is a Sunday: its week began on Monday the 23rd.
    expect(bounds('2026-11-29T13:45:00Z', 'week', 'UTC')).toEqual([
      '2026-11-23T00:00:00.000Z',
      '2026-11-30T00:00:00.000Z',
      168,
    ]);
    expect(bounds('2026-11-30T00:00:00Z', 'week', 'UTC')[0]).toBe('2026-11-30T00:00:00.000Z');
    expect(bounds('2026-11-29T13:45:00Z', 'month', 'UTC')).toEqual([
      '2026-11-01T00:00:00.000Z',
      '2026-12-01T00:00:00.000Z',
      720,
    ]);
  });

  test('a week across the new year, February in a leap year, December', () => {
    // 2026-01-01 is a Thursday.
    expect(bounds('2026-01-01T08:00:00Z', 'week', 'UTC')).toEqual([
      '2025-12-29T00:00:00.000Z',
      '2026-01-05T00:00:00.000Z',
      168,
    ]);
    expect(bounds('2028-02-29T23:59:59.999Z', 'month', 'UTC')).toEqual([
      '2028-02-01T00:00:00.000Z',
      '2028-03-01T00:00:00.000Z',
      29 * 24,
    ]);
    expect(bounds('2026-12-31T23:59:59.999Z', 'month', 'UTC')[1]).toBe('2027-01-01T00:00:00.000Z');
  });

  test('the start is inclusive and the end exclusive', () => {
    const b = periodBounds(at('2026-11-29T00:00:00Z'), 'day', 'UTC');
    expect(periodBounds(b.start, 'day', 'UTC')).toEqual(b);
    expect(periodBounds(b.end - 1, 'day', 'UTC')).toEqual(b);
    expect(periodBounds(b.end, 'day', 'UTC').start).toBe(b.end);
  });
});

describe('budget period boundaries across a DST change (Europe/Berlin)', () => {
  const zone = 'Europe/Berlin';

  test('spring forward: 2026-03-29 is a 23 h day, its week 167 h, March 743 h', () => {
    expect(bounds('2026-03-29T12:00:00Z', 'day', zone)).toEqual([
      '2026-03-28T23:00:00.000Z', // 00:00 CET (+01:00)
      '2026-03-29T22:00:00.000Z', // 00:00 CEST (+02:00)
      23,
    ]);
    expect(bounds('2026-03-29T12:00:00Z', 'week', zone)).toEqual([
      '2026-03-22T23:00:00.000Z',
      '2026-03-29T22:00:00.000Z',
      167,
    ]);
    expect(bounds('2026-03-15T12:00:00Z', 'month', zone)).toEqual([
      '2026-02-28T23:00:00.000Z',
      '2026-03-31T22:00:00.000Z',
      31 * 24 - 1,
    ]);
  });

  test('fall back: 2026-10-25 is a 25 h day, its week 169 h, October 745 h', () => {
    expect(bounds('2026-10-25T12:00:00Z', 'day', zone)).toEqual([
      '2026-10-24T22:00:00.000Z',
      '2026-10-25T23:00:00.000Z',
      25,
    ]);
    expect(bounds('2026-10-25T12:00:00Z', 'week', zone)).toEqual([
      '2026-10-18T22:00:00.000Z',
      '2026-10-25T23:00:00.000Z',
      169,
    ]);
    expect(bounds('2026-10-01T00:00:00Z', 'month', zone)).toEqual([
      '2026-09-30T22:00:00.000Z',
      '2026-10-31T23:00:00.000Z',
      31 * 24 + 1,
    ]);
  });

  test('instants on either side of local midnight and inside the repeated hour', () => {
    // 23:59:59.999 CET on Saturday the 28th is still the 28th; one ms later is Sunday the 29th.
    expect(bounds('2026-03-28T22:59:59.999Z', 'day', zone)[0]).toBe('2026-03-27T23:00:00.000Z');
    expect(bounds('2026-03-28T23:00:00.000Z', 'day', zone)[0]).toBe('2026-03-28T23:00:00.000Z');
    // 02:30 local happens twice on 2026-10-25 (00:30Z CEST and 01:30Z CET): both are in the same day.
    expect(bounds('2026-10-25T00:30:00Z', 'day', zone)).toEqual(bounds('2026-10-25T01:30:00Z', 'day', zone));
  });

  test('every hour of 2026: the period contains the instant and periods tile the year', () => {
    for (const period of ['day', 'week', 'month'] as const) {
      for (let t = at('2026-01-01T00:00:00Z'); t < at('2027-01-01T00:00:00Z'); t += H) {
        const b = periodBounds(t, period, zone);
        expect(b.start <= t && t < b.end).toBe(true);
        if (t === b.start || t + H >= b.end) {
          expect(periodBounds(b.end, period, zone).start).toBe(b.end);
          expect(periodBounds(b.start - 1, period, zone).end).toBe(b.start);
        }
      }
    }
  });
});

describe('other zones', () => {
  test('America/New_York: 23 h on 2026-03-08, 25 h on 2026-11-01', () => {
    const zone = 'America/New_York';
    expect(bounds('2026-03-08T12:00:00Z', 'day', zone)).toEqual([
      '2026-03-08T05:00:00.000Z',
      '2026-03-09T04:00:00.000Z',
      23,
    ]);
    expect(bounds('2026-11-01T12:00:00Z', 'day', zone)).toEqual([
      '2026-11-01T04:00:00.000Z',
      '2026-11-02T05:00:00.000Z',
      25,
    ]);
    // 03:00Z on 1 December is still 30 November in New York.
    expect(bounds('2026-12-01T03:00:00Z', 'month', zone)).toEqual([
      '2026-11-01T04:00:00.000Z',
      '2026-12-01T05:00:00.000Z',
      30 * 24 + 1,
    ]);
  });

  test('Asia/Kolkata (+05:30) and Asia/Kathmandu (+05:45)', () => {
    expect(bounds('2026-11-15T00:00:00Z', 'month', 'Asia/Kolkata')).toEqual([
      '2026-10-31T18:30:00.000Z',
      '2026-11-30T18:30:00.000Z',
      720,
    ]);
    // 20:00Z on Sunday 29 November is 01:30 on Monday 30 November in Kolkata: a new week.
    expect(bounds('2026-11-29T20:00:00Z', 'week', 'Asia/Kolkata')[0]).toBe('2026-11-29T18:30:00.000Z');
    expect(bounds('2026-11-29T12:00:00Z', 'day', 'Asia/Kathmandu')).toEqual([
      '2026-11-28T18:15:00.000Z',
      '2026-11-29T18:15:00.000Z',
      24,
    ]);
  });

  test('a zone that skips midnight: the day starts at the first local time that exists', () => {
    // Chile moves from 00:00 -04 to 01:00 -03 on 2026-09-06; that day starts at 01:00 local.
    const start = startOfLocalDay(2026, 9, 6, 'America/Santiago');
    expect(iso(start)).toBe('2026-09-06T04:00:00.000Z');
    expect(localDateString(start, 'America/Santiago')).toBe('2026-09-06');
    expect(localDateString(start - 1, 'America/Santiago')).toBe('2026-09-05');
    expect(bounds('2026-09-06T12:00:00Z', 'day', 'America/Santiago')[2]).toBe(23);
  });
});

describe('labels', () => {
  test('a day, a week and a month for people, in the zone', () => {
    const zone = 'Europe/Berlin';
    const day = periodBounds(at('2026-11-29T12:00:00Z'), 'day', zone);
    const week = periodBounds(at('2026-11-29T12:00:00Z'), 'week', zone);
    const month = periodBounds(at('2026-11-29T12:00:00Z'), 'month', zone);
    expect(periodLabel(day.start, 'day', zone)).toBe('2026-11-29');
    expect(periodLabel(week.start, 'week', zone)).toBe('week of 2026-11-23');
    expect(periodLabel(month.start, 'month', zone)).toBe('November 2026');
    // November in Berlin starts at 23:00Z on 31 October: the label is the local month.
    expect(iso(month.start)).toBe('2026-10-31T23:00:00.000Z');
  });
});

describe('assertTimeZone', () => {
  test('returns a known zone, its spelling fixed, an alias kept as written', () => {
    expect(assertTimeZone('Europe/Berlin')).toBe('Europe/Berlin');
    expect(assertTimeZone('europe/berlin')).toBe('Europe/Berlin');
    expect(assertTimeZone('Asia/Kolkata')).toBe('Asia/Kolkata');
    expect(assertTimeZone('UTC')).toBe('UTC');
  });

  test.each(['Mars/Olympus_Mons', '+05:30', '', ' Europe/Berlin'])('refuses %j, naming it', (zone) => {
    let thrown: unknown;
    try {
      assertTimeZone(zone);
    } catch (err) {
      thrown = err;
    }
    expect(isTokenledgerError(thrown, 'CONFIG_INVALID')).toBe(true);
    expect((thrown as Error).message).toContain(JSON.stringify(zone));
  });
});
