/**
 * `tokenledger alerts tail`: the newest alerts of the alerts topic, decoded, for people (one line each) or
 * scripts (`--json`, one object per line). Reads with a throwaway consumer group and commits nothing.
 * `tokenledger alerts relay`: posts every alert to a Slack-compatible incoming webhook until stopped
 * (consumers/alerts/relay.ts: retries with backoff, at least once, deduplicated by alert_id).
 */
import { Option } from 'commander';
import type { Command } from 'commander';
import { loadConfig } from '../../lib/config';
import { TokenledgerError } from '../../lib/errors';
import { createKafka } from '../../lib/kafka';
import { createLogger } from '../../lib/logger';
import { TOPICS, ensureTopics } from '../../lib/topics';
import { createAlertRelay, DEFAULT_RELAY_GROUP, webhookOrigin } from '../../consumers/alerts';
import type { RelayCounts } from '../../consumers/alerts';
import { decodeAlert } from '../../schemas/alert/schema';
import type { Alert } from '../../schemas/alert/types';
import { EXIT, say } from '../output';

interface TailOptions {
  count: string;
  follow?: boolean;
  json?: boolean;
  team: string[];
  topic: string;
}

interface RelayOptions {
  webhook: string;
  team: string[];
  group: string;
  topic: string;
  timeoutMs: string;
}

/** `--team a --team b,c` → ['a', 'b', 'c']. */
function collectTeams(value: string, previous: string[]): string[] {
  return [
    ...previous,
    ...value
      .split(',')
      .map((t) => t.trim())
      .filter((t) => t.length > 0),
  ];
}

function teamOption(): Option {
  return new Option('--team <team>', 'only alerts of this team (repeat or comma-separate for several)')
    .argParser(collectTeams)
    .default([], 'all teams');
}

export function registerAlerts(program: Command): void {
  const alerts = program
    .command('alerts')
    .description('cost-spike and budget alerts: show them, or relay them to a Slack-compatible webhook');

  alerts
    .command('tail')
    .description('print the newest alerts of the alerts topic (time, severity, kind, team, message)')
    .option('-n, --count <n>', 'how many of the newest messages to read per partition', '20')
    .option('-f, --follow', 'keep printing new alerts until interrupted (Ctrl-C)')
    .option('--json', 'one JSON object per line: the alert, money as decimal strings, times as ISO 8601')
    .addOption(teamOption())
    .option('--topic <topic>', 'the alerts topic', TOPICS.alerts.name)
    .addHelpText(
      'after',
      `
Examples:
  tokenledger alerts tail                         the last 20 alerts per partition, oldest first
  tokenledger alerts tail --team team-search -f   one team's alerts, then new ones as they come
  tokenledger alerts tail --json -n 100 | jq -r 'select(.severity == "critical") | .message'

--count applies before --team: the newest N messages of each partition are read, then filtered.
Money in --json is nano-USD as decimal strings (1 USD = 1e9; values can pass 2^53). Nothing is committed:
tail does not move any consumer group's position.`,
    )
    .action(async (opts: TailOptions) => {
      process.exitCode = await tail(opts);
    });

  alerts
    .command('relay')
    .description('post every alert to a Slack-compatible incoming webhook, until stopped')
    .requiredOption('--webhook <url>', 'incoming-webhook URL (http or https)')
    .addOption(teamOption())
    .option(
      '--group <group>',
      'consumer group; relays with the same group share the work',
      DEFAULT_RELAY_GROUP,
    )
    .option('--topic <topic>', 'the alerts topic', TOPICS.alerts.name)
    .option('--timeout-ms <ms>', 'timeout of one POST to the webhook', '10000')
    .addHelpText(
      'after',
      `
Examples:
  tokenledger alerts relay --webhook https://hooks.slack.com/services/T000/B000/XXXX
  tokenledger alerts relay --webhook https://chat.example.com/hooks/abc --team team-search --group search-relay

Delivery: at least once. A POST answered 5xx, 408 or 429, a timeout or a network error is retried with
exponential backoff (0.5 s doubling to 30 s, with jitter; Retry-After honoured) for as long as the relay runs;
any other 4xx is logged with the alert_id and skipped. The offset is committed only after that. The same
alert_id is posted once (a bounded memory of 100,000 delivered ids, warmed on start). Each group gets every
alert: use one group per destination. SIGTERM/SIGINT: finish the POST in flight, commit, exit 0.
Kafka settings come from the environment (tokenledger config check --list). Only the webhook's origin is logged.`,
    )
    .action(async (opts: RelayOptions) => {
      process.exitCode = await relay(opts);
    });
}

function parseCount(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) {
    throw new TokenledgerError(
      'CLI_USAGE',
      `--count must be a whole number ≥ 1, got ${JSON.stringify(text)}`,
    );
  }
  return n;
}

/** The webhook URL, if it is an absolute http(s) URL. */
export function parseWebhook(text: string): string {
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    url = undefined;
  }
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') {
    throw new TokenledgerError(
      'CLI_USAGE',
      `--webhook must be an http:// or https:// URL, got ${JSON.stringify(text)}`,
    );
  }
  return url.toString();
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** The alert as plain JSON: bigint money and counts as decimal strings, instants as ISO 8601 (UTC). */
export function alertJson(a: Alert): Record<string, unknown> {
  const b = a.budget;
  return {
    ...a,
    fired_at: iso(a.fired_at),
    window_start: iso(a.window_start),
    window_end: iso(a.window_end),
    observed_cost_nanousd: a.observed_cost_nanousd.toString(),
    expected_cost_nanousd: a.expected_cost_nanousd.toString(),
    observed_tokens: a.observed_tokens.toString(),
    expected_tokens: a.expected_tokens.toString(),
    budget:
      b === null
        ? null
        : {
            ...b,
            period_start: iso(b.period_start),
            period_end: iso(b.period_end),
            limit: b.limit.toString(),
            spent: b.spent.toString(),
            forecast_exhausted_at: b.forecast_exhausted_at === null ? null : iso(b.forecast_exhausted_at),
          },
    top_contributors: a.top_contributors.map((c) => ({ ...c, cost_nanousd: c.cost_nanousd.toString() })),
  };
}

function alertLine(a: Alert): string {
  return `${iso(a.fired_at)}  ${a.severity.padEnd(8)} ${a.kind.padEnd(16)} ${a.team_id}  ${a.message}`;
}

async function tail(opts: TailOptions): Promise<number> {
  const n = parseCount(opts.count);
  const teams = opts.team.length === 0 ? undefined : new Set(opts.team);
  const config = loadConfig(process.env, ['kafka', 'local', 'log']);
  const logger = createLogger({ level: 'warn' });
  const kafka = createKafka({ config, logger });
  const topic = opts.topic;
  const admin = kafka.admin();
  await admin.connect();
  let offsets: { partition: number; low: string; high: string }[];
  try {
    if (!(await admin.listTopics()).includes(topic)) {
      process.stderr.write(`no alerts: topic ${topic} does not exist yet\n`);
      return EXIT.ok;
    }
    offsets = await admin.fetchTopicOffsets(topic);
  } finally {
    await admin.disconnect();
  }
  // Per partition: the first offset to show and the last one of the backlog (then the backlog is complete).
  const start = new Map<number, number>();
  const pending = new Map<number, number>();
  for (const o of offsets) {
    const high = Number(o.high);
    const from = Math.max(Number(o.low), high - n);
    start.set(o.partition, from);
    if (high > from) pending.set(o.partition, high - 1);
  }
  const follow = opts.follow === true;
  if (pending.size === 0 && !follow) {
    process.stderr.write(`no alerts in ${topic}\n`);
    return EXIT.ok;
  }
  const show = (a: Alert): void => say(opts.json === true ? JSON.stringify(alertJson(a)) : alertLine(a));
  // The backlog is printed sorted by fired_at once complete (partitions interleave); later alerts as they come.
  const backlog: Alert[] = [];
  let printed = 0;
  let undecodable = 0;
  const flushBacklog = (): void => {
    backlog.sort((x, y) => x.fired_at - y.fired_at || x.alert_id.localeCompare(y.alert_id));
    for (const a of backlog.splice(0)) show(a);
  };
  if (pending.size === 0) flushBacklog();

  const consumer = kafka.consumer({ groupId: `tokenledger-alerts-tail-${process.pid}-${Date.now()}` });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let done: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (done = resolve));
  process.once('SIGINT', () => done());
  process.once('SIGTERM', () => done());
  await consumer.run({
    autoCommit: false,
    eachMessage: ({ partition, message }) => {
      const offset = Number(message.offset);
      if (offset < (start.get(partition) ?? 0)) return Promise.resolve();
      const inBacklog = pending.has(partition);
      try {
        if (message.value === null) throw new Error('empty message (no value)');
        const a = decodeAlert(message.value).value;
        if (teams === undefined || teams.has(a.team_id)) {
          printed++;
          if (inBacklog) backlog.push(a);
          else show(a);
        }
      } catch (err) {
        undecodable++;
        process.stderr.write(
          `tokenledger: ${topic}[${partition}]@${message.offset} is not an alert: ${err instanceof Error ? err.message : String(err)}\n`,
        );
      }
      const last = pending.get(partition);
      if (last !== undefined && offset >= last) {
        pending.delete(partition);
        if (pending.size === 0) {
          flushBacklog();
          if (!follow) done();
        }
      }
      return Promise.resolve();
    },
  });
  for (const [partition, offset] of start) consumer.seek({ topic, partition, offset: String(offset) });
  await finished;
  flushBacklog();
  await consumer.disconnect();
  if (opts.json !== true) {
    process.stderr.write(
      `${printed} alert(s) shown from ${topic}${undecodable > 0 ? `, ${undecodable} undecodable message(s) skipped` : ''}\n`,
    );
  }
  return EXIT.ok;
}

function parseTimeout(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 100 || n > 300_000) {
    throw new TokenledgerError(
      'CLI_USAGE',
      `--timeout-ms must be a whole number of ms from 100 to 300000, got ${JSON.stringify(text)}`,
    );
  }
  return n;
}

async function relay(opts: RelayOptions): Promise<number> {
  const webhookUrl = parseWebhook(opts.webhook);
  const timeoutMs = parseTimeout(opts.timeoutMs);
  if (opts.group.trim() === '') {
    throw new TokenledgerError('CLI_USAGE', `--group must not be empty, got ${JSON.stringify(opts.group)}`);
  }
  if (opts.topic.trim() === '') {
    throw new TokenledgerError('CLI_USAGE', `--topic must not be empty, got ${JSON.stringify(opts.topic)}`);
  }
  const config = loadConfig(process.env, ['kafka', 'local', 'log']);
  const logger = createLogger({ level: config.logLevel });
  const kafka = createKafka({ config, logger });
  const admin = kafka.admin();
  await admin.connect();
  try {
    await ensureTopics(admin, [{ ...TOPICS.alerts, name: opts.topic }]);
  } finally {
    await admin.disconnect();
  }

  let fatal: Error | undefined;
  let wake: () => void = () => undefined;
  const stopped = new Promise<string>((resolve) => {
    wake = () => resolve('fatal');
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  const r = createAlertRelay({
    kafka,
    logger,
    webhookUrl,
    topic: opts.topic,
    groupId: opts.group,
    teams: opts.team,
    timeoutMs,
    onFatal: (err) => {
      fatal = err;
      wake();
    },
  });
  await r.start();
  logger.info(
    { webhook: webhookOrigin(webhookUrl), topic: opts.topic, group: opts.group },
    'relaying alerts',
  );
  let last: RelayCounts = r.counts();
  const progress = setInterval(() => {
    const now = r.counts();
    if (JSON.stringify(now) !== JSON.stringify(last)) logger.info({ ...now }, 'relay progress');
    last = now;
  }, 10_000);
  progress.unref();
  const why = await stopped;
  logger.info({ why }, 'relay stopping');
  clearInterval(progress);
  await r.stop();
  if (fatal !== undefined) {
    process.stderr.write(`tokenledger: relay stopped: ${fatal.message}\n`);
    return EXIT.failure;
  }
  return EXIT.ok;
}
