/**
 * ClickHouse's HTTP interface in front of the embedded engine: the inverse of @clickhouse/client's HTTP
 * connection, not a database of our own. Serves /ping, queries (URL or body) in any output format, inserts with
 * a body in any format (gzip/deflate/br request bodies too), param_* query parameters, settings as URL
 * parameters, session_id, database, basic auth, ClickHouse's error format and headers, streamed results, and
 * concurrent requests. Protocol details live in protocol.ts; docs/decisions/0001 says what is not served.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { promisify } from 'node:util';
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import type { Logger } from '../../lib/logger';
import type { Engine, EngineSession } from './engine';
import type { EndpointRequest, EngineFailure } from './protocol';
import {
  ProtocolError,
  assembleQuery,
  contentType,
  describeEngineError,
  errorBody,
  explicitFormat,
  hasMultipleStatements,
  httpStatusFor,
  infileInsertSql,
  midStreamException,
  parseMultipart,
  parseRequest,
  planInfileInsert,
  planRawInsert,
  preludeStatements,
  returnsRows,
  sqlIdentifier,
  sqlStringLiteral,
  streamHeaderLines,
  summaryHeader,
  withBodyParams,
} from './protocol';

export interface EndpointOptions {
  readonly engine: Engine;
  readonly logger: Logger;
  /** user → password. A request naming another user, or the wrong password, gets AUTHENTICATION_FAILED. */
  readonly users: ReadonlyMap<string, string>;
  /**
   * Settings applied to every new engine session, to match a ClickHouse server's defaults where the embedded
   * engine differs (it defaults to async_insert = 1; a server defaults to 0).
   */
  readonly serverDefaults?: Readonly<Record<string, string>>;
  /** Largest request body accepted, after decompression. */
  readonly maxBodyBytes?: number;
}

interface NamedSession {
  readonly session: EngineSession;
  busy: boolean;
  timer: NodeJS.Timeout | undefined;
}

const SERVER_DEFAULTS = { async_insert: '0' };
const gzip = promisify(zlib.gzip);
const deflate = promisify(zlib.deflate);
const brotli = promisify(zlib.brotliCompress);

export interface Endpoint {
  readonly server: http.Server;
  /** Stops accepting connections, waits for requests in flight, closes named sessions. */
  close(): Promise<void>;
}

export function createEndpoint(options: EndpointOptions): Endpoint {
  const { engine, users } = options;
  const log = options.logger.child({ module: 'clickhouse-endpoint' });
  const defaults = options.serverDefaults ?? SERVER_DEFAULTS;
  const maxBodyBytes = options.maxBodyBytes ?? 1024 * 1024 * 1024;
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
      req.resume();
      sendError(
        res,
        { code: 0, name: 'NOT_FOUND', text: `There is no handle ${url.pathname}` },
        undefined,
        404,
      );
      return;
    }
    if (req.method === 'GET' && url.searchParams.get('query') === null) {
      req.resume();
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=UTF-8' });
      res.end('Ok.\n');
      return;
    }
    let request: EndpointRequest | undefined;
    try {
      request = parseRequest(url.searchParams, req.headers);
      // Credentials come from headers or the URL: check them before reading (and decompressing) any body.
      authenticate(request);
      const body = await readBody(req, maxBodyBytes);
      let queryBody = body;
      const ctype = req.headers['content-type'] ?? '';
      if (/^multipart\/form-data/i.test(ctype)) {
        const parts = parseMultipart(body, ctype);
        request = withBodyParams(request, parts.params);
        queryBody = Buffer.from(parts.query, 'utf8');
      }
      const r = request;
      await withSession(r, (session, fresh) => execute(req, res, r, session, fresh, queryBody));
      log.debug(
        { queryId: r.queryId, ms: Number(process.hrtime.bigint() - started) / 1e6, status: res.statusCode },
        'request done',
      );
    } catch (err) {
      req.resume();
      const failure = describeEngineError(err);
      const level = httpStatusFor(failure.name) >= 500 ? 'warn' : 'debug';
      log[level]({ queryId: request?.queryId, code: failure.code, name: failure.name }, 'request failed');
      if (res.headersSent) {
        // The response has started: ClickHouse's in-stream exception block, then close.
        const tag = res.getHeader('x-clickhouse-exception-tag');
        if (typeof tag === 'string' && !res.writableEnded)
          res.end(midStreamException(`${failure.text} (version ${engine.version})`, tag));
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

  /** Runs `fn` on a fresh engine session, or on the named one (locked for the request, expiring when idle). */
  async function withSession<T>(
    request: EndpointRequest,
    fn: (s: EngineSession, fresh: boolean) => Promise<T>,
  ): Promise<T> {
    if (request.sessionId === undefined) {
      const session = engine.openSession();
      try {
        return await fn(session, true);
      } finally {
        session.close();
      }
    }
    const id = request.sessionId;
    let named = sessions.get(id);
    let created = false;
    if (named === undefined) {
      if (request.sessionCheck) {
        throw new ProtocolError(372, 'SESSION_NOT_FOUND', `Session ${id} not found`);
      }
      named = { session: engine.openSession(), busy: false, timer: undefined };
      sessions.set(id, named);
      created = true;
    }
    if (named.busy) {
      throw new ProtocolError(373, 'SESSION_IS_LOCKED', `Session ${id} is locked by a concurrent client`);
    }
    named.busy = true;
    if (named.timer !== undefined) clearTimeout(named.timer);
    try {
      return await fn(named.session, created);
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

  /**
   * Applies the request's database, settings and parameters to the session. On a named session they apply to
   * this request only, as on a server: what they change is read first and put back afterwards.
   */
  async function applyContext(
    session: EngineSession,
    request: EndpointRequest,
    fresh: boolean,
    readonly: boolean,
  ): Promise<string[]> {
    const restore: string[] = [];
    if (!fresh && (request.database !== undefined || Object.keys(request.settings).length > 0)) {
      const names = Object.keys(request.settings).map(sqlStringLiteral).join(', ');
      const current = await session.run(
        `SELECT currentDatabase() AS name, '' AS value, 1 AS changed UNION ALL SELECT name, value, changed FROM system.settings WHERE name IN (${names === '' ? "''" : names})`,
        'JSONEachRow',
      );
      const rows = Buffer.from(current.bytes)
        .toString('utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as { name: string; value: string; changed: number | boolean });
      const [db, ...settings] = rows;
      if (request.database !== undefined && db !== undefined) restore.push(`USE ${sqlIdentifier(db.name)}`);
      for (const s of settings) {
        restore.push(
          s.changed === 1 || s.changed === true
            ? `SET ${s.name} = ${sqlStringLiteral(s.value)}`
            : `SET ${s.name} = DEFAULT`,
        );
      }
    }
    const prelude = preludeStatements(request, fresh ? defaults : {}, { readonly });
    if (prelude.length > 0) await session.run(prelude.join('; '), 'TabSeparated');
    return restore;
  }

  async function execute(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    request: EndpointRequest,
    session: EngineSession,
    fresh: boolean,
    body: Buffer,
  ): Promise<void> {
    const isGet = req.method === 'GET';
    const bodyIsData = request.query !== '' && body.length > 0;
    const raw = bodyIsData ? planRawInsert(request.query) : undefined;
    const infile = bodyIsData && raw === undefined ? planInfileInsert(request.query) : undefined;
    const sql =
      raw !== undefined || infile !== undefined
        ? request.query
        : assembleQuery(request.query, body.toString('utf8'));
    if (sql.trim() === '') throw new ProtocolError(62, 'SYNTAX_ERROR', 'Empty query');
    if (hasMultipleStatements(sql)) {
      throw new ProtocolError(62, 'SYNTAX_ERROR', 'Multi-statements are not allowed');
    }
    if (isGet && !returnsRows(sql)) {
      throw new ProtocolError(
        164,
        'READONLY',
        'Cannot execute query in readonly mode. For queries over HTTP, method GET implies readonly. You should use method POST for modifying queries',
      );
    }
    // On a fresh session the engine itself enforces GET's read-only mode; a named session could not be put back.
    const restore = await applyContext(session, request, fresh, isGet && fresh);
    // Put a named session back before the response ends: a client that sends its next request as soon as it
    // has read this answer must find the session free (SESSION_IS_LOCKED otherwise).
    let restored = false;
    const restoreSession = async (): Promise<void> => {
      if (restored) return;
      restored = true;
      if (restore.length === 0) return;
      await session.run(restore.join('; '), 'TabSeparated').catch((err: unknown) => {
        log.warn({ err, queryId: request.queryId }, 'could not restore session settings after the request');
      });
    };
    try {
      const common = {
        'X-ClickHouse-Query-Id': request.queryId,
        'X-ClickHouse-Timezone': engine.timezone,
        'X-ClickHouse-Server-Display-Name': displayName,
        'Keep-Alive': 'timeout=10',
      };
      if (raw !== undefined || infile !== undefined) {
        let written = { rowsWritten: 0, bytesWritten: 0, elapsedSeconds: 0 };
        if (raw !== undefined) {
          written = await session.insertRaw(raw, body);
        } else if (infile !== undefined) {
          const file = path.join(engine.scratchDir, `${randomUUID()}.body`);
          await fs.promises.writeFile(file, body);
          try {
            const r = await session.run(infileInsertSql(infile, file), 'TabSeparated');
            written = {
              rowsWritten: r.rowsRead,
              bytesWritten: r.bytesRead,
              elapsedSeconds: r.elapsedSeconds,
            };
          } finally {
            await fs.promises.rm(file, { force: true });
          }
        }
        await restoreSession();
        res.writeHead(200, {
          ...common,
          'Content-Type': 'text/plain; charset=UTF-8',
          'X-ClickHouse-Summary': summaryHeader({
            readRows: written.rowsWritten,
            readBytes: body.length,
            writtenRows: written.rowsWritten,
            writtenBytes: written.bytesWritten,
            resultRows: 0,
            resultBytes: 0,
            elapsedSeconds: written.elapsedSeconds,
          }),
        });
        res.end();
        return;
      }
      const format = explicitFormat(sql) ?? request.defaultFormat ?? 'TabSeparated';
      const headerLines = streamHeaderLines(format);
      const encoding = request.compressResponse ? pickEncoding(req.headers['accept-encoding']) : undefined;
      const headers = { ...common, 'X-ClickHouse-Format': format, 'Content-Type': contentType(format) };
      if (returnsRows(sql) && headerLines !== undefined && !request.waitEndOfQuery) {
        await streamResult(res, session, sql, format, headerLines, encoding, headers, restoreSession);
        return;
      }
      const r = await session.run(sql, format);
      const out =
        encoding === undefined ? Buffer.from(r.bytes) : await compress(Buffer.from(r.bytes), encoding);
      await restoreSession();
      res.writeHead(200, {
        ...headers,
        'X-ClickHouse-Summary': summaryHeader({
          readRows: r.rowsRead,
          readBytes: r.bytesRead,
          writtenRows: 0,
          writtenBytes: 0,
          resultRows: 0,
          resultBytes: r.bytes.byteLength,
          elapsedSeconds: r.elapsedSeconds,
        }),
        ...(encoding === undefined ? {} : { 'Content-Encoding': encoding }),
        'Content-Length': out.length,
      });
      res.end(out);
    } finally {
      await restoreSession();
    }
  }

  async function streamResult(
    res: http.ServerResponse,
    session: EngineSession,
    sql: string,
    format: string,
    headerLines: number,
    encoding: string | undefined,
    headers: Record<string, string>,
    beforeEnd: () => Promise<void>,
  ): Promise<void> {
    const abort = new AbortController();
    const onClose = (): void => {
      if (!res.writableFinished) abort.abort();
    };
    res.on('close', onClose);
    const chunks = session.stream(sql, format, abort.signal)[Symbol.asyncIterator]();
    let sink: NodeJS.WritableStream & { destroy(): void } = res;
    let complete = false;
    try {
      // Pull the first chunk before answering, so errors found at planning time get a proper status code.
      let result = await chunks.next();
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
      sink = encoding === undefined ? res : pipeCompressed(res, encoding);
      let index = 0;
      try {
        while (result.done !== true) {
          const bytes = Buffer.from(result.value);
          const payload = index > 0 && headerLines > 0 ? dropLines(bytes, headerLines) : bytes;
          index++;
          if (!sink.write(payload)) await once(sink, 'drain', { signal: abort.signal });
          result = await chunks.next();
        }
      } catch (err) {
        if (abort.signal.aborted) return; // the client went away; nothing to tell it
        if (sink === res) throw err; // handle() writes the exception block
        // Through the compressor: append the exception block to the compressed stream, then finish it.
        const failure = describeEngineError(err);
        const tag = res.getHeader('x-clickhouse-exception-tag') as string;
        await beforeEnd();
        sink.end(midStreamException(`${failure.text} (version ${engine.version})`, tag));
        complete = true;
        return;
      }
      await beforeEnd();
      sink.end();
      complete = true;
    } finally {
      res.off('close', onClose);
      if (!complete) {
        abort.abort();
        // Closing the iterator cancels the engine stream, so the session can run its next query.
        await chunks.return?.(undefined).catch(() => undefined);
        if (sink !== res) sink.destroy();
      }
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

function dropLines(buf: Buffer, lines: number): Buffer {
  let offset = 0;
  for (let i = 0; i < lines; i++) {
    const nl = buf.indexOf(0x0a, offset);
    if (nl < 0) return Buffer.alloc(0);
    offset = nl + 1;
  }
  return buf.subarray(offset);
}

async function readBody(req: http.IncomingMessage, maxBytes: number): Promise<Buffer> {
  const enc = (req.headers['content-encoding'] ?? '').toLowerCase().trim();
  const limit = { maxOutputLength: maxBytes };
  let source: NodeJS.ReadableStream = req;
  if (enc === 'gzip' || enc === 'x-gzip') source = req.pipe(zlib.createGunzip(limit));
  else if (enc === 'deflate') source = req.pipe(zlib.createInflate(limit));
  else if (enc === 'br') source = req.pipe(zlib.createBrotliDecompress(limit));
  else if (enc !== '' && enc !== 'identity') {
    throw new ProtocolError(
      415,
      'UNSUPPORTED_MEDIA_TYPE',
      `Unknown Content-Encoding: ${enc} (the local endpoint supports gzip, deflate, br)`,
    );
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of source) {
      size += (chunk as Buffer).length;
      if (size > maxBytes) {
        throw new ProtocolError(413, 'QUERY_IS_TOO_LARGE', `Request body is larger than ${maxBytes} bytes`);
      }
      chunks.push(chunk as Buffer);
    }
  } catch (err) {
    if (err instanceof ProtocolError) throw err;
    throw new ProtocolError(
      354,
      'CANNOT_DECOMPRESS',
      `Cannot read request body (${enc || 'identity'}): ${(err as Error).message}`,
    );
  }
  return Buffer.concat(chunks);
}

function pickEncoding(accept: string | undefined): string | undefined {
  if (accept === undefined) return undefined;
  const offered = accept.split(',').map((s) => s.trim().split(';')[0]?.toLowerCase());
  return ['gzip', 'br', 'deflate'].find((e) => offered.includes(e));
}

async function compress(buf: Buffer, encoding: string): Promise<Buffer> {
  if (encoding === 'gzip') return gzip(buf);
  if (encoding === 'br') return brotli(buf);
  return deflate(buf);
}

function pipeCompressed(
  res: http.ServerResponse,
  encoding: string,
): zlib.Gzip | zlib.Deflate | zlib.BrotliCompress {
  const z =
    encoding === 'gzip'
      ? zlib.createGzip()
      : encoding === 'br'
        ? zlib.createBrotliCompress()
        : zlib.createDeflate();
  z.pipe(res);
  return z;
}
