/**
 * The HTTP face of a running instance: /healthz and /readyz for probes (streams/health.ts), /status.json for scripts and the status
 * page (/status, status-page.ts), /metrics for Prometheus, /snapshots for evaluators (snapshot-routes.ts).
 * Read-only and bounded: GET and HEAD only, no request bodies read, responses from memory, LMDB or
 * published files. With `http.token` set, snapshots (and /metrics if asked) need the bearer token
 * (http-auth.ts); the probes and the status page stay open.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { errorMessage } from '../src/errors.js';
import type { Logger } from '../src/logger.js';
import type { StatusReport } from '../src/status.js';
import type { SnapshotStore } from '../state/snapshots.js';
import { probeHealth, type StageHealth } from '../streams/health.js';
import { bearerMatches, needsToken, type HttpAuth } from './http-auth.js';
import { handleSnapshotRequest } from './snapshot-routes.js';
import { renderStatusPage } from './status-page.js';

export interface HttpServerOptions {
  host: string;
  port: number;
  logger: Logger;
  status?: () => Promise<StatusReport>;
  /** Prometheus text exposition. */
  metrics?: () => Promise<string>;
  /** The stages' consumers: /healthz (liveness) fails when one is dead, /readyz (readiness) unless all run. */
  health?: () => StageHealth[];
  snapshots?: SnapshotStore;
  /** Bearer token for /snapshots (and /metrics with protectMetrics): app/http-auth.ts. */
  auth?: HttpAuth;
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

export async function startHttpServer({ host, port, logger, status, metrics, health = () => [], snapshots, auth = {} }: HttpServerOptions): Promise<RunningHttpServer> {
  const probe = (which: 'live' | 'ready'): Handler => (_req, res) => {
    const stages = health();
    const ok = probeHealth(stages)[which];
    sendJson(res, ok ? 200 : 503, { ok, stages: stages.map((s) => ({ ...s, since: new Date(s.since).toISOString() })) });
  };
  const routes: Record<string, Handler> = {
    '/healthz': probe('live'),
    '/readyz': probe('ready'),
  };
  if (status) {
    routes['/status.json'] = async (_req, res) => sendJson(res, 200, await status());
    const page = renderStatusPage();
    routes['/status'] = (_req, res) => {
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-cache',
        'content-security-policy': page.csp,
        'x-content-type-options': 'nosniff',
        'referrer-policy': 'no-referrer',
      });
      res.end(page.html);
    };
    // Relative, so that behind a path prefix (/ops/ -> /ops/status) the redirect stays under it.
    routes['/'] = (_req, res) => {
      res.writeHead(302, { location: 'status' });
      res.end();
    };
  }
  if (metrics) {
    routes['/metrics'] = async (_req, res) => {
      const text = await metrics();
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
      res.end(text);
    };
  }
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendJson(res, 405, { error: `${req.method} is not supported; this API is read-only` });
    if (needsToken(path, auth) && !bearerMatches(req.headers.authorization, auth.token!)) {
      res.setHeader('www-authenticate', `Bearer realm="modestream"${req.headers.authorization ? ', error="invalid_token"' : ''}`);
      return sendJson(res, 401, { error: 'this path needs Authorization: Bearer <http.token>' });
    }
    const handler = routes[path];
    if (handler) return handler(req, res);
    if (snapshots && (await handleSnapshotRequest(snapshots, req, res, path))) return;
    sendJson(res, 404, { error: `no ${path}` });
  };
  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      logger.error({ url: req.url, err: errorMessage(err) }, 'http handler failed');
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
