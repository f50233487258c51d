/**
 * The emitter's in-memory queue: appends at the tail, takes batches from the head without shifting the array
 * (a head index, compacted now and then), and keeps a running size estimate for the memory bound.
 */
import type { UsageEvent } from '../../schemas/usage-event/types';

/** Rough encoded size, for the memory and batch bounds; exact bytes are known only after encoding. */
export function estimateBytes(e: UsageEvent): number {
  return (
    144 +
    e.team_id.length +
    e.request_model.length +
    (e.user_id?.length ?? 0) +
    (e.response_model?.length ?? 0)
  );
}

export class EventQueue {
  private items: UsageEvent[] = [];
  private head = 0;
  private size = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  get bytes(): number {
    return this.size;
  }

  push(e: UsageEvent): void {
    this.items.push(e);
    this.size += estimateBytes(e);
  }

  /** The oldest events, at most `maxEvents` and about `maxBytes`. */
  take(maxEvents: number, maxBytes: number): UsageEvent[] {
    let end = this.head;
    let bytes = 0;
    while (end < this.items.length && end - this.head < maxEvents && bytes < maxBytes) {
      bytes += estimateBytes(this.items[end] as UsageEvent);
      end++;
    }
    const batch = this.items.slice(this.head, end);
    this.head = end;
    this.size = Math.max(0, this.size - bytes);
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head > 65_536) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return batch;
  }

  /** Everything queued, oldest first, leaving the queue empty. */
  takeAll(): UsageEvent[] {
    return this.take(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  }

  /** Puts events back at the head (a send that failed without a spool to go to). */
  unshift(events: readonly UsageEvent[]): void {
    this.items = [...events, ...this.items.slice(this.head)];
    this.head = 0;
    this.size = this.items.reduce((a, e) => a + estimateBytes(e), 0);
  }
}
