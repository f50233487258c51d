/**
 * `tokenledger demo`: the pipeline end to end on real components. Brings the infrastructure up (unless
 * KAFKA_BROKERS / CLICKHOUSE_URL point elsewhere), applies the migrations, starts the ingest consumer, and has the
 * emitter record a simulated workload (teams, users, models, cache hits, errors) plus three poison messages; then
 * waits until every event is in ClickHouse and prints what a data engineer would query: spend by team and by model
 * for this run, latency quantiles from the minute rollup, and the dead letters by reason. Stops what it started
 * (unless --keep). The spike and budget detector joins it with issue 5.
 */
import { randomUUID } from 'node:crypto';
import type { Command } from 'commander';
import { loadConfig } from '../../lib/config';
import type { Config } from '../../lib/config';
import { createLogger } from '../../lib/logger';
import { createKafka } from '../../lib/kafka';
import { createClickHouse, ensureDatabase } from '../../lib/clickhouse';
import { TokenledgerError } from '../../lib/errors';
import { TOPICS, ensureTopics } from '../../lib/topics';
import { localInfra } from '../../infra/local';
import { createIngest } from '../../consumers/ingest';
import { loadCatalog, writePriceTable } from '../../consumers/pricing';
import { ensureSchema } from '../../migrations/runner';
import { createEmitter } from '../../producers/emitter';
import { usageEventRegistry } from '../../schemas/usage-event/schema';
import type { UsageEvent } from '../../schemas/usage-event/types';
import { say, table } from '../output';

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description(
      'run the pipeline end to end: emitter → Kafka → ingest → ClickHouse rollups, then query them',
    )
    .option('--events <n>', 'usage events to simulate', '20000')
    .option('--keep', 'leave the broker and the ClickHouse endpoint running afterwards')
    .option('--timeout-ms <ms>', 'give up on the round trip after this long', '60000')
    .action(async (opts: { keep?: boolean; timeoutMs: string; events: string }) => {
      const events = Number(opts.events);
      if (!Number.isInteger(events) || events <= 0 || events > 10_000_000) {
        throw new TokenledgerError(
          'CLI_USAGE',
          `--events must be a whole number between 1 and 10000000, got ${JSON.stringify(opts.events)}`,
        );
      }
      const timeoutMs = Number(opts.timeoutMs);
      if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
        throw new TokenledgerError(
          'CLI_USAGE',
          `--timeout-ms must be a positive integer, got ${JSON.stringify(opts.timeoutMs)}`,
        );
      }
      const config = loadConfig();
      const infra = localInfra(config);
      say('▶ starting infrastructure (Kafka broker + ClickHouse endpoint) ...');
      const t0 = Date.now();
      const up = await infra.up();
      say(table([['service', 'address', 'outcome'], ...up.map((r) => [r.service, r.address, r.outcome])]));
      say(`  ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      try {
        await pipelineDemo(config, events, timeoutMs);
      } finally {
        if (opts.keep !== true) {
          // Stop only what this run started; a broker someone already had running stays up.
          const started = up.filter((r) => r.outcome === 'started').map((r) => r.service);
          for (const s of infra.services.filter((svc) => started.includes(svc.name))) await s.stop();
          if (started.length > 0) say(`▶ stopped ${started.join(' and ')}`);
        } else {
          say('▶ --keep: infrastructure left running (stop it with `tokenledger infra down`)');
        }
      }
    });
}

const TEAMS = ['search', 'support-bot', 'code-review', 'analytics', 'marketing', 'research'];
const MODELS: readonly [string, string, number][] = [
  ['openai', 'gpt-4.1', 3],
  ['openai', 'gpt-4.1-mini', 5],
  ['anthropic', 'claude-sonnet-4-5', 3],
  ['anthropic', 'claude-haiku-4-5', 4],
  ['openai', 'o3', 1],
];

/** A deterministic pseudo-random workload: heavier teams, cache hits, reasoning, some errors and cancels. */
function simulatedCall(i: number, run: string): Parameters<ReturnType<typeof createEmitter>['record']>[0] {
  const r = (n: number): number => {
    let h = Math.imul(i ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(n + 1, 0xc2b2ae35);
    h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
    return ((h ^ (h >>> 15)) >>> 0) % 1000;
  };
  const weights = MODELS.flatMap((m) => Array.from({ length: m[2] }, () => m));
  const [provider, model] = weights[r(1) % weights.length] ?? ['openai', 'gpt-4.1'];
  const team = TEAMS[Math.min(TEAMS.length - 1, Math.floor((r(2) / 1000) ** 2 * TEAMS.length))] ?? 'search';
  const input = 200 + r(3) * 12;
  const output = 20 + r(4) * 2;
  const status = r(5) < 15 ? 'error' : r(5) < 25 ? 'cancelled' : 'ok';
  return {
    team_id: team,
    user_id: `user-${r(6) % 40}`,
    project_id: `${team}-app`,
    environment: 'demo',
    provider,
    request_model: model,
    input_tokens: status === 'error' ? 0 : input,
    cache_read_input_tokens: status !== 'error' && r(7) < 400 ? Math.floor(input * 0.6) : 0,
    output_tokens: status === 'ok' ? output : 0,
    reasoning_output_tokens: model === 'o3' && status === 'ok' ? Math.floor(output / 2) : 0,
    status,
    error_type: status === 'error' ? 'rate_limit' : null,
    streaming: r(8) < 600,
    duration_ms: 300 + r(9) * 8,
    time_to_first_token_ms: 80 + r(10),
    tags: { demo_run: run, feature: r(11) < 500 ? 'chat' : 'summarise' },
  };
}

async function pipelineDemo(config: Config, total: number, timeoutMs: number): Promise<void> {
  // Quiet unless LOG_LEVEL asks for more: the demo's output is the tables below.
  const logger = createLogger({
    level: process.env.LOG_LEVEL === undefined ? 'error' : config.logLevel,
    name: 'demo',
  });
  const run = randomUUID().slice(0, 8);
  const kafka = createKafka({ config, logger });
  const admin = kafka.admin();
  await admin.connect();
  try {
    await ensureTopics(admin, [TOPICS.usage, TOPICS.dlq]);
  } finally {
    await admin.disconnect();
  }
  await ensureDatabase(config, logger);
  const ch = createClickHouse({ config, logger, application: 'tokenledger-demo' });
  const catalog = loadCatalog();
  const migrated = await ensureSchema(ch, logger);
  await writePriceTable(ch, catalog);
  say(
    `▶ schema ready in ${config.clickhouse.database} (${migrated.applied.length} migration(s) applied now)`,
  );

  const ingest = createIngest({
    kafka,
    clickhouse: ch,
    logger,
    catalog,
    topic: TOPICS.usage.name,
    groupId: config.ingest.groupId,
    dlqTopic: TOPICS.dlq.name,
    batchMaxWaitMs: 200,
  });
  await ingest.start();
  say(`▶ ingest consuming ${TOPICS.usage.name} (group ${config.ingest.groupId})`);
  try {
    const emitter = createEmitter({
      kafka,
      topic: TOPICS.usage.name,
      logger,
      defaults: { org_id: 'demo-org' },
    });
    const t0 = Date.now();
    for (let i = 0; i < total; i++) emitter.record(simulatedCall(i, run));
    await emitter.close({ timeoutMs: 60_000 });
    const m = emitter.metrics();
    say(
      `▶ emitter: ${m.recorded} events recorded, ${m.sent} acknowledged by Kafka in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
    );
    if (m.sent + m.spooled < total) {
      throw new TokenledgerError('KAFKA_UNAVAILABLE', `only ${m.sent} of ${total} events reached Kafka`);
    }
    // Poison, as a buggy client would send it: ingest must route it to the dead-letter topic and carry on.
    const registry = usageEventRegistry();
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    const bad: UsageEvent = {
      event_id: randomUUID(),
      occurred_at: Date.now(),
      org_id: 'demo-org',
      team_id: 'search',
      user_id: null,
      project_id: null,
      application: null,
      environment: 'demo',
      provider: 'openai',
      operation: 'chat',
      request_model: 'gpt-4.1',
      response_model: null,
      streaming: false,
      service_tier: null,
      status: 'ok',
      error_type: null,
      duration_ms: null,
      time_to_first_token_ms: null,
      input_tokens: 10,
      cache_read_input_tokens: 0,
      cache_creation_input_tokens: 0,
      output_tokens: 1,
      reasoning_output_tokens: 0,
      client_cost_nanousd: null,
      tags: { demo_run: run },
      sdk: 'tokenledger-demo',
    };
    await producer.send({
      topic: TOPICS.usage.name,
      acks: -1,
      messages: [
        { key: 'search', value: Buffer.from('{"not":"avro"}') },
        {
          key: 'search',
          value: registry.encode({
            ...bad,
            event_id: randomUUID(),
            output_tokens: -7,
            occurred_at: Date.now(),
          }),
        },
        {
          key: 'search',
          value: registry.encode({ ...bad, event_id: randomUUID(), team_id: '' }),
        },
      ],
    });
    await producer.disconnect();
    say('▶ 3 poison messages sent (not Avro, negative tokens, no team)');

    const where = `tags['demo_run'] = {run:String}`;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const rows = await query<{ n: string }>(ch, `SELECT count() AS n FROM usage_events WHERE ${where}`, {
        run,
      });
      const n = Number(rows[0]?.n ?? 0);
      if (n >= total) break;
      if (Date.now() > deadline) {
        throw new TokenledgerError(
          'TIMEOUT',
          `only ${n} of ${total} events reached ClickHouse within ${timeoutMs} ms`,
        );
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    say(
      `▶ all ${total} events in ClickHouse ${((Date.now() - t0) / 1000).toFixed(1)} s after the first record()`,
    );

    const byTeam = await query<Record<string, string>>(
      ch,
      `SELECT team_id, count() AS requests, countIf(status = 'error') AS errors, sum(input_tokens) AS input_tokens,
              sum(cache_read_input_tokens) AS cached, sum(output_tokens) AS output_tokens,
              toString(divide(toDecimal128(sum(cost_nanousd), 9), 1000000000)) AS cost_usd
       FROM usage_events WHERE ${where} GROUP BY team_id ORDER BY sum(cost_nanousd) DESC`,
      { run },
    );
    say('\nSpend by team (this run, from usage_events):');
    say(
      table([
        ['team', 'requests', 'errors', 'input', 'cached', 'output', 'cost USD'],
        ...byTeam.map((r) => [
          r.team_id ?? '',
          r.requests ?? '',
          r.errors ?? '',
          r.input_tokens ?? '',
          r.cached ?? '',
          r.output_tokens ?? '',
          r.cost_usd ?? '',
        ]),
      ]),
    );
    const byModel = await query<Record<string, string>>(
      ch,
      `SELECT provider, model, sum(requests) AS requests, toString(cost_usd_sum) AS cost_usd
       FROM (SELECT provider, model, sum(requests) AS requests, sum(cost_usd) AS cost_usd_sum FROM spend_by_model_day WHERE day = today() GROUP BY provider, model)
       GROUP BY provider, model, cost_usd_sum ORDER BY cost_usd_sum DESC`,
      {},
    );
    say('\nSpend by model today (BI view spend_by_model_day, all runs):');
    say(
      table([
        ['provider', 'model', 'requests', 'cost USD'],
        ...byModel.map((r) => [r.provider ?? '', r.model ?? '', r.requests ?? '', r.cost_usd ?? '']),
      ]),
    );
    const latency = await query<Record<string, string>>(
      ch,
      `SELECT model, arrayMap(x -> round(x), quantilesTDigestMerge(0.5, 0.9, 0.99)(duration_ms_quantiles)) AS q
       FROM usage_minute WHERE minute >= now() - INTERVAL 1 HOUR GROUP BY model ORDER BY model`,
      {},
    );
    say('\nLatency from the minute rollup, last hour (ms, p50 / p90 / p99):');
    say(
      table([
        ['model', 'p50 / p90 / p99'],
        ...latency.map((r) => [String(r.model), (r.q as unknown as number[]).join(' / ')]),
      ]),
    );
    const deadline2 = Date.now() + 30_000;
    let dead: Record<string, string>[] = [];
    while (Date.now() < deadline2) {
      dead = await query<Record<string, string>>(
        ch,
        `SELECT reason, count() AS n FROM usage_dlq WHERE received_at >= fromUnixTimestamp64Milli({t0:Int64}) GROUP BY reason ORDER BY reason`,
        { t0 },
      );
      if (dead.reduce((a, r) => a + Number(r.n), 0) >= 3) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    say('\nDead letters this run (usage_dlq; also on tokenledger.usage.dlq.v1, see `tokenledger dlq tail`):');
    say(table([['reason', 'messages'], ...dead.map((r) => [r.reason ?? '', r.n ?? ''])]));
    say('\nQuery it yourself (run the demo with --keep, or `npx tokenledger infra up`), e.g.');
    say(
      "  curl 'http://127.0.0.1:8123/?database=tokenledger' --data-binary 'SELECT * FROM spend_by_team_day ORDER BY day DESC, cost_usd DESC LIMIT 10'",
    );
  } finally {
    await ingest.stop();
    await ch.close();
  }
}

async function query<T>(
  ch: ReturnType<typeof createClickHouse>,
  sql: string,
  params: Record<string, unknown>,
): Promise<T[]> {
  const rs = await ch.query({ query: sql, query_params: params, format: 'JSONEachRow' });
  return rs.json<T>();
}
