/**
 * The demo pipeline: a database and topics of its own, ingest and the detector in this process, the simulated
 * organisation (org.ts) recorded through the real emitter with several hours of event time compressed into about
 * a minute, live progress, the alerts as they arrive on the alerts topic, and a summary with the HTML report.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Consumer, Kafka } from 'kafkajs';
import type { Config } from '../../lib/config';
import { createClickHouse, ensureDatabase, queryRows, quoteIdentifier } from '../../lib/clickhouse';
import { TokenledgerError } from '../../lib/errors';
import { createKafka } from '../../lib/kafka';
import { createLogger } from '../../lib/logger';
import type { Logger } from '../../lib/logger';
import { TOPICS, ensureTopics } from '../../lib/topics';
import { createDetect } from '../../consumers/detect';
import { formatUsd } from '../../consumers/detect/alerts';
import { spendToDate, upsertBudgets } from '../../consumers/detect/budget-store';
import type { Budget } from '../../consumers/detect/budgets';
import { createIngest } from '../../consumers/ingest';
import { loadCatalog, priceEvent, writePriceTable } from '../../consumers/pricing';
import type { Catalog } from '../../consumers/pricing';
import { ensureSchema } from '../../migrations/runner';
import { createEmitter } from '../../producers/emitter';
import { decodeAlert } from '../../schemas/alert/schema';
import type { Alert } from '../../schemas/alert/types';
import { collectReport, renderHtml } from '../report';
import { say, table } from '../output';
import { demoMinutes, demoPlan, pricingOf } from './org';
import type { DemoPlan } from './org';

export interface DemoOptions {
  /** hours of event time to simulate */
  readonly hours: number;
  /** wall-clock seconds to spread them over */
  readonly seconds: number;
  /** the demo's own database (emptied first) */
  readonly database: string;
  /** leave ingest and the detector running until Ctrl-C */
  readonly keep: boolean;
  readonly timeoutMs: number;
  /** where the HTML report goes */
  readonly reportDir: string;
  /** Ctrl-C: stop simulating and waiting, and shut down cleanly */
  readonly signal: AbortSignal;
}

const MARKER = 'demo_run';
/** Event time runs ~360× faster than the wall clock here: a second of consumer lag is minutes of event time. */
const DEMO_LATENESS_MS = 10 * 60_000;

interface Topics {
  readonly usage: string;
  readonly dlq: string;
  readonly alerts: string;
}

/** 'interrupted': Ctrl-C before the end (with --keep: before the pipeline was left running). */
export async function runDemo(base: Config, o: DemoOptions): Promise<'done' | 'interrupted'> {
  const config: Config = { ...base, clickhouse: { ...base.clickhouse, database: o.database } };
  const logger = createLogger({
    level: process.env.LOG_LEVEL === undefined ? 'error' : base.logLevel,
    name: 'demo',
  });
  const run = new Date().toISOString().replace(/\D/g, '').slice(0, 14);
  const kafka = createKafka({ config, logger });
  const topics = await freshTopics(kafka, run);
  await freshDatabase(config, logger);
  const ch = createClickHouse({ config, logger, application: 'tokenledger-demo' });
  const catalog = loadCatalog();
  try {
    // the marker first: a run interrupted during the migrations must not lock the next one out
    await ch.command({ query: `CREATE TABLE ${MARKER} (run String, at DateTime) ENGINE = Log` });
    await ch.insert({
      table: MARKER,
      values: [{ run, at: Math.floor(Date.now() / 1000) }],
      format: 'JSONEachRow',
    });
    await ensureSchema(ch, logger);
    await writePriceTable(ch, catalog);
    say(`▶ database ${o.database} ready (migrated); topics ${topics.usage}, ${topics.alerts}`);

    const plan = demoPlan(Date.now(), o.hours);
    const budget = await setBudget(ch, plan, catalog);
    say(
      `▶ budget: ${plan.budgetTeam} ${formatUsd(budget.amount)} for ${new Date(plan.end).toISOString().slice(0, 7)} (thresholds 50/80/100 %)`,
    );
    return await pipeline(kafka, ch, logger, catalog, topics, plan, budget, o);
  } finally {
    await ch.close();
  }
}

/** Topics of this run; earlier demo runs' topics are deleted. */
async function freshTopics(kafka: Kafka, run: string): Promise<Topics> {
  const topics = {
    usage: `tokenledger.demo.${run}.usage`,
    dlq: `tokenledger.demo.${run}.usage.dlq`,
    alerts: `tokenledger.demo.${run}.alerts`,
  };
  const admin = kafka.admin();
  await admin.connect();
  try {
    const old = (await admin.listTopics()).filter((t) => t.startsWith('tokenledger.demo.'));
    if (old.length > 0) await admin.deleteTopics({ topics: old }).catch(() => undefined);
    await ensureTopics(admin, [
      { ...TOPICS.usage, name: topics.usage, partitions: 6 },
      { ...TOPICS.dlq, name: topics.dlq },
      { ...TOPICS.alerts, name: topics.alerts },
    ]);
  } finally {
    await admin.disconnect();
  }
  return topics;
}

/** Empties the demo database; refuses one that holds tables the demo did not make. */
async function freshDatabase(config: Config, logger: Logger): Promise<void> {
  const db = config.clickhouse.database;
  const admin = createClickHouse({
    config: { ...config, clickhouse: { ...config.clickhouse, database: 'default' } },
    logger,
    application: 'tokenledger-demo',
  });
  try {
    const rs = await admin.query({
      query: 'SELECT name FROM system.tables WHERE database = {db:String}',
      query_params: { db },
      format: 'JSONEachRow',
    });
    const tables = (await rs.json<{ name: string }>()).map((t) => t.name);
    if (tables.length > 0 && !tables.includes(MARKER)) {
      throw new TokenledgerError(
        'CLI_USAGE',
        `database ${db} already holds ${tables.length} table(s) the demo did not create; the demo empties its database first, so choose another with --database`,
      );
    }
    await admin.command({ query: `DROP DATABASE IF EXISTS ${quoteIdentifier(db)}` });
  } finally {
    await admin.close();
  }
  await ensureDatabase(config, logger);
}

/** A monthly budget for the budget team that this run's spend takes past 80 % (and not to 100 %). */
async function setBudget(ch: ClickHouseClient, plan: DemoPlan, catalog: Catalog): Promise<Budget> {
  // the run must fall in one calendar month of the budget's zone: in the first hours of a UTC month, count the
  // month in UTC−12 (Etc/GMT+12), where the whole run is still in the month before
  const now = new Date(plan.end);
  const straddles = plan.start < Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
  const timeZone = straddles ? 'Etc/GMT+12' : 'UTC';
  let planned = 0n;
  for (const { calls } of demoMinutes(plan)) {
    for (const c of calls) {
      if (c.team_id !== plan.budgetTeam) continue;
      planned += priceEvent(catalog, pricingOf(c, plan.end)).cost_nanousd;
    }
  }
  // 85 % of the budget is what the run spends, rounded up to whole dollars
  const dollar = 1_000_000_000n;
  const amount = (((planned * 100n) / 85n + dollar - 1n) / dollar) * dollar;
  const budget: Budget = {
    budget_id: `team:${plan.budgetTeam}:month`,
    scope: 'team',
    scope_id: plan.budgetTeam,
    period: 'month',
    time_zone: timeZone,
    unit: 'usd',
    amount: amount > 0n ? amount : dollar,
    thresholds: [50, 80, 100],
    description: 'demo: a budget this run takes past 80 %',
  };
  await upsertBudgets(ch, [budget]);
  return budget;
}

function clock(ms: number): string {
  return new Date(ms).toISOString().slice(11, 16);
}

async function pipeline(
  kafka: Kafka,
  ch: ClickHouseClient,
  logger: Logger,
  catalog: Catalog,
  topics: Topics,
  plan: DemoPlan,
  budget: Budget,
  o: DemoOptions,
): Promise<'done' | 'interrupted'> {
  const ingest = createIngest({
    kafka,
    clickhouse: ch,
    logger,
    catalog,
    topic: topics.usage,
    groupId: `tokenledger-demo-ingest-${topics.usage}`,
    dlqTopic: topics.dlq,
    batchMaxWaitMs: 200,
  });
  const detect = createDetect({
    kafka,
    clickhouse: ch,
    logger,
    catalog,
    topic: topics.usage,
    groupId: `tokenledger-demo-detect-${topics.usage}`,
    alertsTopic: topics.alerts,
    allowedLatenessMs: DEMO_LATENESS_MS,
    idleAdvanceMs: 5000,
    budgetReloadMs: 600_000,
  });
  // a function, not a property read: TypeScript would narrow it, but Ctrl-C can come during any await
  const aborted = (): boolean => o.signal.aborted;
  const alerts: Alert[] = [];
  const listener = await listenForAlerts(kafka, topics.alerts, (a) => {
    alerts.push(a);
    say(`  ⚑ ${a.severity.padEnd(8)} ${a.kind.padEnd(16)} ${a.message}`);
  });
  await ingest.start();
  await detect.start();
  say(
    `▶ ingest and detect consuming ${topics.usage}; simulating ${o.hours} h of ${plan.teams.length} teams in ~${o.seconds} s`,
  );
  const emitter = createEmitter({ kafka, topic: topics.usage, logger, defaults: { org_id: 'acme' } });
  const t0 = Date.now();
  const minutes = (plan.end - plan.start) / 60_000;
  let i = 0;
  let lastProgress = 0;
  const progress = async (at: number): Promise<void> => {
    const m = emitter.metrics();
    const s = await ingest.metrics.snapshot();
    const ingested = s.written ?? 0;
    say(
      `  event time ${clock(at)} UTC │ sent ${m.sent.toLocaleString('en')} │ in ClickHouse ${ingested.toLocaleString('en')} │ lag ${Math.max(0, m.sent - ingested).toLocaleString('en')} │ alerts ${alerts.length}`,
    );
  };
  try {
    for (const { minute, calls } of demoMinutes(plan)) {
      if (aborted()) break;
      for (const c of calls) emitter.record(c);
      i++;
      // pace: minute i of the plan is due at i/minutes of the wall-clock budget
      const due = t0 + (i / minutes) * o.seconds * 1000;
      const wait = due - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      if (Date.now() - lastProgress >= 5000) {
        lastProgress = Date.now();
        await progress(minute);
      }
    }
    await emitter.close({ timeoutMs: 60_000 });
    const sent = emitter.metrics().sent;
    say(
      `▶ emitter: ${sent.toLocaleString('en')} events acknowledged by Kafka in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
    );
    // caught up: everything in ClickHouse and counted by the detector, and the story's alerts in
    const deadline = Date.now() + o.timeoutMs;
    const story = {
      'the cost spike': (a: Alert) => a.kind === 'cost_spike' && a.team_id === plan.loop.team,
      'its end (spike_resolved)': (a: Alert) => a.kind === 'spike_resolved' && a.team_id === plan.loop.team,
      'the 80 % budget alert': (a: Alert) =>
        a.kind === 'budget_threshold' && a.budget?.threshold_percent === 80,
    };
    const missing = (): string[] =>
      Object.entries(story)
        .filter(([, seen]) => !alerts.some(seen))
        .map(([what]) => what);
    while (!aborted()) {
      const s = await ingest.metrics.snapshot();
      const d = await detect.metrics.snapshot();
      const seen =
        (d.counted ?? 0) +
        (d.late ?? 0) +
        (d.duplicate ?? 0) +
        (d.refused ?? 0) +
        (d.skipped_in_clickhouse_state ?? 0);
      const caughtUp = (s.written ?? 0) + (s.duplicate ?? 0) >= sent && seen >= sent;
      if (caughtUp && missing().length === 0) break;
      if (Date.now() > deadline) {
        say(
          `  (stopped waiting after ${o.timeoutMs} ms: ingested ${s.written ?? 0} and the detector saw ${seen} of ${sent} events; ${missing().length === 0 ? 'every alert of the story arrived' : `not arrived: ${missing().join(', ')}`})`,
        );
        break;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    if (aborted()) {
      say('▶ interrupted: stopping');
      return 'interrupted';
    }
    await progress(plan.end);
    await summary(ch, plan, budget, alerts, o);
    if (o.keep && !aborted()) {
      say(
        `\n▶ --keep: ingest and the detector keep running on ${topics.usage}; press Ctrl-C to stop them (the broker and ClickHouse stay up until \`npx tokenledger infra down\`)`,
      );
      await new Promise<void>((resolve) =>
        o.signal.addEventListener('abort', () => resolve(), { once: true }),
      );
    }
    return 'done';
  } finally {
    await detect.stop();
    await ingest.stop();
    await listener.disconnect();
  }
}

async function listenForAlerts(kafka: Kafka, topic: string, onAlert: (a: Alert) => void): Promise<Consumer> {
  const consumer = kafka.consumer({ groupId: `tokenledger-demo-alerts-${topic}`, maxWaitTimeInMs: 200 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: ({ message }) => {
      if (message.value !== null) onAlert(decodeAlert(message.value).value);
      return Promise.resolve();
    },
  });
  return consumer;
}

async function summary(
  ch: ClickHouseClient,
  plan: DemoPlan,
  budget: Budget,
  alerts: readonly Alert[],
  o: DemoOptions,
): Promise<void> {
  const usd = (v: string | undefined): string => formatUsd(BigInt(v ?? '0'));
  const byTeam = await queryRows<Record<string, string>>(
    ch,
    `SELECT team_id, count() AS requests, sum(input_tokens + output_tokens) AS tokens,
            toString(sum(cost_nanousd)) AS cost
     FROM usage_events GROUP BY team_id ORDER BY sum(cost_nanousd) DESC`,
  );
  say(`\nSpend by team over the ${o.hours} simulated hours (usage_events):`);
  say(
    table([
      ['team', 'requests', 'tokens', 'cost'],
      ...byTeam.map((r) => [r.team_id ?? '', r.requests ?? '', r.tokens ?? '', usd(r.cost)]),
    ]),
  );
  const byModel = await queryRows<Record<string, string>>(
    ch,
    `SELECT provider, model, sum(requests) AS requests, toString(sum(cost_nanousd)) AS cost
     FROM usage_hour GROUP BY provider, model ORDER BY sum(cost_nanousd) DESC LIMIT 8`,
  );
  say('\nTop models (usage_hour rollup):');
  say(
    table([
      ['provider', 'model', 'requests', 'cost'],
      ...byModel.map((r) => [r.provider ?? '', r.model ?? '', r.requests ?? '', usd(r.cost)]),
    ]),
  );
  say(`\nAlerts received on the alerts topic (${alerts.length}):`);
  for (const a of [...alerts].sort((x, y) => x.window_end - y.window_end)) {
    say(`  ${clock(a.window_end)}  ${a.severity.padEnd(8)} ${a.kind.padEnd(16)} ${a.team_id}`);
    say(`         ${a.message}`);
    say(`         why: ${a.rule}`);
  }
  const spend = await spendToDate(ch, budget, plan.end);
  const pct = budget.amount > 0n ? Number((spend.spent * 1000n) / budget.amount) / 10 : 0;
  const forecast = alerts.find((a) => a.kind === 'budget_forecast')?.budget?.forecast_exhausted_at;
  say('\nBudget status:');
  say(
    table([
      ['budget', 'period', 'spent', 'budget', 'used', 'forecast: exhausted at'],
      [
        budget.budget_id,
        new Date(spend.start).toISOString().slice(0, 7),
        formatUsd(spend.spent),
        formatUsd(budget.amount),
        `${pct.toFixed(1)} %`,
        forecast === undefined || forecast === null ? '—' : new Date(forecast).toISOString().slice(0, 16),
      ],
    ]),
  );
  const report = await collectReport(ch, { since: plan.start, until: plan.end + 60_000, by: 'team' });
  fs.mkdirSync(o.reportDir, { recursive: true });
  const file = path.join(
    o.reportDir,
    `demo-report-${new Date().toISOString().replace(/\D/g, '').slice(0, 14)}.html`,
  );
  fs.writeFileSync(file, renderHtml(report));
  say(`\n▶ report: ${file}`);
  const env = o.database === 'tokenledger' ? '' : `CLICKHOUSE_DATABASE=${o.database} `;
  say('\nTry (with --keep, or after `npx tokenledger infra up`):');
  say(
    `  ${env}npx tokenledger sql "SELECT day, team_id, cost_usd FROM spend_by_team_day ORDER BY cost_usd DESC LIMIT 5"`,
  );
  say(
    `  ${env}npx tokenledger sql "SELECT fired_at, kind, severity, message FROM alert_history ORDER BY fired_at"`,
  );
  say(
    `  ${env}npx tokenledger sql "SELECT user_id, model, sum(cost_nanousd)/1e9 AS usd FROM usage_minute WHERE team_id = 'research' GROUP BY user_id, model ORDER BY usd DESC LIMIT 5"`,
  );
}
