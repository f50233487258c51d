/**
 * ClickHouse's HTTP interface in front of the embedded engine: the inverse of @clickhouse/client's HTTP
 * connection, not a database of our own. Serves /ping, queries (URL or body) in any output format, inserts with
 * a body (gzip/deflate/br request bodies too), param_* query parameters, settings as URL parameters,
 * session_id, database, basic auth, ClickHouse's error format and headers, streamed results, and concurrent
 * requests. Protocol details live in protocol.ts.
 */
import http from 'node:http';
import os from 'node:os';
import zlib from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { Logger } from '../../lib/logger';
import type { Engine, EngineSession } from './engine';
import type { EndpointRequest, EngineFailure, Summary } from './protocol';
import {
  ProtocolError,
  assembleQuery,
  contentType,
  describeEngineError,
  errorBody,
  explicitFormat,
  httpStatusFor,
  midStreamException,
  parseMultipart,
  parseRequest,
  planRawInsert,
  preludeStatements,
  returnsRows,
  streamHeaderLines,
  summaryHeader,
} from './protocol';

export interface EndpointOptions {
  readonly engine: Engine;
  readonly logger: Logger;
  /** user → password. A request naming another user, or the wrong password, gets AUTHENTICATION_FAILED. */
  readonly users: ReadonlyMap<string, string>;
  /**
   * Settings applied to every query before the request's own, to match a ClickHouse server's defaults where
   * the embedded engine differs (it defaults to async_insert = 1; a server defaults to 0).
   */
  readonly serverDefaults?: Readonly<Record<string, string>>;
}

interface NamedSession {
  readonly session: EngineSession;
  busy: boolean;
  timer: NodeJS.Timeout | undefined;
}

const SERVER_DEFAULTS = { async_insert: '0' };
const TIMEZONE = 'UTC';

export interface Endpoint {
  readonly server: http.Server;
  /** Stops accepting connections, waits for requests in flight, closes named sessions. */
  close(): Promise<void>;
}

export function createEndpoint(options: EndpointOptions): Endpoint {
  const { engine, users } = options;
  const log = options.logger.child({ module: 'clickhouse-endpoint' });
  const defaults = options.serverDefaults ?? SERVER_DEFAULTS;
  const displayName = os.hostname();
  const sessions = new Map<string, NamedSession>();
  let inFlight = 0;
  let idle: (() => void) | undefined;

  const server = http.createServer((req, res) => {
    inFlight++;
    handle(req, res)
      .catch((err: unknown) => {
        log.error({ err }, 'request handler failed');
        if (!res.headersSent) res.writeHead(500);
        res.end();
      })
      .finally(() => {
        inFlight--;
        if (inFlight === 0) idle?.();
      });
  });
  server.keepAliveTimeout = 10_000;

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const started = process.hrtime.bigint();
    if (url.pathname === '/ping' || url.pathname === '/replicas_status') {
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=UTF-8' });
      res.end('Ok.\n');
      return;
    }
    if (url.pathname !== '/' && url.pathname !== '/query') {
      return sendError(
        res,
        { code: 0, name: 'NOT_FOUND', text: `There is no handle ${url.pathname}` },
        undefined,
        404,
      );
    }
    let request: EndpointRequest | undefined;
    try {
      const body = await readBody(req);
      let extraParams: Record<string, string> = {};
      let bodyQuery: Buffer = body;
      const ctype = req.headers['content-type'] ?? '';
      if (/^multipart\/form-data/i.test(ctype)) {
        const parts = parseMultipart(body, ctype);
        extraParams = parts.params;
        bodyQuery = Buffer.from(parts.query, 'utf8');
      }
      request = parseRequest(url.searchParams, req.headers, extraParams);
      authenticate(request);
      if (req.method === 'GET' && url.searchParams.get('query') === null) {
        res.writeHead(200, { 'Content-Type': 'text/plain; charset=UTF-8' });
        res.end('Ok.\n');
        return;
      }
      await withSession(request, async (session) => {
        const prelude = preludeStatements(request as EndpointRequest, defaults);
        if (prelude.length > 0) await session.run(prelude.join('; '), 'TabSeparated');
        await execute(req, res, request as EndpointRequest, session, bodyQuery);
      });
      log.debug(
        {
          queryId: request.queryId,
          ms: Number(process.hrtime.bigint() - started) / 1e6,
          status: res.statusCode,
        },
        'request done',
      );
    } catch (err) {
      const failure = describeEngineError(err);
      const level = httpStatusFor(failure.name) >= 500 ? 'warn' : 'debug';
      log[level]({ queryId: request?.queryId, code: failure.code, name: failure.name }, 'request failed');
      if (res.headersSent) {
        // The response has started: ClickHouse's in-stream exception block, then close.
        const tag = res.getHeader('x-clickhouse-exception-tag');
        if (typeof tag === 'string')
          writeAndEnd(res, midStreamException(`${failure.text} (version ${engine.version})`, tag));
        else res.destroy();
        return;
      }
      sendError(res, failure, request?.queryId);
    }
  }

  function authenticate(request: EndpointRequest): void {
    const expected = users.get(request.credentials.user);
    if (expected === undefined || expected !== request.credentials.password) {
      throw new ProtocolError(
        516,
        'AUTHENTICATION_FAILED',
        `${request.credentials.user}: Authentication failed: password is incorrect, or there is no user with such name`,
      );
    }
  }

  async function withSession<T>(request: EndpointRequest, fn: (s: EngineSession) => Promise<T>): Promise<T> {
    if (request.sessionId === undefined) {
      const session = engine.openSession();
      try {
        return await fn(session);
      } finally {
        session.close();
      }
    }
    const id = request.sessionId;
    let named = sessions.get(id);
    if (named === undefined) {
      if (request.sessionCheck) {
        throw new ProtocolError(372, 'SESSION_NOT_FOUND', `Session ${id} not found`);
      }
      named = { session: engine.openSession(), busy: false, timer: undefined };
      sessions.set(id, named);
    }
    if (named.busy) {
      throw new ProtocolError(373, 'SESSION_IS_LOCKED', `Session ${id} is locked by a concurrent client`);
    }
    named.busy = true;
    if (named.timer !== undefined) clearTimeout(named.timer);
    try {
      return await fn(named.session);
    } finally {
      named.busy = false;
      const current = named;
      current.timer = setTimeout(() => {
        if (!current.busy && sessions.get(id) === current) {
          sessions.delete(id);
          current.session.close();
        }
      }, request.sessionTimeoutSeconds * 1000);
      current.timer.unref();
    }
  }

  async function execute(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    request: EndpointRequest,
    session: EngineSession,
    body: Buffer,
  ): Promise<void> {
    const common = {
      'X-ClickHouse-Query-Id': request.queryId,
      'X-ClickHouse-Timezone': TIMEZONE,
      'X-ClickHouse-Server-Display-Name': displayName,
      'Keep-Alive': 'timeout=10',
    };
    const rawInsert = body.length > 0 ? planRawInsert(request.query) : undefined;
    if (rawInsert !== undefined) {
      const r = await session.insertRaw(rawInsert, body);
      res.writeHead(200, {
        ...common,
        'Content-Type': 'text/plain; charset=UTF-8',
        'X-ClickHouse-Summary': summaryHeader({
          readRows: r.rowsWritten,
          readBytes: body.length,
          writtenRows: r.rowsWritten,
          writtenBytes: r.bytesWritten,
          resultRows: 0,
          resultBytes: 0,
          elapsedSeconds: r.elapsedSeconds,
        }),
      });
      res.end();
      return;
    }
    const sql = assembleQuery(request.query, body.toString('utf8'));
    if (sql.trim() === '') throw new ProtocolError(62, 'SYNTAX_ERROR', 'Empty query');
    if (req.method === 'GET' && !returnsRows(sql)) {
      throw new ProtocolError(
        164,
        'READONLY',
        'Cannot execute query in readonly mode. For queries over HTTP, method GET implies readonly. You should use method POST for modifying queries',
      );
    }
    const format = explicitFormat(sql) ?? request.defaultFormat ?? 'TabSeparated';
    const headerLines = streamHeaderLines(format);
    const encoding = request.compressResponse ? pickEncoding(req.headers['accept-encoding']) : undefined;
    const headers = { ...common, 'X-ClickHouse-Format': format, 'Content-Type': contentType(format) };

    if (returnsRows(sql) && headerLines !== undefined && !request.waitEndOfQuery) {
      await streamResult(res, session, sql, format, headerLines, encoding, headers);
      return;
    }
    const r = await session.run(sql, format);
    const summary: Summary = {
      readRows: r.rowsRead,
      readBytes: r.bytesRead,
      writtenRows: 0,
      writtenBytes: 0,
      resultRows: 0,
      resultBytes: r.bytes.byteLength,
      elapsedSeconds: r.elapsedSeconds,
    };
    const out = encoding === undefined ? Buffer.from(r.bytes) : compress(Buffer.from(r.bytes), encoding);
    res.writeHead(200, {
      ...headers,
      'X-ClickHouse-Summary': summaryHeader(summary),
      ...(encoding === undefined ? {} : { 'Content-Encoding': encoding }),
      'Content-Length': out.length,
    });
    res.end(out);
  }

  async function streamResult(
    res: http.ServerResponse,
    session: EngineSession,
    sql: string,
    format: string,
    headerLines: number,
    encoding: string | undefined,
    headers: Record<string, string>,
  ): Promise<void> {
    const abort = new AbortController();
    const onClose = (): void => {
      if (!res.writableFinished) abort.abort();
    };
    res.on('close', onClose);
    const chunks = session.stream(sql, format, abort.signal)[Symbol.asyncIterator]();
    // Pull the first chunk before answering, so errors found at planning time get a proper status code.
    const first = await chunks.next();
    res.setHeader('X-ClickHouse-Exception-Tag', randomBytes(8).toString('hex'));
    res.writeHead(200, {
      ...headers,
      'X-ClickHouse-Summary': summaryHeader({
        readRows: 0,
        readBytes: 0,
        writtenRows: 0,
        writtenBytes: 0,
        resultRows: 0,
        resultBytes: 0,
        elapsedSeconds: 0,
      }),
      ...(encoding === undefined ? {} : { 'Content-Encoding': encoding }),
    });
    const sink = encoding === undefined ? res : pipeCompressed(res, encoding);
    try {
      let result = first;
      let index = 0;
      while (result.done !== true) {
        const bytes = Buffer.from(result.value);
        const payload = index > 0 && headerLines > 0 ? dropLines(bytes, headerLines) : bytes;
        index++;
        if (!sink.write(payload)) await once(sink, 'drain');
        if (abort.signal.aborted) return;
        result = await chunks.next();
      }
      sink.end();
    } catch (err) {
      if (sink !== res) {
        // Flush what was compressed so far, then append the exception block through the same encoder.
        const failure = describeEngineError(err);
        const tag = res.getHeader('x-clickhouse-exception-tag') as string;
        sink.end(midStreamException(`${failure.text} (version ${engine.version})`, tag));
        return;
      }
      throw err;
    } finally {
      res.off('close', onClose);
    }
  }

  function sendError(
    res: http.ServerResponse,
    failure: EngineFailure,
    queryId: string | undefined,
    status?: number,
  ): void {
    const text = errorBody(failure, engine.version);
    res.writeHead(status ?? httpStatusFor(failure.name), {
      'Content-Type': 'text/plain; charset=UTF-8',
      'X-ClickHouse-Exception-Code': String(failure.code),
      ...(queryId === undefined ? {} : { 'X-ClickHouse-Query-Id': queryId }),
      'X-ClickHouse-Server-Display-Name': displayName,
      'Content-Length': Buffer.byteLength(text),
    });
    res.end(text);
  }

  return {
    server,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      if (inFlight > 0) await new Promise<void>((resolve) => (idle = resolve));
      await closed;
      for (const [id, s] of sessions) {
        if (s.timer !== undefined) clearTimeout(s.timer);
        s.session.close();
        sessions.delete(id);
      }
    },
  };
}

function writeAndEnd(res: http.ServerResponse, data: Buffer): void {
  res.end(data);
}

function dropLines(buf: Buffer, lines: number): Buffer {
  let offset = 0;
  for (let i = 0; i < lines; i++) {
    const nl = buf.indexOf(0x0a, offset);
    if (nl < 0) return Buffer.alloc(0);
    offset = nl + 1;
  }
  return buf.subarray(offset);
}

async function readBody(req: http.IncomingMessage): Promise<Buffer> {
  const enc = (req.headers['content-encoding'] ?? '').toLowerCase().trim();
  let source: NodeJS.ReadableStream = req;
  if (enc === 'gzip' || enc === 'x-gzip') source = req.pipe(zlib.createGunzip());
  else if (enc === 'deflate') source = req.pipe(zlib.createInflate());
  else if (enc === 'br') source = req.pipe(zlib.createBrotliDecompress());
  else if (enc !== '' && enc !== 'identity') {
    req.resume();
    throw new ProtocolError(
      415,
      'UNSUPPORTED_MEDIA_TYPE',
      `Unknown Content-Encoding: ${enc} (the local endpoint supports gzip, deflate, br)`,
    );
  }
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of source) chunks.push(chunk as Buffer);
  } catch (err) {
    throw new ProtocolError(
      354,
      'CANNOT_DECOMPRESS',
      `Cannot decompress request body (${enc}): ${(err as Error).message}`,
    );
  }
  return Buffer.concat(chunks);
}

function pickEncoding(accept: string | undefined): string | undefined {
  if (accept === undefined) return undefined;
  const offered = accept.split(',').map((s) => s.trim().split(';')[0]?.toLowerCase());
  return ['gzip', 'br', 'deflate'].find((e) => offered.includes(e));
}

function compress(buf: Buffer, encoding: string): Buffer {
  if (encoding === 'gzip') return zlib.gzipSync(buf);
  if (encoding === 'br') return zlib.brotliCompressSync(buf);
  return zlib.deflateSync(buf);
}

function pipeCompressed(res: http.ServerResponse, encoding: string): NodeJS.WritableStream & zlib.Zlib {
  const z =
    encoding === 'gzip'
      ? zlib.createGzip()
      : encoding === 'br'
        ? zlib.createBrotliCompress()
        : zlib.createDeflate();
  z.pipe(res);
  return z;
}
