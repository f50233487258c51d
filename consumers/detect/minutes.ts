/**
 * Event-time minute buckets of one partition: each usage event adds to its team's minute and to its
 * team+model's minute, until the watermark closes the minute and the buckets go to the spike detector. Pure.
 */
import { scopeKey } from './spike';
import { MINUTE_MS } from './types';
import type { ScopeMinute, ScopeRef } from './types';

export interface PricedEvent {
  readonly occurred_at: number;
  readonly org_id: string | null;
  readonly team_id: string;
  readonly user_id: string | null;
  readonly model: string;
  /** nano-USD; one event is far below 2^53 */
  readonly cost_nanousd: number;
  readonly tokens: number;
}

function emptyMinute(ref: ScopeRef): ScopeMinute {
  return {
    ref,
    totals: { cost_nanousd: 0, cost_sq: 0, max_call_nanousd: 0, tokens: 0, byUserModel: new Map() },
  };
}

export class MinuteBuckets {
  private readonly minutes = new Map<number, Map<string, ScopeMinute>>();

  /** Adds one event to its team's and its team+model's minute. */
  add(e: PricedEvent): void {
    const c = e.cost_nanousd;
    this.addTo(Math.floor(e.occurred_at / MINUTE_MS), e, c, c * c, c);
  }

  private addTo(
    minute: number,
    e: Omit<PricedEvent, 'occurred_at' | 'cost_nanousd'>,
    cost: number,
    costSq: number,
    maxCall: number,
  ): void {
    let scopes = this.minutes.get(minute);
    if (scopes === undefined) {
      scopes = new Map();
      this.minutes.set(minute, scopes);
    }
    const spender = `${e.user_id ?? ''}\u0000${e.model}`;
    const refs: ScopeRef[] = [
      { scope: 'team', team_id: e.team_id, model: null, org_id: e.org_id },
      { scope: 'team_model', team_id: e.team_id, model: e.model, org_id: e.org_id },
    ];
    for (const ref of refs) {
      const key = scopeKey(ref);
      let sm = scopes.get(key);
      if (sm === undefined) {
        sm = emptyMinute(ref);
        scopes.set(key, sm);
      }
      const t = sm.totals;
      t.cost_nanousd += cost;
      t.cost_sq += costSq;
      t.max_call_nanousd = Math.max(t.max_call_nanousd ?? 0, maxCall);
      t.tokens += e.tokens;
      t.byUserModel.set(spender, (t.byUserModel.get(spender) ?? 0) + cost);
    }
  }

  /** Adds already aggregated spend (the warm-up replays ClickHouse's per-minute sums). */
  addTotals(
    minute: number,
    e: Omit<PricedEvent, 'occurred_at' | 'cost_nanousd'> & {
      readonly cost_nanousd: number;
      readonly cost_sq: number;
      readonly max_call_nanousd: number;
    },
  ): void {
    this.addTo(minute, e, e.cost_nanousd, e.cost_sq, e.max_call_nanousd);
  }

  /** Removes and returns a minute's buckets (empty when nothing was spent in it). */
  take(minute: number): Map<string, ScopeMinute> {
    const scopes = this.minutes.get(minute) ?? new Map<string, ScopeMinute>();
    this.minutes.delete(minute);
    return scopes;
  }

  /** The earliest minute with buckets, if any. */
  earliest(): number | undefined {
    let min: number | undefined;
    for (const m of this.minutes.keys()) if (min === undefined || m < min) min = m;
    return min;
  }
}
