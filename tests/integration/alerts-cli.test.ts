/**
 * `tokenledger alerts tail` and `tokenledger alerts relay` as a user runs them, against the real broker. The
 * webhook receiver is a plain node:http server inside the test: it stands for Slack, answering what each test
 * tells it to (500s, a 400) and recording every request.
 */
import http from 'node:http';
import path from 'node:path';
import { spawn } from 'node:child_process';
import type { Message } from 'kafkajs';
import { PROJECT_ROOT, kafkaBrokers } from '../../lib/config';
import { ALERT_ID_HEADER } from '../../consumers/alerts';
import { encodeAlert } from '../../schemas/alert/schema';
import type { Alert } from '../../schemas/alert/types';
import { runCli } from '../helpers/cli';
import { uniqueName } from '../helpers/env';
import { useTestKafka } from '../helpers/kafka';
import { produce } from '../helpers/usage';

const k = useTestKafka();
const T0 = Date.UTC(2026, 10, 29, 12, 0);

function alert(team: string, firedAt: number, extra: Partial<Alert> = {}): Alert {
  return {
    alert_id: uniqueName('a').replace('_', ''),
    kind: 'cost_spike',
    severity: 'critical',
    fired_at: firedAt,
    org_id: 'acme',
    team_id: team,
    scope: 'team',
    model: null,
    user_id: null,
    project_id: null,
    window_start: firedAt - 15 * 60_000,
    window_end: firedAt,
    observed_cost_nanousd: 10n ** 17n + 1n, // above 2^53
    expected_cost_nanousd: 44_200_000_000n,
    observed_tokens: 41_000_000n,
    expected_tokens: 4_400_000n,
    score: 9.3,
    rule: 'window 15m: observed >= 3x expected',
    budget: null,
    top_contributors: [{ dimension: 'user', value: 'svc-indexer', cost_nanousd: 10n ** 16n, share: 0.81 }],
    message: `${team} spent $412 in the last 15 min, 9.3x its usual $44`,
    related_alert_id: null,
    detector: 'tokenledger-detect/test',
    ...extra,
  };
}

const toMessage = (a: Alert): Message => ({
  key: a.team_id,
  value: encodeAlert(a),
  headers: { [ALERT_ID_HEADER]: a.alert_id },
});

function cliEnv(): NodeJS.ProcessEnv {
  return { ...process.env, KAFKA_BROKERS: kafkaBrokers(k.config).join(','), LOG_LEVEL: 'info' };
}

describe('alerts tail', () => {
  let topic: string;
  const a1 = alert('team-a', T0);
  const b1 = alert('team-b', T0 + 60_000, {
    kind: 'budget_threshold',
    severity: 'warning',
    budget: {
      budget_id: 'team:team-b:month',
      period: 'month',
      period_start: Date.UTC(2026, 10, 1),
      period_end: Date.UTC(2026, 11, 1),
      time_zone: 'UTC',
      unit: 'usd',
      limit: 3n * 10n ** 17n,
      spent: 2n * 10n ** 17n + 1n,
      threshold_percent: 80,
      burn_rate: null,
      burn_window: null,
      forecast_exhausted_at: null,
    },
  });
  const a2 = alert('team-a', T0 + 120_000, { kind: 'spike_resolved', severity: 'info' });

  beforeAll(async () => {
    topic = await k.topic(2);
    await produce(k.kafka, topic, [
      toMessage(a1),
      toMessage(b1),
      { key: 'team-x', value: Buffer.from('not an alert') },
      toMessage(a2),
    ]);
  });

  test('shows the alerts decoded, oldest first, one line each; skips what is not an alert', async () => {
    const r = await runCli(['alerts', 'tail', '--topic', topic], cliEnv());
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toEqual([
      `2026-11-29T12:00:00.000Z  critical cost_spike       team-a  ${a1.message}`,
      `2026-11-29T12:01:00.000Z  warning  budget_threshold team-b  ${b1.message}`,
      `2026-11-29T12:02:00.000Z  info     spike_resolved   team-a  ${a2.message}`,
    ]);
    expect(r.stderr).toMatch(/is not an alert: not an Avro single-object message/);
    expect(r.stderr).toContain(`3 alert(s) shown from ${topic}, 1 undecodable message(s) skipped`);
  });

  test('--team filters; -n reads only the newest per partition', async () => {
    const b = await runCli(['alerts', 'tail', '--topic', topic, '--team', 'team-b'], cliEnv());
    expect(b.code).toBe(0);
    expect(b.stdout.trim().split('\n')).toEqual([expect.stringContaining(`team-b  ${b1.message}`)]);
    const newest = await runCli(
      ['alerts', 'tail', '--topic', topic, '--team', 'team-a', '-n', '1'],
      cliEnv(),
    );
    expect(newest.code).toBe(0);
    expect(newest.stdout.trim().split('\n')).toEqual([expect.stringContaining(a2.message)]);
  });

  test('--json: one parseable object per line, money as exact decimal strings, times ISO', async () => {
    const r = await runCli(
      ['alerts', 'tail', '--topic', topic, '--json', '--team', 'team-b,team-a'],
      cliEnv(),
    );
    expect(r.code).toBe(0);
    const objects = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(objects.map((o) => o.alert_id)).toEqual([a1.alert_id, b1.alert_id, a2.alert_id]);
    expect(objects[1]).toEqual({
      ...b1,
      fired_at: '2026-11-29T12:01:00.000Z',
      window_start: '2026-11-29T11:46:00.000Z',
      window_end: '2026-11-29T12:01:00.000Z',
      observed_cost_nanousd: '100000000000000001',
      expected_cost_nanousd: '44200000000',
      observed_tokens: '41000000',
      expected_tokens: '4400000',
      budget: {
        ...b1.budget,
        period_start: '2026-11-01T00:00:00.000Z',
        period_end: '2026-12-01T00:00:00.000Z',
        limit: '300000000000000000',
        spent: '200000000000000001',
      },
      top_contributors: [
        { dimension: 'user', value: 'svc-indexer', cost_nanousd: '10000000000000000', share: 0.81 },
      ],
    });
  });

  test('--follow prints the backlog, then new alerts as they come, until SIGTERM', async () => {
    const child = spawn(
      process.execPath,
      [path.join(PROJECT_ROOT, 'cli', 'bin.js'), 'alerts', 'tail', '--topic', topic, '-f', '--json'],
      { env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    const seen: (() => void)[] = [];
    child.stdout.on('data', (b: Buffer) => {
      stdout += b.toString();
      for (const w of seen) w();
    });
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const waitForLines = async (n: number): Promise<void> => {
      let timer: NodeJS.Timeout | undefined;
      try {
        await new Promise<void>((resolve, reject) => {
          const check = (): void => {
            if (stdout.trim().split('\n').filter(Boolean).length >= n) resolve();
          };
          seen.push(check);
          check();
          timer = setTimeout(
            () => reject(new Error(`tail -f printed no ${n} lines in 60 s:\n${stdout}\n${stderr}`)),
            60_000,
          );
        });
      } finally {
        clearTimeout(timer);
      }
    };
    try {
      await waitForLines(3);
      const live = alert('team-c', T0 + 600_000);
      await produce(k.kafka, topic, [toMessage(live)]);
      await waitForLines(4);
      const ids = stdout
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { alert_id: string }).alert_id);
      expect(ids).toEqual([a1.alert_id, b1.alert_id, a2.alert_id, live.alert_id]);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });

  test('a topic that does not exist, and a bad --count', async () => {
    const none = await runCli(['alerts', 'tail', '--topic', uniqueName('test.none')], cliEnv());
    expect(none.code).toBe(0);
    expect(none.stderr).toContain('does not exist yet');
    const bad = await runCli(['alerts', 'tail', '--topic', topic, '-n', 'lots'], cliEnv());
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--count must be a whole number ≥ 1, got "lots"');
  });
});

interface Received {
  readonly alertId: string;
  readonly status: number;
  readonly body: { text: string; blocks: unknown[] };
}

/** A webhook receiver: answers each alert_id with the statuses scripted for it (then 200), records everything. */
async function startReceiver(): Promise<{
  url: string;
  script: Map<string, number[]>;
  received: Received[];
  waitFor(what: string, done: () => boolean): Promise<void>;
  close(): Promise<void>;
}> {
  const script = new Map<string, number[]>();
  const received: Received[] = [];
  const waiters = new Set<() => void>();
  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      const body = JSON.parse(raw) as Received['body'];
      const alertId = /alert_id `([^`]+)`/.exec(JSON.stringify(body.blocks))?.[1] ?? '?';
      const status = script.get(alertId)?.shift() ?? 200;
      received.push({ alertId, status, body });
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status === 200 ? 'ok' : 'no');
      for (const w of waiters) w();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  if (typeof addr !== 'object' || addr === null) throw new Error('receiver has no port');
  return {
    url: `http://127.0.0.1:${addr.port}/services/T000/B000/secret-token`,
    script,
    received,
    async waitFor(what, done) {
      if (done()) return;
      let timer: NodeJS.Timeout | undefined;
      let check: () => void = () => undefined;
      try {
        await new Promise<void>((resolve, reject) => {
          check = () => {
            if (done()) resolve();
          };
          waiters.add(check);
          timer = setTimeout(
            () =>
              reject(
                new Error(
                  `webhook receiver: ${what} did not happen within 60 s; received ${JSON.stringify(received.map((r) => [r.alertId, r.status]))}`,
                ),
              ),
            60_000,
          );
        });
      } finally {
        waiters.delete(check);
        clearTimeout(timer);
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** `tokenledger alerts relay` in a child process: its pino lines parsed, stopped with SIGTERM. */
function startRelay(args: readonly string[]): {
  logs: () => Record<string, unknown>[];
  stop: () => Promise<number | null>;
} {
  const child = spawn(
    process.execPath,
    [path.join(PROJECT_ROOT, 'cli', 'bin.js'), 'alerts', 'relay', ...args],
    {
      env: cliEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    logs: () =>
      stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    stop: async () => {
      child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const code = await Promise.race([
        exited,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            child.kill('SIGKILL');
            reject(new Error(`relay did not exit within 60 s of SIGTERM; stderr:\n${stderr}`));
          }, 60_000);
        }),
      ]);
      clearTimeout(timer);
      if (code !== 0) throw new Error(`relay exited ${String(code)}; stderr:\n${stderr}\nstdout:\n${stdout}`);
      return code;
    },
  };
}

describe('alerts relay', () => {
  test('retries 5xx until delivered, posts a repeated alert_id once, skips a 400 and goes on; restarts remember', async () => {
    const topic = await k.topic(1);
    const group = k.groupId();
    const receiver = await startReceiver();
    try {
      const flaky = alert('team-a', T0);
      const refused = alert('team-a', T0 + 1000, { severity: 'warning' });
      const fine = alert('team-a', T0 + 2000, { kind: 'spike_resolved', severity: 'info' });
      receiver.script.set(flaky.alert_id, [500, 500]);
      receiver.script.set(refused.alert_id, [400, 400, 400]);
      await produce(k.kafka, topic, [
        toMessage(flaky),
        toMessage(flaky), // the detector published it again (same alert_id)
        { key: 'team-a', value: Buffer.from('garbage') },
        toMessage(refused),
        toMessage(fine),
      ]);

      const relay = startRelay(['--webhook', receiver.url, '--topic', topic, '--group', group]);
      await receiver.waitFor('the alert after the refused one delivered', () =>
        receiver.received.some((r) => r.alertId === fine.alert_id && r.status === 200),
      );
      expect(await relay.stop()).toBe(0);

      const statuses = (id: string): number[] =>
        receiver.received.filter((r) => r.alertId === id).map((r) => r.status);
      expect(statuses(flaky.alert_id)).toEqual([500, 500, 200]); // posted exactly once, after two retries
      expect(statuses(refused.alert_id)).toEqual([400]); // permanent: not retried
      expect(statuses(fine.alert_id)).toEqual([200]);
      const body = receiver.received.find((r) => r.alertId === fine.alert_id)?.body;
      expect(body?.text).toBe(`:white_check_mark: ${fine.message}`);
      expect(body?.blocks[0]).toMatchObject({ type: 'header' });

      const logs = relay.logs();
      expect(logs.find((l) => l.msg === 'alert relay stopped')).toMatchObject({
        delivered: 2,
        deduplicated: 1,
        retries: 2,
        permanentFailures: 1,
        undecodable: 1,
        filtered: 0,
      });
      expect(logs.find((l) => l.msg === 'webhook refused the alert permanently: skipped')).toMatchObject({
        alert_id: refused.alert_id,
        status: 400,
      });
      // the webhook's secret path never reaches a log line
      expect(JSON.stringify(logs)).not.toContain('secret-token');
      // everything handled was committed
      const admin = k.kafka.admin();
      await admin.connect();
      try {
        const [offsets] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
        expect(offsets?.partitions).toEqual([expect.objectContaining({ partition: 0, offset: '5' })]);
      } finally {
        await admin.disconnect();
      }

      // A second run of the same group: the detector re-emits `flaky` after the relay restarted; the relay
      // remembers it (warmed from the topic), and --team skips other teams.
      const other = alert('team-z', T0 + 3000);
      const next = alert('team-a', T0 + 4000);
      await produce(k.kafka, topic, [toMessage(flaky), toMessage(other), toMessage(next)]);
      const again = startRelay([
        '--webhook',
        receiver.url,
        '--topic',
        topic,
        '--group',
        group,
        '--team',
        'team-a',
      ]);
      await receiver.waitFor('the next alert delivered', () =>
        receiver.received.some((r) => r.alertId === next.alert_id),
      );
      expect(await again.stop()).toBe(0);
      expect(statuses(flaky.alert_id)).toEqual([500, 500, 200]);
      expect(statuses(other.alert_id)).toEqual([]);
      expect(statuses(next.alert_id)).toEqual([200]);
      expect(again.logs().find((l) => l.msg === 'alert relay stopped')).toMatchObject({
        delivered: 1,
        deduplicated: 1,
        filtered: 1,
      });
    } finally {
      await receiver.close();
    }
  });

  test('a bad --webhook exits 2 naming the value; a missing one is a usage error', async () => {
    for (const url of ['ftp://hooks.example.com/x', 'hooks.slack.com/services/x', '']) {
      const r = await runCli(['alerts', 'relay', '--webhook', url], cliEnv());
      expect([url, r.code]).toEqual([url, 2]);
      expect(r.stderr).toContain(`--webhook must be an http:// or https:// URL, got ${JSON.stringify(url)}`);
    }
    const missing = await runCli(['alerts', 'relay'], cliEnv());
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("required option '--webhook <url>' not specified");
    const timeout = await runCli(
      ['alerts', 'relay', '--webhook', 'https://x.example', '--timeout-ms', '5s'],
      cliEnv(),
    );
    expect(timeout.code).toBe(2);
    expect(timeout.stderr).toContain(
      '--timeout-ms must be a whole number of ms from 100 to 300000, got "5s"',
    );
  });
});
