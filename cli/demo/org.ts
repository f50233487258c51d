/**
 * The demo's simulated organisation: 12 teams, 200 people plus a service account, 8 models from 3 providers, over
 * several hours of event time. Pure and seeded: the same plan gives the same calls, so the demo can price one
 * team's calls in advance and set a budget it will cross.
 *
 * The story: every team spends at its own steady pace with noise; one team's agent runner gets stuck in a loop
 * calling the most expensive model with a growing context (a cost spike); one team is on a monthly budget that
 * its spend takes past 80 % (budget alerts).
 */
import { gaussian, mulberry32, poisson } from '../../lib/random';
import type { PricingEvent } from '../../consumers/pricing';
import type { UsageEventInput } from '../../schemas/usage-event/types';

export const MODELS = [
  { provider: 'openai', model: 'gpt-4.1', input: 6000, output: 500 },
  { provider: 'openai', model: 'gpt-4.1-mini', input: 3000, output: 300 },
  { provider: 'openai', model: 'o3', input: 5000, output: 1500 },
  { provider: 'anthropic', model: 'claude-sonnet-4-5', input: 9000, output: 700 },
  { provider: 'anthropic', model: 'claude-haiku-4-5', input: 4000, output: 400 },
  { provider: 'anthropic', model: 'claude-opus-4-1', input: 12000, output: 900 },
  { provider: 'gcp.gemini', model: 'gemini-2.5-pro', input: 8000, output: 800 },
  { provider: 'gcp.gemini', model: 'gemini-2.5-flash', input: 5000, output: 500 },
] as const;

type ModelName = (typeof MODELS)[number]['model'];

export interface TeamPlan {
  readonly id: string;
  /** calls per minute, on average */
  readonly callsPerMinute: number;
  /** model mix: relative weights */
  readonly mix: Partial<Record<ModelName, number>>;
  readonly users: readonly string[];
  readonly projects: readonly string[];
}

export interface DemoPlan {
  /** first simulated minute (ms) */
  readonly start: number;
  /** end (exclusive, ms): the last minute before the run started */
  readonly end: number;
  readonly teams: readonly TeamPlan[];
  /** the runaway agent loop */
  readonly loop: {
    readonly team: string;
    readonly user: string;
    readonly model: ModelName;
    readonly from: number;
    readonly to: number;
    readonly callsPerMinute: number;
  };
  /** the team whose monthly budget the run takes past 80 % */
  readonly budgetTeam: string;
  readonly seed: number;
}

const TEAM_SHAPES: readonly [string, number, Partial<Record<ModelName, number>>, number][] = [
  // id, calls/min, model mix, people
  ['search', 60, { 'claude-sonnet-4-5': 5, 'gpt-4.1-mini': 4, 'gemini-2.5-flash': 2 }, 30],
  ['support-bot', 45, { 'claude-haiku-4-5': 6, 'gpt-4.1': 3, 'claude-sonnet-4-5': 1 }, 12],
  ['code-review', 25, { 'claude-sonnet-4-5': 4, o3: 1, 'gpt-4.1': 2 }, 25],
  ['research', 15, { 'claude-opus-4-1': 1, 'gemini-2.5-pro': 3, o3: 2 }, 20],
  ['analytics', 20, { 'gemini-2.5-flash': 4, 'gpt-4.1-mini': 3 }, 18],
  ['marketing', 10, { 'gpt-4.1': 2, 'gemini-2.5-flash': 2 }, 15],
  ['data-platform', 18, { 'gpt-4.1-mini': 5, 'claude-haiku-4-5': 2 }, 16],
  ['mobile', 12, { 'gemini-2.5-flash': 3, 'gpt-4.1-mini': 2 }, 14],
  ['growth', 8, { 'gpt-4.1': 2, 'claude-haiku-4-5': 2 }, 12],
  ['legal', 3, { 'claude-sonnet-4-5': 1, 'gpt-4.1': 1 }, 8],
  ['finance', 4, { 'gemini-2.5-pro': 1, 'gpt-4.1-mini': 2 }, 10],
  ['security', 6, { 'claude-sonnet-4-5': 2, o3: 1 }, 20],
];

/** The plan for `hours` of event time ending at the minute `endMs` falls in. */
export function demoPlan(endMs: number, hours: number, seed = 20261129): DemoPlan {
  const end = Math.floor(endMs / 60_000) * 60_000;
  const start = end - hours * 3_600_000;
  let n = 0;
  const teams = TEAM_SHAPES.map(([id, callsPerMinute, mix, people]) => ({
    id,
    callsPerMinute,
    mix,
    users: Array.from({ length: people }, () => `user-${String(n++).padStart(3, '0')}`).concat(
      id === 'research' ? ['svc-agent-runner'] : [],
    ),
    projects: [`${id}-app`, `${id}-batch`],
  }));
  // the loop runs for 25 minutes, ending 75 minutes before the end: long enough before the end that the
  // detector (10 minutes of allowed lateness in the demo) has closed its minutes and seen it end
  const loopTo = end - 75 * 60_000;
  return {
    start,
    end,
    teams,
    loop: {
      team: 'research',
      user: 'svc-agent-runner',
      model: 'claude-opus-4-1',
      from: loopTo - 25 * 60_000,
      to: loopTo,
      callsPerMinute: 30,
    },
    budgetTeam: 'support-bot',
    seed,
  };
}

function pick<T>(rand: () => number, weighted: readonly (readonly [T, number])[]): T {
  const total = weighted.reduce((a, [, w]) => a + w, 0);
  let x = rand() * total;
  for (const [v, w] of weighted) {
    x -= w;
    if (x < 0) return v;
  }
  const last = weighted[weighted.length - 1];
  if (last === undefined) throw new RangeError('pick from nothing');
  return last[0];
}

/** A call's token counts around the model's typical size (lognormal, spread ~0.5). */
function tokens(rand: () => number, typical: number): number {
  return Math.max(1, Math.round(typical * Math.exp(0.5 * gaussian(rand) - 0.125)));
}

/**
 * The calls of each simulated minute, in event-time order: `minute` is the minute's start (ms), every call's
 * occurred_at falls inside it. Deterministic for a plan.
 */
export function* demoMinutes(plan: DemoPlan): Generator<{ minute: number; calls: UsageEventInput[] }> {
  const rand = mulberry32(plan.seed);
  const modelOf = new Map<string, (typeof MODELS)[number]>(MODELS.map((m) => [m.model, m]));
  for (let minute = plan.start; minute < plan.end; minute += 60_000) {
    const calls: UsageEventInput[] = [];
    // a gentle daily swing (busier in the afternoon UTC) and noise, the same for everyone
    const hour = new Date(minute).getUTCHours() + new Date(minute).getUTCMinutes() / 60;
    const swing = 1 + 0.25 * Math.sin(((hour - 9) / 24) * 2 * Math.PI);
    for (const team of plan.teams) {
      const count = poisson(rand, team.callsPerMinute * swing);
      const mix = Object.entries(team.mix).map(([m, w]) => [m, w] as const);
      for (let i = 0; i < count; i++) {
        const model = modelOf.get(pick(rand, mix)) ?? MODELS[0];
        const input = tokens(rand, model.input);
        const status = rand() < 0.01 ? 'error' : 'ok';
        calls.push({
          occurred_at: minute + Math.floor(rand() * 60_000),
          team_id: team.id,
          user_id: team.users[Math.floor(rand() * team.users.length)] ?? null,
          project_id: team.projects[rand() < 0.8 ? 0 : 1] ?? null,
          application: `${team.id}-service`,
          environment: 'production',
          provider: model.provider,
          operation: 'chat',
          request_model: model.model,
          streaming: rand() < 0.6,
          status,
          error_type: status === 'error' ? 'rate_limit_error' : null,
          input_tokens: status === 'error' ? 0 : input,
          cache_read_input_tokens: status === 'error' || rand() < 0.6 ? 0 : Math.floor(input * 0.5),
          output_tokens: status === 'error' ? 0 : tokens(rand, model.output),
          duration_ms: 300 + Math.floor(rand() * 6000),
          time_to_first_token_ms: 80 + Math.floor(rand() * 900),
          tags: { feature: rand() < 0.5 ? 'chat' : 'summarise' },
        });
      }
    }
    const { loop } = plan;
    if (minute >= loop.from && minute < loop.to) {
      // the stuck agent: the same expensive model, the context growing every iteration
      const iteration = (minute - loop.from) / 60_000;
      const model = modelOf.get(loop.model) ?? MODELS[0];
      for (let i = 0; i < loop.callsPerMinute; i++) {
        calls.push({
          occurred_at: minute + Math.floor((i * 60_000) / loop.callsPerMinute),
          team_id: loop.team,
          user_id: loop.user,
          project_id: 'research-agents',
          application: 'agent-runner',
          environment: 'production',
          provider: model.provider,
          operation: 'chat',
          request_model: model.model,
          streaming: false,
          status: 'ok',
          input_tokens: 20_000 + iteration * 1500,
          output_tokens: 1200,
          duration_ms: 9000,
          tags: { feature: 'agent-loop', ticket: 'RES-1432' },
        });
      }
    }
    calls.sort((a, b) => (a.occurred_at ?? 0) - (b.occurred_at ?? 0));
    yield { minute, calls };
  }
}

/** What pricing needs of a simulated call (the catalog entry in force at its occurred_at). */
export function pricingOf(c: UsageEventInput, at: number): PricingEvent {
  return {
    provider: c.provider,
    request_model: c.request_model,
    response_model: null,
    occurred_at: c.occurred_at ?? at,
    input_tokens: c.input_tokens ?? 0,
    cache_read_input_tokens: c.cache_read_input_tokens ?? 0,
    cache_creation_input_tokens: c.cache_creation_input_tokens ?? 0,
    output_tokens: c.output_tokens ?? 0,
    reasoning_output_tokens: c.reasoning_output_tokens ?? 0,
  };
}
