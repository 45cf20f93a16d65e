/**
 * Snapshot routes for evaluators:
 *   GET /snapshots                   {latest, versions: [{version, createdAt, epoch, experts}]}
 *   GET /snapshots/latest            the latest manifest
 *   GET /snapshots/:version          that version's manifest (also /snapshots/:version/manifest.json)
 *   GET /snapshots/:version/:file    a file the manifest lists
 * Responses carry ETags (the SHA-256 from the manifest) and answer If-None-Match with 304. Only names
 * listed in a manifest are served, resolved inside the version directory: no path traversal.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { MANIFEST_FILE } from '../src/snapshot/manifest.js';
import type { SnapshotStore } from '../state/snapshots.js';

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers });
  res.end(typeof body === 'string' ? body : JSON.stringify(body, null, 2));
};

const notModified = (req: IncomingMessage, etag: string) => req.headers['if-none-match']?.split(',').some((t) => t.trim() === etag) ?? false;

/** Handles /snapshots[/...]; returns false for other paths. */
export async function handleSnapshotRequest(store: SnapshotStore, req: IncomingMessage, res: ServerResponse, path: string): Promise<boolean> {
  const parts = path.split('/').filter(Boolean);
  if (parts[0] !== 'snapshots') return false;
  if (parts.length === 1) {
    const versions = await store.versions();
    const latest = await store.latest();
    const listed = [];
    for (const version of versions.reverse()) {
      const found = await store.manifest(version).catch(() => undefined);
      if (found) listed.push({ version, createdAt: found.manifest.createdAt, epoch: found.manifest.centroids.epoch, experts: found.manifest.experts.length });
    }
    json(res, 200, { latest: latest ?? null, versions: listed });
    return true;
  }
  const version = parts[1] === 'latest' ? await store.latest() : /^\d{1,9}$/.test(parts[1]!) ? Number(parts[1]) : undefined;
  if (version === undefined || parts.length > 3) {
    json(res, 404, { error: parts[1] === 'latest' ? 'no snapshot published yet' : `no such snapshot: ${parts.slice(1).join('/')}` });
    return true;
  }
  if (parts.length === 2 || parts[2] === MANIFEST_FILE) {
    const found = await store.manifest(version);
    if (!found) return (json(res, 404, { error: `no snapshot version ${version}` }), true);
    const etag = `"${createHash('sha256').update(found.text).digest('hex')}"`;
    if (notModified(req, etag)) return (res.writeHead(304, { etag }).end(), true);
    json(res, 200, req.method === 'HEAD' ? '' : found.text, { etag, 'cache-control': parts[1] === 'latest' ? 'no-cache' : 'public, max-age=31536000, immutable' });
    return true;
  }
  const file = await store.filePath(version, decodeURIComponent(parts[2]!));
  if (!file) return (json(res, 404, { error: `snapshot ${version} has no file ${parts[2]}` }), true);
  const etag = `"${file.entry.sha256}"`;
  if (notModified(req, etag)) return (res.writeHead(304, { etag }).end(), true);
  res.writeHead(200, {
    'content-type': file.entry.name.endsWith('.json') ? 'application/json' : 'application/octet-stream',
    'content-length': String(file.entry.bytes),
    etag,
    // Versions never change once published.
    'cache-control': 'public, max-age=31536000, immutable',
  });
  if (req.method === 'HEAD') return (res.end(), true);
  await new Promise<void>((resolve, reject) => createReadStream(file.path).on('error', reject).pipe(res).on('finish', resolve).on('error', reject));
  return true;
}
