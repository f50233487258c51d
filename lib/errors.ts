/**
 * One error type for the whole project (STYLE.md: Errors). Codes are an `as const` tuple with a derived union
 * (platformatic/kafka); the class carries `code`, `cause`, `retriable` and free-form context (kafkajs
 * `KafkaJSError`). Always pass `cause` when wrapping.
 */
import { ClickHouseError } from '@clickhouse/client';

export const ERROR_CODES = [
  'CONFIG_INVALID',
  'CLI_USAGE',
  'INFRA_JAVA_MISSING',
  'INFRA_JARS_MISSING',
  'INFRA_PORT_IN_USE',
  'INFRA_START_TIMEOUT',
  'INFRA_START_FAILED',
  'INFRA_STOP_FAILED',
  'KAFKA_UNAVAILABLE',
  'CLICKHOUSE_UNAVAILABLE',
  'CLICKHOUSE_QUERY_FAILED',
  'TIMEOUT',
  'SCHEMA_INVALID',
  'SCHEMA_INCOMPATIBLE',
  'CODEC_BAD_MAGIC',
  'CODEC_UNKNOWN_FINGERPRINT',
  'CODEC_BODY_INVALID',
  'EVENT_INVALID',
  'EMITTER_CLOSED',
  'TOPIC_MISCONFIGURED',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export interface ErrorContext {
  readonly [key: string]: string | number | boolean | undefined;
}

export interface TokenledgerErrorOptions {
  readonly cause?: unknown;
  readonly retriable?: boolean;
  readonly context?: ErrorContext;
}

export class TokenledgerError extends Error {
  readonly code: ErrorCode;
  readonly retriable: boolean;
  readonly context: ErrorContext;

  constructor(code: ErrorCode, message: string, options: TokenledgerErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TokenledgerError';
    this.code = code;
    this.retriable = options.retriable ?? false;
    this.context = options.context ?? {};
  }
}

export function isTokenledgerError(err: unknown, code?: ErrorCode): err is TokenledgerError {
  return err instanceof TokenledgerError && (code === undefined || err.code === code);
}

/**
 * ClickHouse error codes after which the same request may succeed if retried: the server was busy, a replica
 * or the network was briefly away, or a limit on concurrent work was hit. Classified by numeric code, never by
 * message text (langfuse's mistake). Names from ClickHouse's src/Common/ErrorCodes.cpp.
 */
const RETRIABLE_CLICKHOUSE_CODES: ReadonlySet<string> = new Set([
  '159', // TIMEOUT_EXCEEDED
  '202', // TOO_MANY_SIMULTANEOUS_QUERIES
  '203', // NO_FREE_CONNECTION
  '209', // SOCKET_TIMEOUT
  '210', // NETWORK_ERROR
  '241', // MEMORY_LIMIT_EXCEEDED
  '242', // TABLE_IS_READ_ONLY
  '252', // TOO_MANY_PARTS
  '285', // TOO_FEW_LIVE_REPLICAS
  '319', // UNKNOWN_STATUS_OF_INSERT
  '425', // SYSTEM_ERROR
  '439', // CANNOT_SCHEDULE_TASK
  '999', // KEEPER_EXCEPTION
]);

/** Node socket errors that mean "the server was not there", worth a retry with backoff. */
const RETRIABLE_SOCKET_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
]);

export interface ClickHouseFailure {
  readonly retriable: boolean;
  /** ClickHouse's numeric code as a string, or the socket error code, or 'UNKNOWN'. */
  readonly code: string;
  readonly kind: 'server' | 'connection' | 'timeout' | 'unknown';
}

/** Classifies a failure from `@clickhouse/client` by its code (STYLE.md: never by message substrings). */
export function classifyClickHouseError(err: unknown): ClickHouseFailure {
  if (err instanceof ClickHouseError) {
    return { retriable: RETRIABLE_CLICKHOUSE_CODES.has(err.code), code: err.code, kind: 'server' };
  }
  const code = errorCode(err);
  if (code !== undefined && RETRIABLE_SOCKET_CODES.has(code)) {
    return { retriable: true, code, kind: 'connection' };
  }
  if (err instanceof Error && err.message === 'Timeout error.') {
    // @clickhouse/client rejects with exactly this message when request_timeout elapses; it has no code.
    return { retriable: true, code: 'TIMEOUT', kind: 'timeout' };
  }
  return { retriable: false, code: code ?? 'UNKNOWN', kind: 'unknown' };
}

function errorCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string') {
    return err.code;
  }
  if (err instanceof Error && err.cause !== undefined) return errorCode(err.cause);
  return undefined;
}
