/**
 * A local HTTP server on 127.0.0.1:0 standing in for a model provider: each test sets `route`, which answers
 * with the provider's JSON or SSE wire format. Every request is captured with its parsed JSON body.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface CapturedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: unknown;
}

export type Route = (req: CapturedRequest, res: http.ServerResponse) => void | Promise<void>;

export interface LocalServer {
  /** http://127.0.0.1:port */
  readonly url: string;
  readonly requests: CapturedRequest[];
  route: Route;
  close(): Promise<void>;
}

export async function startLocalServer(): Promise<LocalServer> {
  const requests: CapturedRequest[] = [];
  const state: { route: Route } = {
    route: (_req, res) => {
      sendJson(res, 404, { error: 'no route set' });
    },
  };
  const server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (part: Buffer) => parts.push(part));
    req.on('end', () => {
      const text = Buffer.concat(parts).toString('utf8');
      let body: unknown = text;
      try {
        body = text === '' ? undefined : (JSON.parse(text) as unknown);
      } catch {
        // not JSON: kept as text
      }
      const captured = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body };
      requests.push(captured);
      Promise.resolve(state.route(captured, res)).catch((err: unknown) => {
        res.destroy(err instanceof Error ? err : new Error(String(err)));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    get route() {
      return state.route;
    },
    set route(route: Route) {
      state.route = route;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}

export function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'x-request-id': 'req_test_123',
    'request-id': 'req_test_123',
  });
  res.end(text);
}

export function startSse(res: http.ServerResponse): void {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    'x-request-id': 'req_test_123',
    'request-id': 'req_test_123',
  });
  res.flushHeaders();
}

/** One SSE event: `event:` line when named, one `data:` line, blank line. */
export function sseEvent(data: unknown, event?: string): string {
  const payload = typeof data === 'string' ? data : JSON.stringify(data);
  return `${event === undefined ? '' : `event: ${event}\n`}data: ${payload}\n\n`;
}

/** Resolves when the client has gone away (aborted or finished) from this response. */
export function closed(res: http.ServerResponse): Promise<void> {
  return new Promise<void>((resolve) => {
    if (res.destroyed) resolve();
    else res.on('close', () => resolve());
  });
}

export interface Gate {
  readonly opened: Promise<void>;
  open(): void;
}

/** A promise the test opens: lets the server hold part of a stream until the client has acted. */
export function gate(): Gate {
  let open = (): void => undefined;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

/** Everything a stream yields, in order. */
export async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of stream) items.push(item);
  return items;
}
