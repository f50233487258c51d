/**
 * ClickHouse HTTP interface, the protocol side: pure functions that turn an HTTP request into what the engine
 * must run, and engine errors into ClickHouse's HTTP error responses. No I/O here, so it is unit-tested alone.
 *
 * Reference: https://clickhouse.com/docs/interfaces/http and ClickHouse's src/Server/HTTPHandler.cpp,
 * src/Server/HTTP/exceptionCodeToHTTPStatus.cpp (status mapping, transcribed below by error name).
 */
import { randomUUID } from 'node:crypto';

/** URL parameters the HTTP layer consumes itself; every other parameter is a ClickHouse setting. */
const RESERVED_PARAMS = new Set([
  'query',
  'database',
  'default_format',
  'session_id',
  'session_timeout',
  'session_check',
  'query_id',
  'user',
  'password',
  'quota_key',
  'compress',
  'decompress',
  'buffer_size',
  'wait_end_of_query',
  'role',
  'stacktrace',
  'client_protocol_version',
  'close_session',
]);

/**
 * Settings that only mean something to an HTTP server (progress headers, response compression, buffering).
 * The endpoint honours the ones it can (compression, wait_end_of_query) and never forwards them to the engine,
 * which would reject them as unknown.
 */
const HTTP_ONLY_SETTINGS = new Set([
  'enable_http_compression',
  'http_zlib_compression_level',
  'send_progress_in_http_headers',
  'http_headers_progress_interval_ms',
  'http_response_buffer_size',
  'http_wait_end_of_query',
  'http_native_compression_disable_checksumming_on_decompress',
  'http_response_compression_method',
  'cancel_http_readonly_queries_on_client_close',
  'http_write_exception_in_output_format',
]);

export interface Credentials {
  readonly user: string;
  readonly password: string;
}

export interface EndpointRequest {
  /** Query text from the `query` parameter ('' when the query is the body). */
  readonly query: string;
  readonly database: string | undefined;
  readonly defaultFormat: string | undefined;
  readonly sessionId: string | undefined;
  readonly sessionTimeoutSeconds: number;
  readonly sessionCheck: boolean;
  readonly queryId: string;
  readonly credentials: Credentials;
  /** `param_*` values, name without the prefix, text exactly as sent. */
  readonly params: Readonly<Record<string, string>>;
  /** Engine settings to apply to this query. */
  readonly settings: Readonly<Record<string, string>>;
  readonly compressResponse: boolean;
  readonly waitEndOfQuery: boolean;
}

export class ProtocolError extends Error {
  constructor(
    readonly code: number,
    readonly errorName: string,
    message: string,
  ) {
    super(message);
    this.name = 'ProtocolError';
  }
}

export type HeaderValue = string | string[] | undefined;

function header(headers: Readonly<Record<string, HeaderValue>>, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Credentials as ClickHouse reads them: X-ClickHouse-User/Key headers, Basic auth, or user/password params. */
export function readCredentials(
  search: URLSearchParams,
  headers: Readonly<Record<string, HeaderValue>>,
): Credentials {
  const hUser = header(headers, 'x-clickhouse-user');
  const hKey = header(headers, 'x-clickhouse-key');
  const auth = header(headers, 'authorization');
  const pUser = search.get('user');
  const pPassword = search.get('password');
  const sources = [
    hUser !== undefined || hKey !== undefined,
    auth !== undefined,
    pUser !== null || pPassword !== null,
  ];
  if (sources.filter(Boolean).length > 1) {
    throw new ProtocolError(
      516,
      'AUTHENTICATION_FAILED',
      'Invalid authentication: it is not allowed to use more than one authentication method at once (headers, Authorization, URL parameters)',
    );
  }
  if (auth !== undefined) {
    const m = /^Basic\s+(.+)$/i.exec(auth);
    if (m?.[1] === undefined) {
      throw new ProtocolError(
        516,
        'AUTHENTICATION_FAILED',
        'Invalid authentication: only Basic authorization is supported',
      );
    }
    const decoded = Buffer.from(m[1], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    return colon < 0
      ? { user: decoded, password: '' }
      : { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  return { user: hUser ?? pUser ?? 'default', password: hKey ?? pPassword ?? '' };
}

const SETTING_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const PARAM_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Splits URL parameters into the request's parts (query, session, params, settings). */
export function parseRequest(
  search: URLSearchParams,
  headers: Readonly<Record<string, HeaderValue>>,
): EndpointRequest {
  for (const flag of ['compress', 'decompress'] as const) {
    if (search.get(flag) === '1') {
      throw new ProtocolError(
        48,
        'NOT_IMPLEMENTED',
        `${flag}=1 (ClickHouse native block compression) is not supported by the local endpoint; use HTTP compression (Content-Encoding / enable_http_compression=1)`,
      );
    }
  }
  const params: Record<string, string> = {};
  const settings: Record<string, string> = {};
  let compressResponse = false;
  let waitEndOfQuery = false;
  let defaultFormat: string | undefined = header(headers, 'x-clickhouse-format');
  for (const [key, value] of search) {
    if (key.startsWith('param_')) {
      const name = key.slice('param_'.length);
      if (!PARAM_NAME.test(name)) {
        throw new ProtocolError(36, 'BAD_ARGUMENTS', `Invalid query parameter name: ${JSON.stringify(name)}`);
      }
      params[name] = value;
    } else if (key === 'default_format') {
      defaultFormat = value;
    } else if (key === 'wait_end_of_query' || key === 'http_wait_end_of_query') {
      waitEndOfQuery = value === '1' || value === 'true';
    } else if (key === 'enable_http_compression') {
      compressResponse = value === '1' || value === 'true';
    } else if (RESERVED_PARAMS.has(key) || HTTP_ONLY_SETTINGS.has(key)) {
      continue;
    } else {
      if (!SETTING_NAME.test(key)) {
        throw new ProtocolError(115, 'UNKNOWN_SETTING', `Unknown setting ${JSON.stringify(key)}`);
      }
      settings[key] = value;
    }
  }
  const timeout = search.get('session_timeout');
  const sessionTimeoutSeconds = timeout === null ? 60 : Number(timeout);
  if (!Number.isFinite(sessionTimeoutSeconds) || sessionTimeoutSeconds < 0 || sessionTimeoutSeconds > 3600) {
    throw new ProtocolError(
      36,
      'BAD_ARGUMENTS',
      `Invalid session timeout: '${String(timeout)}', valid values are from 0 to 3600 seconds`,
    );
  }
  const database = search.get('database') ?? header(headers, 'x-clickhouse-database');
  const sessionId = search.get('session_id') ?? undefined;
  return {
    query: search.get('query') ?? '',
    database: database === '' ? undefined : database,
    defaultFormat,
    sessionId: sessionId === '' ? undefined : sessionId,
    sessionTimeoutSeconds,
    sessionCheck: search.get('session_check') === '1',
    queryId: search.get('query_id') ?? header(headers, 'x-clickhouse-query-id') ?? randomUUID(),
    credentials: readCredentials(search, headers),
    params,
    settings,
    compressResponse,
    waitEndOfQuery,
  };
}

/** Adds query parameters that came in a multipart body, with the same name check as URL parameters. */
export function withBodyParams(
  req: EndpointRequest,
  extra: Readonly<Record<string, string>>,
): EndpointRequest {
  for (const name of Object.keys(extra)) {
    if (!PARAM_NAME.test(name)) {
      throw new ProtocolError(36, 'BAD_ARGUMENTS', `Invalid query parameter name: ${JSON.stringify(name)}`);
    }
  }
  return { ...req, params: { ...req.params, ...extra } };
}

/** Full query text as ClickHouse assembles it: the `query` parameter, a newline, then the body. */
export function assembleQuery(queryParam: string, body: string): string {
  if (queryParam === '') return body;
  if (body === '') return queryParam;
  return `${queryParam}\n${body}`;
}

/** A ClickHouse SQL string literal holding `value` verbatim. */
export function sqlStringLiteral(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** Backquoted identifier. */
export function sqlIdentifier(value: string): string {
  return '`' + value.replace(/\\/g, '\\\\').replace(/`/g, '\\`') + '`';
}

/**
 * The statements that set the request's context on a fresh engine session before its query runs:
 * current database, settings, and query parameters (`SET param_x = '<text>'` gives the engine the parameter's
 * text exactly as the HTTP `param_x` would, including its escaping rules).
 */
export function preludeStatements(
  req: EndpointRequest,
  serverDefaults: Readonly<Record<string, string>>,
  options: { readonly readonly?: boolean } = {},
): string[] {
  const out: string[] = [];
  if (req.database !== undefined) out.push(`USE ${sqlIdentifier(req.database)}`);
  for (const [k, v] of Object.entries({ ...serverDefaults, ...req.settings })) {
    out.push(`SET ${k} = ${sqlStringLiteral(v)}`);
  }
  for (const [k, v] of Object.entries(req.params)) {
    out.push(`SET param_${k} = ${sqlStringLiteral(v)}`);
  }
  // HTTP GET is read-only on a server (readonly = 2: reads and settings only); the engine enforces it.
  if (options.readonly === true) out.push('SET readonly = 2');
  return out;
}

/**
 * True when `sql` holds more than one statement (a `;` outside strings, quoted names and comments, followed
 * by more than blanks and comments). A server refuses those over HTTP. For an INSERT, only the part before the
 * data (FORMAT X, or VALUES) is the statement.
 */
export function hasMultipleStatements(sql: string): boolean {
  let text = sql;
  if (/^INSERT\b/i.test(stripLeading(sql))) {
    const m = /\b(FORMAT\s+[A-Za-z0-9]+|VALUES)\b/i.exec(sql);
    if (m !== null) text = sql.slice(0, m.index);
  }
  const n = text.length;
  let i = 0;
  let seenSemicolon = false;
  while (i < n) {
    const c = text[i] ?? '';
    if (c === "'" || c === '"' || c === '`') {
      if (seenSemicolon) return true;
      i++;
      while (i < n && text[i] !== c) i += text[i] === '\\' ? 2 : 1;
      i++;
    } else if ((c === '-' && text[i + 1] === '-') || c === '#') {
      const nl = text.indexOf('\n', i);
      i = nl < 0 ? n : nl + 1;
    } else if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      i = end < 0 ? n : end + 2;
    } else if (c === ';') {
      seenSemicolon = true;
      i++;
    } else {
      if (seenSemicolon && !/\s/.test(c)) return true;
      i++;
    }
  }
  return false;
}

/** Removes leading comments and whitespace, for classifying a statement by its first keyword. */
function stripLeading(sql: string): string {
  let s = sql;
  for (;;) {
    const t = s.replace(/^\s+/, '');
    if (t.startsWith('--') || t.startsWith('#')) {
      const nl = t.indexOf('\n');
      s = nl < 0 ? '' : t.slice(nl + 1);
    } else if (t.startsWith('/*')) {
      const end = t.indexOf('*/');
      s = end < 0 ? '' : t.slice(end + 2);
    } else {
      return t;
    }
  }
}

/** True when the statement returns rows (SELECT and friends), false for INSERT, DDL, SET, ... */
export function returnsRows(sql: string): boolean {
  return /^(\(|SELECT\b|WITH\b|SHOW\b|DESC\b|DESCRIBE\b|EXPLAIN\b|EXISTS\b|CHECK\b|VALUES\b)/i.test(
    stripLeading(sql),
  );
}

/** The FORMAT clause at the end of a row-returning statement, if any. */
export function explicitFormat(sql: string): string | undefined {
  if (!returnsRows(sql)) return undefined;
  return /\bFORMAT\s+([A-Za-z][A-Za-z0-9]*)\s*;?\s*$/i.exec(sql)?.[1];
}

export interface RawInsertPlan {
  readonly table: string;
  readonly columns: readonly string[] | undefined;
  readonly format:
    | 'JSONEachRow'
    | 'JSONCompactEachRow'
    | 'CSV'
    | 'CSVWithNames'
    | 'TSV'
    | 'TabSeparated'
    | 'TSVWithNames'
    | 'TabSeparatedWithNames';
}

const RAW_INSERT_FORMATS = new Map<string, RawInsertPlan['format']>(
  (
    [
      'JSONEachRow',
      'JSONCompactEachRow',
      'CSV',
      'CSVWithNames',
      'TSV',
      'TabSeparated',
      'TSVWithNames',
      'TabSeparatedWithNames',
    ] as const
  ).map((f) => [f.toLowerCase(), f]),
);

const IDENT = '(?:`[A-Za-z0-9_]+`|[A-Za-z0-9_]+)';
const INSERT_RE = new RegExp(
  `^\\s*INSERT\\s+INTO\\s+(?:TABLE\\s+)?(${IDENT}(?:\\.${IDENT})?)\\s*(?:\\(([^()]*)\\))?\\s*FORMAT\\s+([A-Za-z]+)\\s*$`,
  'i',
);

/**
 * Recognises the plain `INSERT INTO db.table (cols) FORMAT X` + body shape that clients send for bulk inserts,
 * so the body can go to the engine as bytes (no string copy, the engine's parallel parser). Anything else
 * returns undefined and runs as ordinary SQL with the data appended.
 */
export function planRawInsert(queryParam: string): RawInsertPlan | undefined {
  const m = INSERT_RE.exec(queryParam);
  if (m === null) return undefined;
  const format = RAW_INSERT_FORMATS.get((m[3] ?? '').toLowerCase());
  if (format === undefined) return undefined;
  const unquote = (s: string): string => s.trim().replace(/^`(.*)`$/, '$1');
  const table = (m[1] ?? '').split('.').map(unquote).join('.');
  let columns: string[] | undefined;
  if (m[2] !== undefined) {
    columns = m[2].split(',').map(unquote);
    if (!columns.every((c) => /^[A-Za-z0-9_]+$/.test(c))) return undefined;
  }
  return { table, columns, format };
}

export interface InfileInsertPlan {
  /** `INSERT INTO t (cols)` without SETTINGS/FORMAT. */
  readonly target: string;
  readonly settings: string | undefined;
  readonly format: string;
}

const INSERT_FORMAT_RE =
  /^(\s*INSERT\s+INTO\s+[\s\S]*?)(\s+SETTINGS\s+[\s\S]*?)?\s+FORMAT\s+([A-Za-z0-9]+)\s*$/i;

/**
 * Any other `INSERT ... FORMAT X` whose data is the request body (Parquet, RowBinary, Native, Values, ...): the
 * body goes to the engine byte for byte through a temporary file, `INSERT ... FROM INFILE 'f' FORMAT X`.
 */
export function planInfileInsert(queryParam: string): InfileInsertPlan | undefined {
  const m = INSERT_FORMAT_RE.exec(queryParam);
  if (m?.[1] === undefined || m[3] === undefined) return undefined;
  return { target: m[1].trim(), settings: m[2]?.trim(), format: m[3] };
}

export function infileInsertSql(plan: InfileInsertPlan, file: string): string {
  const settings = plan.settings === undefined ? '' : ` ${plan.settings}`;
  return `${plan.target} FROM INFILE ${sqlStringLiteral(file)}${settings} FORMAT ${plan.format}`;
}

/**
 * Formats whose output can be streamed chunk by chunk: each engine chunk is a valid continuation because the
 * format has no document prefix or suffix. `headerLines` is how many lines a chunk repeats at its start (the
 * WithNames variants) and must be dropped from every chunk after the first. Other formats are buffered whole.
 */
const STREAMABLE: ReadonlyMap<string, number> = new Map([
  ['tabseparated', 0],
  ['tsv', 0],
  ['tabseparatedraw', 0],
  ['tsvraw', 0],
  ['raw', 0],
  ['csv', 0],
  ['jsoneachrow', 0],
  ['jsonlines', 0],
  ['ndjson', 0],
  ['jsonstringseachrow', 0],
  ['jsoncompacteachrow', 0],
  ['jsoncompactstringseachrow', 0],
  ['tskv', 0],
  ['rowbinary', 0],
  ['tabseparatedwithnames', 1],
  ['tsvwithnames', 1],
  ['csvwithnames', 1],
  ['jsoncompacteachrowwithnames', 1],
  ['jsoncompactstringseachrowwithnames', 1],
  ['tabseparatedwithnamesandtypes', 2],
  ['tsvwithnamesandtypes', 2],
  ['csvwithnamesandtypes', 2],
  ['jsoncompacteachrowwithnamesandtypes', 2],
  ['jsoncompactstringseachrowwithnamesandtypes', 2],
]);

export function streamHeaderLines(format: string): number | undefined {
  return STREAMABLE.get(format.toLowerCase());
}

/** Content-Type ClickHouse sends for a format. */
export function contentType(format: string): string {
  const f = format.toLowerCase();
  if (f.startsWith('json') || f === 'ndjson') {
    return f === 'json' || f === 'jsoncompact' || f === 'jsonstrings' || f === 'jsoncolumns'
      ? 'application/json; charset=UTF-8'
      : 'application/x-ndjson; charset=UTF-8';
  }
  if (f.startsWith('csv')) return 'text/csv; charset=UTF-8; header=' + (f === 'csv' ? 'absent' : 'present');
  if (f.startsWith('tabseparated') || f.startsWith('tsv')) return 'text/tab-separated-values; charset=UTF-8';
  if (f.startsWith('pretty') || f === 'vertical' || f === 'markdown' || f === 'values' || f === 'tskv') {
    return 'text/plain; charset=UTF-8';
  }
  return 'application/octet-stream';
}

/** HTTP status for an exception, by ClickHouse error name (exceptionCodeToHTTPStatus.cpp). */
const STATUS_BY_NAME: ReadonlyMap<string, number> = new Map([
  ['REQUIRED_PASSWORD', 401],
  ...['UNKNOWN_USER', 'WRONG_PASSWORD', 'AUTHENTICATION_FAILED', 'SET_NON_GRANTED_ROLE', 'ACCESS_DENIED'].map(
    (n) => [n, 403] as const,
  ),
  ...[
    'BAD_ARGUMENTS',
    'CANNOT_COMPILE_REGEXP',
    'CANNOT_PARSE_TEXT',
    'CANNOT_PARSE_ESCAPE_SEQUENCE',
    'CANNOT_PARSE_QUOTED_STRING',
    'CANNOT_PARSE_DATE',
    'CANNOT_PARSE_DATETIME',
    'CANNOT_PARSE_NUMBER',
    'CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING',
    'CANNOT_PARSE_IPV4',
    'CANNOT_PARSE_IPV6',
    'CANNOT_PARSE_INPUT_ASSERTION_FAILED',
    'CANNOT_PARSE_UUID',
    'DUPLICATE_COLUMN',
    'ILLEGAL_COLUMN',
    'UNKNOWN_ELEMENT_IN_AST',
    'UNKNOWN_TYPE_OF_AST_NODE',
    'THERE_IS_NO_COLUMN',
    'TOO_DEEP_AST',
    'TOO_BIG_AST',
    'UNEXPECTED_AST_STRUCTURE',
    'SYNTAX_ERROR',
    'INCORRECT_DATA',
    'TYPE_MISMATCH',
    'VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE',
  ].map((n) => [n, 400] as const),
  ...[
    'UNKNOWN_TABLE',
    'UNKNOWN_FUNCTION',
    'UNKNOWN_IDENTIFIER',
    'UNKNOWN_TYPE',
    'UNKNOWN_STORAGE',
    'UNKNOWN_DATABASE',
    'UNKNOWN_SETTING',
    'UNKNOWN_DIRECTION_OF_SORTING',
    'UNKNOWN_AGGREGATE_FUNCTION',
    'UNKNOWN_FORMAT',
    'UNKNOWN_DATABASE_ENGINE',
    'UNKNOWN_TYPE_OF_QUERY',
    'UNKNOWN_ROLE',
  ].map((n) => [n, 404] as const),
  ['QUERY_IS_TOO_LARGE', 413],
  ['NOT_IMPLEMENTED', 501],
  ['SOCKET_TIMEOUT', 503],
  ['CANNOT_OPEN_FILE', 503],
  ['CANNOT_SCHEDULE_TASK', 503],
  ['HTTP_LENGTH_REQUIRED', 411],
  ['TIMEOUT_EXCEEDED', 408],
  ['UNSUPPORTED_MEDIA_TYPE', 415],
]);

export function httpStatusFor(errorName: string): number {
  return STATUS_BY_NAME.get(errorName) ?? 500;
}

export interface EngineFailure {
  readonly code: number;
  readonly name: string;
  /** `Code: N. DB::Exception: ... (NAME)` without the version suffix. */
  readonly text: string;
}

/** Reads code and name out of an engine error ("Code: 62. DB::Exception: ... (SYNTAX_ERROR)"). */
export function describeEngineError(err: unknown): EngineFailure {
  if (err instanceof ProtocolError) {
    return {
      code: err.code,
      name: err.errorName,
      text: `Code: ${err.code}. DB::Exception: ${err.message}. (${err.errorName})`,
    };
  }
  const message = err instanceof Error ? err.message : String(err);
  const code = /Code:\s*(\d+)\./.exec(message)?.[1];
  const names = [...message.matchAll(/\(([A-Z][A-Z0-9_]+)\)/g)];
  const name = names.length > 0 ? (names[names.length - 1]?.[1] ?? 'UNKNOWN_EXCEPTION') : 'UNKNOWN_EXCEPTION';
  if (code === undefined) {
    return {
      code: 1001,
      name: 'STD_EXCEPTION',
      text: `Code: 1001. DB::Exception: ${message.trim()}. (STD_EXCEPTION)`,
    };
  }
  return { code: Number(code), name, text: message.trim() };
}

/** The error body ClickHouse writes: the exception text, the server version, and a newline. */
export function errorBody(failure: EngineFailure, version: string): string {
  return `${failure.text} (version ${version})\n`;
}

/**
 * An exception that happens after the response has started (ClickHouse 25.11+ framing, which
 * @clickhouse/client parses with `extractErrorAtTheEndOfChunk`): the tag announced in the
 * X-ClickHouse-Exception-Tag header brackets the message and its length. Written as one chunk.
 */
export function midStreamException(message: string, tag: string): Buffer {
  const msg = Buffer.from(`${message}\n`, 'utf8');
  return Buffer.concat([
    Buffer.from(`\r\n__exception__\r\n${tag}\n`, 'utf8'),
    msg,
    Buffer.from(`${msg.length} ${tag}\r\n__exception__\r\n`, 'utf8'),
  ]);
}

export interface Summary {
  readonly readRows: number;
  readonly readBytes: number;
  readonly writtenRows: number;
  readonly writtenBytes: number;
  readonly resultRows: number;
  readonly resultBytes: number;
  readonly elapsedSeconds: number;
}

/** The X-ClickHouse-Summary header value (numbers as strings, as ClickHouse sends them). */
export function summaryHeader(s: Summary): string {
  return JSON.stringify({
    read_rows: String(s.readRows),
    read_bytes: String(s.readBytes),
    written_rows: String(s.writtenRows),
    written_bytes: String(s.writtenBytes),
    total_rows_to_read: '0',
    result_rows: String(s.resultRows),
    result_bytes: String(s.resultBytes),
    elapsed_ns: String(Math.round(s.elapsedSeconds * 1e9)),
  });
}

/**
 * multipart/form-data bodies (clickhouse-js sends query parameters this way when they do not fit in the URL):
 * the `query` part and `param_*` parts. External-table file parts are not supported by the local endpoint.
 */
export function parseMultipart(
  body: Buffer,
  contentTypeHeader: string,
): { query: string; params: Record<string, string> } {
  const boundary = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentTypeHeader);
  const b = boundary?.[1] ?? boundary?.[2];
  if (b === undefined) throw new ProtocolError(36, 'BAD_ARGUMENTS', 'multipart/form-data without a boundary');
  const text = body.toString('utf8');
  const params: Record<string, string> = {};
  let query = '';
  for (const part of text.split(`--${b}`)) {
    const sep = part.indexOf('\r\n\r\n');
    if (sep < 0) continue;
    const head = part.slice(0, sep);
    let value = part.slice(sep + 4);
    if (value.endsWith('\r\n')) value = value.slice(0, -2);
    const name = /name="([^"]*)"/i.exec(head)?.[1];
    if (name === undefined) continue;
    if (/filename=/i.test(head)) {
      throw new ProtocolError(
        48,
        'NOT_IMPLEMENTED',
        'external tables (multipart file parts) are not supported by the local endpoint',
      );
    }
    if (name === 'query') query = value;
    else if (name.startsWith('param_')) params[name.slice('param_'.length)] = value;
    else
      throw new ProtocolError(
        36,
        'BAD_ARGUMENTS',
        `Unexpected multipart field ${JSON.stringify(name)} (expected query and param_*)`,
      );
  }
  return { query, params };
}
