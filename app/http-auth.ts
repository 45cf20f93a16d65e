/**
 * The HTTP bearer token (`http.token`, README "Configuration"): which paths need it and the check.
 * Probes stay open (an orchestrator has no token), /status and /status.json too (the page polls
 * status.json from a browser, which sends no Authorization header); /metrics is open for Prometheus
 * unless `http.protectMetrics`. Snapshots (the trained weights) always need it when it is set.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export interface HttpAuth {
  token?: string;
  protectMetrics?: boolean;
}

/** Whether a path needs the token under these settings. */
export function needsToken(path: string, { token, protectMetrics = false }: HttpAuth): boolean {
  if (!token) return false;
  if (path === '/snapshots' || path.startsWith('/snapshots/')) return true;
  if (path === '/metrics') return protectMetrics;
  return false;
}

const digest = (text: string) => createHash('sha256').update(text, 'utf8').digest();

/**
 * `Authorization: Bearer <token>` against the configured token, in constant time: both sides are
 * hashed first, so neither the content nor the length of the token leaks through timing.
 */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header ?? '');
  // Compared even when absent, so a missing header costs the same as a wrong one.
  return timingSafeEqual(digest(match?.[1] ?? ''), digest(token)) && match !== null;
}
