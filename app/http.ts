/**
 * The HTTP face of a running instance: /healthz for probes, /status.json for scripts and the status
 * page, /metrics for Prometheus. Read-only and bounded: every response is produced from in-memory state or LMDB reads.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { errorMessage } from '../src/errors.js';
import type { Logger } from '../src/logger.js';
import type { StatusReport } from '../src/status.js';

export interface HttpServerOptions {
  host: string;
  port: number;
  logger: Logger;
  status: () => Promise<StatusReport>;
  /** Prometheus text exposition. */
  metrics: () => Promise<string>;
}

export interface RunningHttpServer {
  url: string;
  close(): Promise<void>;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void> | void;

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(text);
}

export async function startHttpServer({ host, port, logger, status, metrics }: HttpServerOptions): Promise<RunningHttpServer> {
  const routes: Record<string, Handler> = {
    '/healthz': (_req, res) => sendJson(res, 200, { ok: true }),
    '/status.json': async (_req, res) => sendJson(res, 200, await status()),
    '/metrics': async (_req, res) => {
      const text = await metrics();
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
      res.end(text);
    },
  };
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const handler = req.method === 'GET' || req.method === 'HEAD' ? routes[path] : undefined;
    if (!handler) {
      sendJson(res, req.method === 'GET' ? 404 : 405, { error: `no ${req.method} ${path}` });
      return;
    }
    Promise.resolve(handler(req, res)).catch((err: unknown) => {
      logger.error({ path, err: errorMessage(err) }, 'http handler failed');
      if (!res.headersSent) sendJson(res, 500, { error: errorMessage(err) });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const url = `http://${host}:${address.port}`;
  logger.info({ url }, 'http server listening');
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Keep-alive connections (the status page polls) would hold close() open.
        server.closeAllConnections();
      }),
  };
}
