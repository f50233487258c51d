/** Starts, stops and reports the local ClickHouse endpoint process (main.ts) for `tokenledger infra`. */
import fs from 'node:fs';
import path from 'node:path';
import { TokenledgerError, isTokenledgerError } from '../../lib/errors';
import {
  assertPortFree,
  isOurProcess,
  killAndWait,
  logTail,
  readPid,
  startDetached,
  stopProcess,
  waitUntil,
} from '../process';
import type { LocalService, ServiceStatus } from '../service';

export interface LocalClickHouseOptions {
  readonly home: string;
  readonly port: number;
  readonly startTimeoutMs: number;
  /** Environment for the endpoint process (its config); defaults to this process's. */
  readonly env?: NodeJS.ProcessEnv;
}

const MAIN = path.join(__dirname, 'main.ts');
const MARKER = path.join('infra', 'clickhouse', 'main.ts');

export function localClickHouse(options: LocalClickHouseOptions): LocalService {
  const dir = path.join(options.home, 'clickhouse');
  const pidFile = path.join(dir, 'endpoint.pid');
  const logFile = path.join(dir, 'endpoint.log');
  const address = `http://127.0.0.1:${options.port}`;
  // The home is on the endpoint's command line, so its process is told apart from another home's endpoint.
  const markers = [MARKER, `--home=${options.home}`];

  const answering = async (): Promise<boolean> => {
    try {
      const res = await fetch(`${address}/ping`, { signal: AbortSignal.timeout(1000) });
      return res.status === 200 && (await res.text()) === 'Ok.\n';
    } catch {
      return false;
    }
  };
  const runningPid = (): number | undefined => {
    const pid = readPid(pidFile);
    return pid !== undefined && isOurProcess(pid, markers) ? pid : undefined;
  };

  return {
    name: 'clickhouse',
    async start() {
      const existing = runningPid();
      if (existing !== undefined) {
        await waitUntil(`ClickHouse endpoint (pid ${existing}) answering on ${address}`, answering, {
          timeoutMs: options.startTimeoutMs,
        });
        return 'already-running';
      }
      await assertPortFree(options.port, 'ClickHouse endpoint', 'TOKENLEDGER_CLICKHOUSE_PORT');
      fs.mkdirSync(dir, { recursive: true });
      const pid = startDetached({
        command: process.execPath,
        args: ['--require', require.resolve('tsx/cjs'), MAIN, `--home=${options.home}`],
        cwd: path.resolve(__dirname, '..', '..'),
        env: {
          ...(options.env ?? process.env),
          TOKENLEDGER_HOME: options.home,
          TOKENLEDGER_CLICKHOUSE_PORT: String(options.port),
          UV_THREADPOOL_SIZE: (options.env ?? process.env).UV_THREADPOOL_SIZE ?? '16',
        },
        logFile,
        pidFile,
      });
      try {
        await waitUntil(`ClickHouse endpoint answering /ping on ${address}`, answering, {
          timeoutMs: options.startTimeoutMs,
          failFast: () =>
            isOurProcess(pid, markers)
              ? undefined
              : new TokenledgerError(
                  'INFRA_START_FAILED',
                  `the ClickHouse endpoint exited during start-up; last lines of ${logFile}:\n${logTail(logFile)}`,
                ),
        });
      } catch (err) {
        await killAndWait(pid);
        fs.rmSync(pidFile, { force: true });
        if (isTokenledgerError(err, 'TIMEOUT')) {
          throw new TokenledgerError(
            'INFRA_START_TIMEOUT',
            `the ClickHouse endpoint did not answer on ${address} within ${(options.startTimeoutMs / 1000).toFixed(1)} s (stopped it); log: ${logFile}`,
            { cause: err },
          );
        }
        throw err;
      }
      return 'started';
    },
    async stop() {
      return stopProcess(pidFile, markers, 20_000);
    },
    async status(): Promise<ServiceStatus> {
      const pid = runningPid();
      return {
        name: 'clickhouse',
        address,
        running: pid !== undefined,
        answering: await answering(),
        pid,
        logFile,
      };
    },
  };
}
