/**
 * Client repeats (the same `event_id` sent twice, e.g. an emitter replaying its spool after an outage) are
 * counted once. The message key is `team_id`, so repeats land on the same partition; each partition keeps:
 *
 *  - in memory, the event_ids it passed since it was assigned, for about the horizon of `occurred_at` behind the
 *    newest one seen (the watermark), in two generations of a compact hash set (~24 bytes per id, not a Map of
 *    strings: 600,000 ids in a Map<string, number> take ~330 MB of heap, in an IdSet ~15 MB);
 *  - `assignedMaxAt`: the newest `occurred_at` already in ClickHouse for this partition when it was assigned.
 *
 * An event is a repeat if its id is in memory, or — when its original could be in ClickHouse but not in memory
 * (occurred_at ≤ assignedMaxAt: written before this process owned the partition; or at most the watermark at
 * which the generation that held it was dropped) — if ClickHouse has it. So the check is exact at any age, and
 * memory stays bounded by the horizon. The lookups are batched: one query per insert batch, only for those events.
 */

import { hexValue } from './hex';

const EMPTY = 0;
/**
 * Fill at which the table grows. Linear probing at 70 % costs ~2 probes for a member and ~6 for a miss (each a
 * 4-word compare); the table is sized to the count it is expected to hold, not to a power of two, so a
 * generation sized from the previous one ends near this fill: ~24 bytes per id (at most half full, as before,
 * was 34–68 bytes per id, ~100 MB of a drain's RSS with 6 partitions and a 10-minute horizon).
 */
const MAX_FILL = 0.7;

/** A set of UUIDs as 4 × uint32 in an open-addressing table (linear probing). */
export class IdSet {
  private slots: Uint32Array;
  private used: Uint8Array;
  private cap: number;
  private limit: number;
  private count = 0;

  /** `expected`: how many ids the set should hold before it first grows. */
  constructor(expected = 1024) {
    this.cap = Math.max(64, Math.ceil(expected / MAX_FILL) + 1);
    this.limit = Math.floor(this.cap * MAX_FILL);
    this.slots = new Uint32Array(this.cap * 4);
    this.used = new Uint8Array(this.cap);
  }

  get size(): number {
    return this.count;
  }

  /** Memory held by the table. */
  get bytes(): number {
    return this.slots.byteLength + this.used.byteLength;
  }

  /** Adds a UUID (canonical text); false when it was there already. */
  add(id: string): boolean {
    const w = words(id);
    // one probe sequence: the first empty slot on it is where the id goes when it is not a member
    let i = this.home(w);
    for (; this.used[i] !== EMPTY; i = i + 1 === this.cap ? 0 : i + 1) if (this.at(i, w)) return false;
    if (this.count + 1 > this.limit) {
      this.grow();
      this.insert(w);
    } else {
      this.used[i] = 1;
      this.slots.set(w, i * 4);
    }
    this.count++;
    return true;
  }

  has(id: string): boolean {
    return this.hasWords(words(id));
  }

  /** `has` for an id already read with `words`. */
  hasWords(w: readonly [number, number, number, number]): boolean {
    for (let i = this.home(w); this.used[i] !== EMPTY; i = i + 1 === this.cap ? 0 : i + 1)
      if (this.at(i, w)) return true;
    return false;
  }

  /** The first slot of an id's probe sequence: the hash scaled to the table (any size, not a power of two). */
  private home(w: readonly [number, number, number, number]): number {
    return Math.floor((hash(w) / 4294967296) * this.cap);
  }

  private at(i: number, w: readonly [number, number, number, number]): boolean {
    const o = i * 4;
    return (
      this.slots[o] === w[0] &&
      this.slots[o + 1] === w[1] &&
      this.slots[o + 2] === w[2] &&
      this.slots[o + 3] === w[3]
    );
  }

  private insert(w: readonly [number, number, number, number]): void {
    let i = this.home(w);
    while (this.used[i] !== EMPTY) i = i + 1 === this.cap ? 0 : i + 1;
    this.used[i] = 1;
    this.slots.set(w, i * 4);
  }

  /** 1.5× (not 2×): a set that outgrows its estimate does not jump to a mostly empty table. */
  private grow(): void {
    const oldSlots = this.slots;
    const oldUsed = this.used;
    const oldCap = this.cap;
    this.cap = Math.ceil(oldCap * 1.5);
    this.limit = Math.floor(this.cap * MAX_FILL);
    this.slots = new Uint32Array(this.cap * 4);
    this.used = new Uint8Array(this.cap);
    for (let i = 0; i < oldCap; i++) {
      if (oldUsed[i] === EMPTY) continue;
      const o = i * 4;
      this.insert([oldSlots[o] ?? 0, oldSlots[o + 1] ?? 0, oldSlots[o + 2] ?? 0, oldSlots[o + 3] ?? 0]);
    }
  }
}

/** The 128 bits of a canonical UUID (8-4-4-4-12 hex; validation checked the format), read without slicing. */
function words(id: string): [number, number, number, number] {
  return [hex(id, 0, 4), hex(id, 9, 14), hex(id, 19, 24), hex(id, 28, 32)];
}

/** Four hex digits at `a` then four at `b`, as one uint32. */
function hex(id: string, a: number, b: number): number {
  let v = 0;
  for (let i = 0; i < 4; i++) v = (v << 4) | hexValue(id.charCodeAt(a + i));
  for (let i = 0; i < 4; i++) v = (v << 4) | hexValue(id.charCodeAt(b + i));
  return v >>> 0;
}

/** Mixes all four words (UUIDv7's first 48 bits are a timestamp: the random bits are in words 1-3). */
function hash(w: readonly [number, number, number, number]): number {
  let h = Math.imul(w[3] ^ Math.imul(w[2], 0x9e3779b1), 0x85ebca6b);
  h ^= Math.imul(w[1] ^ (h >>> 15), 0xc2b2ae35);
  h ^= w[0];
  return (h ^ (h >>> 13)) >>> 0;
}

export class PartitionDedupe {
  private current = new IdSet();
  private previous = new IdSet();
  private watermark = Number.NEGATIVE_INFINITY;
  /** The watermark when `current` was opened, and when `previous` was closed. */
  private currentOpenedAt = Number.NEGATIVE_INFINITY;
  private previousClosedAt = Number.NEGATIVE_INFINITY;
  /** Ids with occurred_at at most this may have been dropped from memory. */
  private droppedUpTo = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly horizonMs: number,
    /** Newest occurred_at in ClickHouse for the partition at assignment (−∞ when empty). */
    private readonly assignedMaxAt: number,
  ) {}

  /** True when memory alone cannot tell whether ClickHouse already holds this event. */
  needsLookup(occurredAt: number): boolean {
    return occurredAt <= this.assignedMaxAt || occurredAt <= this.droppedUpTo;
  }

  has(eventId: string): boolean {
    const w = words(eventId);
    return this.current.hasWords(w) || (this.previous.size > 0 && this.previous.hasWords(w));
  }

  add(eventId: string, occurredAt: number): void {
    if (occurredAt > this.watermark) {
      this.watermark = occurredAt;
      if (this.currentOpenedAt === Number.NEGATIVE_INFINITY) this.currentOpenedAt = occurredAt;
      else if (occurredAt - this.currentOpenedAt >= this.horizonMs / 2) this.rotate();
    }
    this.current.add(eventId);
  }

  get size(): number {
    return this.current.size + this.previous.size;
  }

  /** Memory held by both generations. */
  get bytes(): number {
    return this.current.bytes + this.previous.bytes;
  }

  /**
   * Drops the older generation. Every id in it was added while the watermark was at most `previousClosedAt`,
   * and an added id's occurred_at is at most the watermark after adding it: so ids newer than that are all
   * still in memory.
   */
  private rotate(): void {
    if (this.previous.size > 0) this.droppedUpTo = Math.max(this.droppedUpTo, this.previousClosedAt);
    this.previous = this.current;
    this.previousClosedAt = this.watermark;
    this.current = new IdSet(Math.max(1024, this.previous.size));
    this.currentOpenedAt = this.watermark;
  }
}
