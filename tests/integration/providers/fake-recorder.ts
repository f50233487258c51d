/** A UsageRecorder that keeps what it is given, and lets a test await the n-th event. */
import type { UsageEventInput, UsageRecorder } from '../../../producers/emitter/types';

export class FakeRecorder implements UsageRecorder {
  readonly events: UsageEventInput[] = [];
  private waiters: { count: number; resolve: () => void }[] = [];

  record(event: UsageEventInput): void {
    this.events.push(event);
    this.waiters = this.waiters.filter((w) => {
      if (this.events.length < w.count) return true;
      w.resolve();
      return false;
    });
  }

  /** The `count`-th event, once recorded; fails with a message after `timeoutMs`. */
  async nth(count: number, timeoutMs = 10_000): Promise<UsageEventInput> {
    if (this.events.length < count) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => this.waiters.push({ count, resolve })),
        new Promise<never>((_resolve, reject) => {
          timer = setTimeout(() => {
            reject(
              new Error(
                `usage event #${count} was not recorded within ${timeoutMs} ms (got ${this.events.length})`,
              ),
            );
          }, timeoutMs);
        }),
      ]).finally(() => clearTimeout(timer));
    }
    const event = this.events[count - 1];
    if (event === undefined) throw new Error(`no usage event #${count}`);
    return event;
  }
}

/** Fields of an event other than the timings, which are checked for shape only. */
export type EventFields = Omit<UsageEventInput, 'duration_ms' | 'time_to_first_token_ms'>;

/**
 * Asserts every field of `event`: the exact values in `expected`, no other fields, a duration that is an
 * integer ≥ 0, and a time to first token that is an integer ≥ 0 when `ttft` is expected, else null.
 */
export function expectEvent(event: UsageEventInput, expected: EventFields, ttft: 'measured' | 'null'): void {
  const { duration_ms, time_to_first_token_ms, ...rest } = event;
  expect(rest).toStrictEqual(expected);
  expect(Number.isInteger(duration_ms)).toBe(true);
  expect(duration_ms).toBeGreaterThanOrEqual(0);
  if (ttft === 'null') {
    expect(time_to_first_token_ms).toBeNull();
  } else {
    expect(Number.isInteger(time_to_first_token_ms)).toBe(true);
    expect(time_to_first_token_ms).toBeGreaterThanOrEqual(0);
    expect(time_to_first_token_ms).toBeLessThanOrEqual(duration_ms ?? -1);
  }
}
