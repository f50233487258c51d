/** How the CLI talks to people: plain lines on stdout, problems on stderr, exit codes that scripts can test. */
import { isTokenledgerError, TokenledgerError } from '../lib/errors';

export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

export function say(line = ''): void {
  process.stdout.write(`${line}\n`);
}

/** Prints an error the way every command does and returns the exit code for it. */
export function report(err: unknown): number {
  if (isTokenledgerError(err)) {
    process.stderr.write(`tokenledger: ${err.message}\n`);
    return err.code === 'CONFIG_INVALID' || err.code === 'CLI_USAGE' ? EXIT.usage : EXIT.failure;
  }
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`tokenledger: ${message}\n`);
  return EXIT.failure;
}

/** Renders rows as an aligned text table. */
export function table(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows
    .map((row) =>
      row
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** A port flag: a whole number 0-65535 (0: any free port), or the fallback when the flag is absent. */
export function parsePortFlag(flag: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    throw new TokenledgerError(
      'CLI_USAGE',
      `${flag} must be a port number 0-65535, got ${JSON.stringify(text)}`,
    );
  }
  return n;
}
