/**
 * `tokenledger infra up|down|status` as a user runs it: idempotent, leaves no process behind, and each failure
 * (port in use, Java missing, a broker that does not come up in time, bad settings) gives a clear message and a
 * non-zero exit. Every run uses a private home and free ports.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { isAlive } from '../../infra/process';
import { runCli, isolatedEnv } from '../helpers/cli';
import { freePort, freePortPair } from '../helpers/env';

interface StatusJson {
  local: { name: string; running: boolean; answering: boolean; pid: number | null }[];
}

async function privateEnv(
  extra: Record<string, string> = {},
): Promise<{ env: NodeJS.ProcessEnv; home: string }> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenledger-cli-'));
  const kafkaPort = await freePortPair();
  const chPort = await freePort();
  return {
    home,
    env: isolatedEnv({
      TOKENLEDGER_HOME: home,
      TOKENLEDGER_KAFKA_PORT: String(kafkaPort),
      TOKENLEDGER_CLICKHOUSE_PORT: String(chPort),
      TOKENLEDGER_KAFKA_HEAP_MB: '384',
      ...extra,
    }),
  };
}

/** Every process the home's pid files name, alive or not. */
function pidsIn(home: string): number[] {
  return ['kafka/broker.pid', 'clickhouse/endpoint.pid'].flatMap((f) => {
    try {
      return [Number(fs.readFileSync(path.join(home, f), 'utf8').trim())];
    } catch {
      return [];
    }
  });
}

/** Any process whose command line mentions the home folder (the broker JVM or the endpoint). */
function processesUsing(home: string): number[] {
  return fs
    .readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        const cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8');
        const env = fs.readFileSync(`/proc/${d}/environ`, 'utf8');
        return (
          cmd.includes(home) ||
          (env.includes(`TOKENLEDGER_HOME=${home}`) && cmd.includes('infra/clickhouse/main.ts'))
        );
      } catch {
        return false;
      }
    })
    .map(Number)
    .filter((pid) => pid !== process.pid && isAlive(pid));
}

describe('tokenledger infra', () => {
  test('up twice is harmless, status reports both answering, down leaves no process behind', async () => {
    const { env, home } = await privateEnv();
    try {
      const first = await runCli(['infra', 'up'], env);
      expect(first.stderr).toBe('');
      expect(first.code).toBe(0);
      expect(first.stdout).toMatch(/kafka\s+127\.0\.0\.1:\d+\s+started/);
      expect(first.stdout).toMatch(/clickhouse\s+http:\/\/127\.0\.0\.1:\d+\s+started/);

      const second = await runCli(['infra', 'up'], env);
      expect(second.code).toBe(0);
      expect(second.stdout).toMatch(/kafka\s+\S+\s+already-running/);
      expect(second.stdout).toMatch(/clickhouse\s+\S+\s+already-running/);

      const status = await runCli(['infra', 'status', '--json'], env);
      expect(status.code).toBe(0);
      const parsed = JSON.parse(status.stdout) as StatusJson;
      expect(parsed.local.map((s) => [s.name, s.running, s.answering])).toEqual([
        ['kafka', true, true],
        ['clickhouse', true, true],
      ]);
      const pids = pidsIn(home);
      expect(pids).toHaveLength(2);

      const down = await runCli(['infra', 'down'], env);
      expect(down.code).toBe(0);
      expect(down.stdout).toMatch(/kafka\s+stopped/);
      expect(down.stdout).toMatch(/clickhouse\s+stopped/);
      for (const pid of pids) expect(isAlive(pid)).toBe(false);
      expect(processesUsing(home)).toEqual([]);

      const downAgain = await runCli(['infra', 'down'], env);
      expect(downAgain.code).toBe(0);
      expect(downAgain.stdout).toMatch(/kafka\s+not-running/);

      const after = await runCli(['infra', 'status'], env);
      expect(after.code).toBe(1);
    } finally {
      await runCli(['infra', 'down'], env);
      fs.rmSync(home, { recursive: true, force: true });
    }
  });

  test('a port already in use: clear message, exit 1, nothing left running', async () => {
    const { env, home } = await privateEnv();
    const blocker = net.createServer();
    const port = Number(env.TOKENLEDGER_KAFKA_PORT);
    await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve));
    try {
      const r = await runCli(['infra', 'up'], env);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(
        `Kafka broker: port ${port} on 127.0.0.1 is already in use by another process`,
      );
      expect(r.stderr).toContain('TOKENLEDGER_KAFKA_PORT');
      expect(processesUsing(home)).toEqual([]);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
      await runCli(['infra', 'down'], env);
      fs.rmSync(home, { recursive: true, force: true });
    }
  });

  test('the ClickHouse port already in use: clear message, exit 1, nothing left running', async () => {
    const { env, home } = await privateEnv();
    const blocker = net.createServer();
    const port = Number(env.TOKENLEDGER_CLICKHOUSE_PORT);
    await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve));
    try {
      const r = await runCli(['infra', 'up'], env);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(
        `ClickHouse endpoint: port ${port} on 127.0.0.1 is already in use by another process`,
      );
      expect(r.stderr).toContain('TOKENLEDGER_CLICKHOUSE_PORT');
      // the broker, started in parallel, was stopped again
      expect(processesUsing(home)).toEqual([]);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
      await runCli(['infra', 'down'], env);
      fs.rmSync(home, { recursive: true, force: true });
    }
  });

  test('with CLICKHOUSE_URL set, up starts only the broker and reports ClickHouse as external', async () => {
    const { env, home } = await privateEnv({ CLICKHOUSE_URL: 'http://127.0.0.1:1/' });
    try {
      const r = await runCli(['infra', 'up'], env);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/kafka\s+127\.0\.0\.1:\d+\s+started/);
      expect(r.stdout).toMatch(/clickhouse\s+http:\/\/127\.0\.0\.1:1\/\s+external/);
      expect(fs.existsSync(path.join(home, 'clickhouse', 'endpoint.pid'))).toBe(false);
    } finally {
      await runCli(['infra', 'down'], env);
      fs.rmSync(home, { recursive: true, force: true });
    }
  });

  test('two `infra up` at once: both succeed, one broker and one endpoint run, down stops them', async () => {
    const { env, home } = await privateEnv();
    try {
      const [a, b] = await Promise.all([runCli(['infra', 'up'], env), runCli(['infra', 'up'], env)]);
      expect([a.code, b.code]).toEqual([0, 0]);
      const outcomes = `${a.stdout}\n${b.stdout}`;
      expect(outcomes.match(/kafka\s+\S+\s+started/g)).toHaveLength(1);
      expect(outcomes.match(/kafka\s+\S+\s+already-running/g)).toHaveLength(1);
      expect(processesUsing(home)).toHaveLength(2);
      expect((await runCli(['infra', 'down'], env)).code).toBe(0);
      expect(processesUsing(home)).toEqual([]);
    } finally {
      await runCli(['infra', 'down'], env);
      fs.rmSync(home, { recursive: true, force: true });
    }
  });

  test('Java missing: clear message naming JAVA_HOME, exit 1', async () => {
    const { env, home } = await privateEnv({ JAVA_HOME: '/nonexistent/jdk' });
    try {
      const r = await runCli(['infra', 'up'], env);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('Java 17 or newer is needed to run the local Kafka broker');
      expect(r.stderr).toContain('/nonexistent/jdk/bin/java does not exist');
      expect(processesUsing(home)).toEqual([]);
    } finally {
      await runCli(['infra', 'down'], env);
      fs.rmSync(home, { recursive: true, force: true });
    }
  });

  test('a broker that does not come up in time: clear message, exit 1, the JVM is not left running', async () => {
    const { env, home } = await privateEnv({ TOKENLEDGER_INFRA_START_TIMEOUT_MS: '400' });
    try {
      const r = await runCli(['infra', 'up'], env);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/the Kafka broker did not answer .* within 0\.4 s \(stopped it/);
      expect(processesUsing(home)).toEqual([]);
    } finally {
      await runCli(['infra', 'down'], env);
      fs.rmSync(home, { recursive: true, force: true });
    }
  });

  test('bad settings: every problem named with its value, exit 2', async () => {
    const r = await runCli(
      ['infra', 'up'],
      isolatedEnv({ TOKENLEDGER_KAFKA_PORT: 'ninety', TOKENLEDGER_KAFKA_HEAP_MB: '4096' }),
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('TOKENLEDGER_KAFKA_PORT="ninety"');
    expect(r.stderr).toContain('TOKENLEDGER_KAFKA_HEAP_MB="4096"');
  });

  test('an unknown subcommand or flag exits non-zero with a usage message', async () => {
    const r = await runCli(['infra', 'sideways'], isolatedEnv({}));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown command 'sideways'");
    const f = await runCli(['infra', 'up', '--turbo'], isolatedEnv({}));
    expect(f.code).toBe(2);
    expect(f.stderr).toContain("unknown option '--turbo'");
  });
});
