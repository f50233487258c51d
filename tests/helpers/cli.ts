/** Runs the real `tokenledger` command in a child process and captures what a user would see. */
import path from 'node:path';
import { spawn } from 'node:child_process';
import { PROJECT_ROOT } from '../../lib/config';

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export async function runCli(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  timeoutMs = 150_000,
): Promise<CliResult> {
  const child = spawn(process.execPath, [path.join(PROJECT_ROOT, 'cli', 'bin.js'), ...args], {
    cwd: PROJECT_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `tokenledger ${args.join(' ')} did not finish within ${timeoutMs / 1000} s\nstdout:\n${stdout}\nstderr:\n${stderr}`,
        ),
      );
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The environment for a CLI run against a private home and ports, without any cluster variables. */
export function isolatedEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const inherited = Object.entries(process.env).filter(
    ([k]) => !k.startsWith('TOKENLEDGER_TEST_') && k !== 'KAFKA_BROKERS' && k !== 'CLICKHOUSE_URL',
  );
  return { ...Object.fromEntries(inherited), LOG_LEVEL: 'warn', ...extra };
}
