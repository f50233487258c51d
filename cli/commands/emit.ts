/**
 * `tokenledger emit --file events.jsonl`: validates and publishes JSON-lines usage events through the real
 * emitter. Bad lines are reported with line number, field and value; good lines are still published; the exit
 * code is 1 when any line was bad or any event could not be delivered.
 */
import fs from 'node:fs';
import readline from 'node:readline';
import type { Command } from 'commander';
import { loadConfig } from '../../lib/config';
import { createLogger } from '../../lib/logger';
import { createKafka } from '../../lib/kafka';
import { TokenledgerError } from '../../lib/errors';
import { TOPICS, ensureTopics } from '../../lib/topics';
import { createEmitter, resolveOptions } from '../../producers/emitter';
import type { EmitterError, UsageEventInput } from '../../producers/emitter';
import { buildEvent } from '../../producers/emitter/build';
import { usageEventRegistry } from '../../schemas/usage-event/schema';
import { DEFAULT_LIMITS, describeIssues, validateUsageEvent } from '../../schemas/usage-event/validate';
import { parseEventLine } from '../../producers/jsonl';
import { EXIT, say } from '../output';

interface EmitOptions {
  file: string;
  topic?: string;
  dryRun?: boolean;
  maxErrors: string;
  quiet?: boolean;
}

export function registerEmit(program: Command): void {
  program
    .command('emit')
    .description('validate and publish JSON-lines usage events (backfills, scripts, tests)')
    .requiredOption('-f, --file <path>', 'JSON-lines file, one usage event per line ("-" for standard input)')
    .option('--topic <name>', `topic to publish to (default ${TOPICS.usage.name}, created if missing)`)
    .option('--dry-run', 'validate only; publish nothing')
    .option('--max-errors <n>', 'stop printing bad lines after this many (all are still counted)', '50')
    .option('-q, --quiet', 'no progress output')
    .addHelpText(
      'after',
      `
Each line is a JSON object with usage-event fields (schemas/usage-event/v2.avsc), e.g.
  {"team_id":"search","provider":"openai","request_model":"gpt-4.1","input_tokens":1200,"output_tokens":300,"occurred_at":"2026-11-01T10:00:00Z"}
event_id, occurred_at and sdk are filled when missing. Exit code 1 when any line is bad or undelivered.`,
    )
    .action(async (opts: EmitOptions) => {
      process.exitCode = await emitFile(opts);
    });
}

async function emitFile(opts: EmitOptions): Promise<number> {
  const maxErrors = Number(opts.maxErrors);
  if (!Number.isInteger(maxErrors) || maxErrors < 0) {
    throw new TokenledgerError(
      'CLI_USAGE',
      `--max-errors must be a whole number ≥ 0, got ${JSON.stringify(opts.maxErrors)}`,
    );
  }
  const fromStdin = opts.file === '-';
  let size = 0;
  if (!fromStdin) {
    try {
      const st = fs.statSync(opts.file);
      if (!st.isFile()) throw new Error('not a file');
      size = st.size;
    } catch {
      throw new TokenledgerError('CLI_USAGE', `--file ${JSON.stringify(opts.file)}: no such readable file`);
    }
  }
  const config = loadConfig();
  const logger = createLogger({ level: config.logLevel === 'info' ? 'warn' : config.logLevel, name: 'emit' });
  const kafka = createKafka({ config, logger });
  const topic = opts.topic ?? TOPICS.usage.name;

  let lineNo = 0;
  let bad = 0;
  let good = 0;
  const badLine = (message: string): void => {
    bad++;
    if (bad <= maxErrors) {
      // Every message names its field and value (validation and parser messages are written that way).
      process.stderr.write(`line ${lineNo}: ${message}\n`);
    } else if (bad === maxErrors + 1) {
      process.stderr.write(`... further bad lines are counted, not printed (--max-errors ${maxErrors})\n`);
    }
  };
  const onError = (e: EmitterError): void => {
    if (e.kind === 'invalid') {
      badLine(e.issues.map((i) => i.message).join('; '));
    }
  };

  const emitter = opts.dryRun === true ? undefined : await openEmitter();
  async function openEmitter(): Promise<ReturnType<typeof createEmitter>> {
    const admin = kafka.admin();
    await admin.connect();
    try {
      if (opts.topic === undefined) {
        await ensureTopics(admin, [TOPICS.usage]);
      } else if (!(await admin.listTopics()).includes(topic)) {
        throw new TokenledgerError(
          'CLI_USAGE',
          `--topic ${topic}: no such topic (omit --topic to use ${TOPICS.usage.name}, created automatically)`,
        );
      }
    } finally {
      await admin.disconnect();
    }
    // No spool: a command that ends must say what it could not deliver rather than leave it on disk.
    return createEmitter({
      kafka,
      topic,
      logger,
      onError,
      spool: false,
      batch: { maxEvents: 10_000, lingerMs: 20 },
    });
  }

  const progress = createProgress(size, opts.quiet !== true);
  const input = fromStdin ? process.stdin : fs.createReadStream(opts.file);
  let bytesRead = 0;
  input.on('data', (chunk: Buffer | string) => (bytesRead += chunk.length));
  const dryRunEmitter = createDryRunValidator(onError);
  for await (const line of readline.createInterface({ input, crlfDelay: Infinity })) {
    lineNo++;
    const parsed = parseEventLine(line);
    if (parsed.kind === 'blank') continue;
    if (parsed.kind === 'error') {
      badLine(parsed.message);
      continue;
    }
    const before = bad;
    (emitter ?? dryRunEmitter).record(parsed.input);
    if (bad === before) good++;
    if ((lineNo & 0x3ff) === 0) {
      progress.update(bytesRead, lineNo, good, bad);
      // let the emitter's batches go out while a large file is read; give up (exit 1) if Kafka stops answering
      if (emitter !== undefined && emitter.metrics().queueDepth > 50_000) {
        let timer: NodeJS.Timeout | undefined;
        const outcome = await Promise.race([
          emitter.flush().then(() => 'flushed' as const),
          new Promise<'stuck'>((resolve) => (timer = setTimeout(() => resolve('stuck'), 60_000))),
        ]);
        clearTimeout(timer);
        if (outcome === 'stuck') {
          process.stderr.write(`Kafka acknowledged nothing for 60 s; stopping at line ${lineNo}\n`);
          bad++;
          break;
        }
      }
    }
  }
  progress.update(bytesRead, lineNo, good, bad);
  progress.done();

  let undelivered = 0;
  if (emitter !== undefined) {
    await emitter.close({ timeoutMs: 60_000 });
    // Everything lost after validation: close() counts what it could not deliver (no spool here) as not_delivered.
    const m = emitter.metrics();
    undelivered = Object.entries(m.dropped).reduce((a, [reason, n]) => (reason === 'invalid' ? a : a + n), 0);
  }
  const verb = emitter === undefined ? 'valid (dry run, nothing published)' : `published to ${topic}`;
  say(
    `${good} event(s) ${verb}; ${bad} bad line(s) of ${lineNo}${undelivered > 0 ? `; ${undelivered} NOT delivered (Kafka unreachable?)` : ''}`,
  );
  return bad > 0 || undelivered > 0 ? EXIT.failure : EXIT.ok;
}

/** --dry-run: the emitter's own building and validation, without Kafka. */
function createDryRunValidator(onError: (e: EmitterError) => void): { record(input: UsageEventInput): void } {
  const type = usageEventRegistry().current.type;
  const sdk = resolveOptions({ kafka: undefined as never, spool: false }).sdk;
  return {
    record(input) {
      const now = Date.now();
      const event = buildEvent(input, { defaults: {}, scope: undefined, sdk, now });
      const issues = validateUsageEvent(event, type, DEFAULT_LIMITS, now);
      if (issues.length > 0)
        onError({ kind: 'invalid', issues, message: describeIssues(issues), event: input });
    },
  };
}

function createProgress(
  totalBytes: number,
  enabled: boolean,
): { update(bytes: number, lines: number, good: number, bad: number): void; done(): void } {
  const tty = process.stderr.isTTY;
  const started = Date.now();
  let last = 0;
  let lastPct = -10;
  return {
    update(bytes, lines, good, bad) {
      if (!enabled) return;
      const now = Date.now();
      if (now - last < 200) return;
      last = now;
      const rate = Math.round(lines / Math.max(0.001, (now - started) / 1000));
      const pct = totalBytes > 0 ? Math.min(100, (100 * bytes) / totalBytes) : undefined;
      const bar =
        pct === undefined
          ? ''
          : `[${'#'.repeat(Math.round(pct / 5)).padEnd(20, '.')}] ${pct.toFixed(0).padStart(3)}% `;
      const text = `${bar}${lines} lines, ${good} ok, ${bad} bad, ${rate}/s`;
      if (tty) process.stderr.write(`\r${text}`);
      else if (pct !== undefined && pct - lastPct >= 10) {
        lastPct = pct;
        process.stderr.write(`${text}\n`);
      }
    },
    done() {
      if (enabled && tty) process.stderr.write('\n');
    },
  };
}
