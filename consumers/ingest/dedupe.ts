/**
 * Client repeats (the same `event_id` sent twice, e.g. an emitter replaying its spool after an outage) are
 * counted once. The message key is `team_id`, so repeats land on the same partition; each partition keeps:
 *
 *  - in memory, the event_ids it passed since it was assigned, whose `occurred_at` is within the horizon of the
 *    newest `occurred_at` seen (the watermark);
 *  - `assignedMaxAt`: the newest `occurred_at` already in ClickHouse for this partition when it was assigned.
 *
 * An event is a repeat if its id is in memory, or — when its original could be in ClickHouse but not in memory
 * (occurred_at ≤ assignedMaxAt: written before this process owned the partition; or older than what memory
 * still holds) — if ClickHouse has it. So the check is exact at any age, and memory stays bounded by the
 * horizon. The lookups are batched: one query per insert batch, only for those events.
 */
export class PartitionDedupe {
  private readonly seen = new Map<string, number>();
  private watermark = Number.NEGATIVE_INFINITY;
  /** Every id with occurred_at ≥ this is still in memory (if it was seen). */
  private evictedBelow = Number.NEGATIVE_INFINITY;
  private sinceSweep = 0;

  constructor(
    private readonly horizonMs: number,
    /** Newest occurred_at in ClickHouse for the partition at assignment (−∞ when empty). */
    private readonly assignedMaxAt: number,
  ) {}

  /** True when memory alone cannot tell whether ClickHouse already holds this event. */
  needsLookup(occurredAt: number): boolean {
    return occurredAt <= this.assignedMaxAt || occurredAt < this.evictedBelow;
  }

  has(eventId: string): boolean {
    return this.seen.has(eventId);
  }

  add(eventId: string, occurredAt: number): void {
    this.seen.set(eventId, occurredAt);
    if (occurredAt > this.watermark) this.watermark = occurredAt;
    if (++this.sinceSweep >= 10_000) this.sweep();
  }

  get size(): number {
    return this.seen.size;
  }

  /** Forgets ids older than the horizon (whole-map sweep every 10,000 additions: amortised O(1)). */
  private sweep(): void {
    this.sinceSweep = 0;
    const below = this.watermark - this.horizonMs;
    if (below <= this.evictedBelow) return;
    for (const [id, at] of this.seen) if (at < below) this.seen.delete(id);
    this.evictedBelow = below;
  }
}
