/** What the in-memory detector sees of one simulated demo call (tests that run the detector on the demo plan). */
import type { PricedEvent } from '../../consumers/detect/minutes';
import type { UsageEventInput } from '../../schemas/usage-event/types';

export function demoBucketEvent(c: UsageEventInput, at: number, costNanousd: bigint): PricedEvent {
  return {
    occurred_at: at,
    org_id: 'acme',
    team_id: c.team_id ?? '',
    user_id: c.user_id ?? null,
    model: c.request_model,
    cost_nanousd: Number(costNanousd),
    tokens: (c.input_tokens ?? 0) + (c.output_tokens ?? 0),
  };
}
