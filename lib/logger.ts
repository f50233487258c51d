/**
 * pino logging (STYLE.md: Logging): one root logger per process, `logger.child({ module })` per module,
 * object first and a constant message, `err` for errors, credentials redacted. kafkajs logs are routed into a
 * pino child through `logCreator`.
 */
import pino from 'pino';
import type { DestinationStream, Logger } from 'pino';
import { logLevel as KafkaLogLevel } from 'kafkajs';
import type { logCreator, LogEntry } from 'kafkajs';
import { ClickHouseLogLevel } from '@clickhouse/client';
import type {
  Logger as ClickHouseClientLogger,
  LogParams,
  ErrorLogParams,
  WarnLogParams,
} from '@clickhouse/client';

export type { Logger };

/** Paths whose values never reach a log line. */
export const REDACT_PATHS = [
  'password',
  '*.password',
  '*.*.password',
  'sasl.password',
  'authorization',
  'headers.authorization',
  '*.headers.authorization',
  'keyFile',
  '*.keyFile',
];

export interface LoggerOptions {
  readonly level?: string;
  readonly name?: string;
  /** Where lines go; defaults to stdout. Tests pass an in-memory stream. */
  readonly destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      ...(options.name === undefined ? {} : { name: options.name }),
      redact: { paths: REDACT_PATHS, censor: '<redacted>' },
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination ?? pino.destination({ dest: 1, sync: false }),
  );
}

const KAFKA_TO_PINO: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [KafkaLogLevel.ERROR]: 'error',
  [KafkaLogLevel.WARN]: 'warn',
  [KafkaLogLevel.INFO]: 'info',
  [KafkaLogLevel.DEBUG]: 'debug',
};

/** kafkajs `logCreator` that writes into a pino child; the level mapping keeps kafkajs noise at debug. */
export function kafkaLogCreator(logger: Logger): logCreator {
  const child = logger.child({ module: 'kafkajs' });
  return () =>
    ({ level, log }: LogEntry) => {
      const { message, ...rest } = log;
      const method = KAFKA_TO_PINO[level] ?? 'info';
      child[method](rest, message);
    };
}

/** pino level → kafkajs level, so kafkajs does not even format what pino would drop. */
export function kafkaLogLevel(logger: Logger): KafkaLogLevel {
  switch (logger.level) {
    case 'trace':
    case 'debug':
      return KafkaLogLevel.DEBUG;
    case 'info':
      return KafkaLogLevel.INFO;
    case 'warn':
      return KafkaLogLevel.WARN;
    case 'silent':
      return KafkaLogLevel.NOTHING;
    default:
      return KafkaLogLevel.ERROR;
  }
}

/**
 * A `log.LoggerClass` for @clickhouse/client that writes into a pino child. The client logs a request error and
 * then rethrows it to the caller, who decides what to log (STYLE.md: do not log and rethrow), so the client's
 * `error` lines go to debug here.
 */
export function clickhouseLogging(logger: Logger): {
  LoggerClass: new () => ClickHouseClientLogger;
  level: ClickHouseLogLevel;
} {
  const child = logger.child({ module: 'clickhouse-client' });
  class PinoClickHouseLogger implements ClickHouseClientLogger {
    trace({ message, args }: LogParams): void {
      child.trace({ args }, message);
    }
    debug({ message, args }: LogParams): void {
      child.debug({ args }, message);
    }
    info({ message, args }: LogParams): void {
      child.info({ args }, message);
    }
    warn({ message, args, err }: WarnLogParams): void {
      child.warn({ args, err }, message);
    }
    error({ message, args, err }: ErrorLogParams): void {
      child.debug({ args, err }, message);
    }
  }
  const level =
    logger.level === 'trace'
      ? ClickHouseLogLevel.TRACE
      : logger.level === 'debug'
        ? ClickHouseLogLevel.DEBUG
        : logger.level === 'silent'
          ? ClickHouseLogLevel.OFF
          : ClickHouseLogLevel.WARN;
  return { LoggerClass: PinoClickHouseLogger, level };
}

/**
 * Logs at most once per key every `everyMs` (default 10 s), with how many were suppressed since the last line:
 * for failures that repeat per event or per batch (DESIGN: "logged once per reason with rate limiting").
 */
export function rateLimitedLog(
  log: Logger,
  level: 'warn' | 'error',
  everyMs = 10_000,
): (key: string, fields: Record<string, unknown>, msg: string) => void {
  const last = new Map<string, { at: number; suppressed: number }>();
  return (key, fields, msg) => {
    const now = Date.now();
    const prev = last.get(key);
    if (prev !== undefined && now - prev.at < everyMs) {
      prev.suppressed++;
      return;
    }
    log[level]({ reason: key, ...fields, suppressedSinceLastLog: prev?.suppressed ?? 0 }, msg);
    last.set(key, { at: now, suppressed: 0 });
  };
}
