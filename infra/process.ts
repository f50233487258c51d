/**
 * What the local broker and the local ClickHouse endpoint share: a detached child process with a pid file and a
 * log file, a free-port check, a bounded wait, and a clean stop (SIGTERM, then SIGKILL after a grace period).
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { TokenledgerError } from '../lib/errors';

export interface DetachedSpec {
  readonly command: string;
  readonly args: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
  readonly logFile: string;
  readonly pidFile: string;
}

/** Starts a process that outlives this one; its output goes to `logFile`, its pid to `pidFile`. */
export function startDetached(spec: DetachedSpec): number {
  fs.mkdirSync(path.dirname(spec.logFile), { recursive: true });
  const out = fs.openSync(spec.logFile, 'a');
  try {
    const child = spawn(spec.command, spec.args, {
      cwd: spec.cwd,
      env: spec.env,
      detached: true,
      stdio: ['ignore', out, out],
    });
    if (child.pid === undefined) {
      throw new TokenledgerError(
        'INFRA_START_FAILED',
        `could not start ${spec.command}: no pid (see ${spec.logFile})`,
      );
    }
    child.unref();
    fs.writeFileSync(spec.pidFile, `${child.pid}\n`);
    return child.pid;
  } finally {
    fs.closeSync(out);
  }
}

export function readPid(pidFile: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie (exited, not yet reaped by its parent) still answers kill(0); it is not running.
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}

/**
 * True when `pid` is alive and its command line contains every marker (guards against recycled pids and against
 * the same service of another home).
 */
export function isOurProcess(pid: number, markers: readonly string[]): boolean {
  if (!isAlive(pid)) return false;
  try {
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return markers.every((m) => cmdline.includes(m));
  } catch {
    return true; // no /proc: trust the pid file
  }
}

/** SIGKILL to the process group, then wait (bounded) until the process is gone. */
export async function killAndWait(pid: number, timeoutMs = 10_000): Promise<void> {
  signal(pid, 'SIGKILL');
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid) && Date.now() < deadline) await sleep(50);
  if (isAlive(pid))
    throw new TokenledgerError(
      'INFRA_STOP_FAILED',
      `process ${pid} survived SIGKILL for ${timeoutMs / 1000} s`,
    );
}

/**
 * An exclusive lock on a home folder for the duration of `fn`, so two `infra up` (or `up` and `down`) cannot
 * race each other into starting untracked processes. A lock left by a dead process is taken over.
 */
export async function withHomeLock<T>(home: string, fn: () => Promise<T>): Promise<T> {
  fs.mkdirSync(home, { recursive: true });
  const file = path.join(home, 'infra.lock');
  for (let attempt = 0; ; attempt++) {
    try {
      fs.writeFileSync(file, `${process.pid}\n`, { flag: 'wx' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = readPid(file);
      if (holder === undefined || !isAlive(holder)) {
        fs.rmSync(file, { force: true });
        continue;
      }
      if (attempt > 600) {
        throw new TokenledgerError(
          'INFRA_START_FAILED',
          `another tokenledger infra command (pid ${holder}) holds ${file}`,
        );
      }
      await sleep(100);
    }
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(file, { force: true });
  }
}

/** Fails with a clear message when something already listens on 127.0.0.1:port. */
export async function assertPortFree(port: number, what: string, envName: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') {
        reject(
          new TokenledgerError(
            'INFRA_PORT_IN_USE',
            `${what}: port ${port} on 127.0.0.1 is already in use by another process; stop it or choose another port with ${envName}`,
            { context: { port } },
          ),
        );
      } else {
        reject(err);
      }
    });
    srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => srv.close(() => resolve()));
  });
}

export interface WaitOptions {
  readonly timeoutMs: number;
  readonly intervalMs?: number;
  /** Checked on each round; a non-undefined return aborts the wait with that error. */
  readonly failFast?: () => Error | undefined;
}

/** Polls `check` until it returns true; throws a TIMEOUT error naming `what` when time runs out. */
export async function waitUntil(
  what: string,
  check: () => Promise<boolean>,
  options: WaitOptions,
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const failure = options.failFast?.();
    if (failure !== undefined) throw failure;
    if (await check().catch(() => false)) return;
    if (Date.now() >= deadline) {
      throw new TokenledgerError(
        'TIMEOUT',
        `${what} did not happen within ${(options.timeoutMs / 1000).toFixed(1)} s`,
      );
    }
    await sleep(Math.min(options.intervalMs ?? 250, Math.max(0, deadline - Date.now())));
  }
}

/** Stops the process in `pidFile`: SIGTERM to its process group, SIGKILL after `graceMs`. */
export async function stopProcess(
  pidFile: string,
  markers: readonly string[],
  graceMs: number,
): Promise<'stopped' | 'not-running'> {
  const pid = readPid(pidFile);
  if (pid === undefined || !isOurProcess(pid, markers)) {
    fs.rmSync(pidFile, { force: true });
    return 'not-running';
  }
  signal(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) await sleep(100);
  if (isAlive(pid)) {
    signal(pid, 'SIGKILL');
    const killDeadline = Date.now() + 5000;
    while (isAlive(pid) && Date.now() < killDeadline) await sleep(50);
    if (isAlive(pid)) {
      throw new TokenledgerError(
        'INFRA_STOP_FAILED',
        `process ${pid} (${markers.join(' ')}) survived SIGKILL`,
      );
    }
  }
  fs.rmSync(pidFile, { force: true });
  return 'stopped';
}

/** Kills the whole process group (the detached child leads its own group), falling back to the pid. */
export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    try {
      process.kill(pid, sig);
    } catch {
      // already gone
    }
  }
}

/** The last `lines` lines of a log file, for error messages. */
export function logTail(file: string, lines = 15): string {
  try {
    const text = fs.readFileSync(file, 'utf8');
    return text
      .split('\n')
      .slice(-lines - 1)
      .join('\n')
      .trimEnd();
  } catch {
    return '(no log)';
  }
}
