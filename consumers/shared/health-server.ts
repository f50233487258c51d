/**
 * /metrics (Prometheus text), /healthz (the process works: 200 unless it stopped on a fatal error) and /readyz
 * (it is doing its job: in its consumer group and ClickHouse answering) for the long-running consumers.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface HealthServer {
  readonly port: number;
  close(): Promise<void>;
}

export async function startHealthServer(options: {
  port: number;
  registry: Registry;
  healthy: () => boolean;
  ready: () => boolean;
  host?: string;
}): Promise<HealthServer> {
  const server = http.createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    const reply = (status: number, body: string, type = 'text/plain; charset=utf-8'): void => {
      res.writeHead(status, { 'Content-Type': type });
      res.end(body);
    };
    if (url === '/healthz') {
      if (options.healthy()) reply(200, 'ok\n');
      else reply(503, 'failed\n');
    } else if (url === '/readyz') {
      if (options.ready()) reply(200, 'ready\n');
      else reply(503, 'not ready\n');
    } else if (url === '/metrics') {
      options.registry.metrics().then(
        (text) => reply(200, text, options.registry.contentType),
        (err: unknown) => reply(500, `${String(err)}\n`),
      );
    } else {
      reply(404, 'not found: try /metrics, /healthz or /readyz\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '0.0.0.0', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
