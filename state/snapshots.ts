/**
 * The snapshot directory: `v000001/`, `v000002/` ... each a complete ensemble snapshot published
 * atomically (artifacts.ts: temp dir, fsync, rename), `CURRENT` naming the latest (replaced atomically),
 * the newest `keep` kept. Readers resolve CURRENT once and read that directory, which is never modified,
 * so they always see a whole snapshot.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { MANIFEST_FILE, SnapshotFileName, parseManifest, type SnapshotFile, type SnapshotManifest } from '../src/snapshot/manifest.js';
import { pruneDirectories, readCurrent, setCurrent, writeDirectoryAtomically, type Files } from './artifacts.js';
import { versionDir } from './models.js';

const VERSION_DIR = /^v(\d{6,})$/;

export function fileEntry(name: string, content: Uint8Array | string): SnapshotFile {
  const bytes = typeof content === 'string' ? Buffer.from(content) : content;
  return { name, bytes: bytes.byteLength, sha256: createHash('sha256').update(bytes).digest('hex') };
}

export type SnapshotStore = ReturnType<typeof createSnapshotStore>;

export function createSnapshotStore({ dir, keep = 5 }: { dir: string; keep?: number }) {
  async function versions(): Promise<number[]> {
    if (!existsSync(dir)) return [];
    const entries = await readdir(dir, { withFileTypes: true });
    return entries.flatMap((e) => (e.isDirectory() && VERSION_DIR.test(e.name) ? [Number(VERSION_DIR.exec(e.name)![1])] : [])).sort((a, b) => a - b);
  }

  return {
    dir,
    versions,

    async nextVersion(): Promise<number> {
      return ((await versions()).at(-1) ?? 0) + 1;
    },

    /**
     * Publishes `files` plus the manifest as version `manifest.version`, then points CURRENT at it and
     * prunes old versions. The manifest lists every file with its size and SHA-256.
     */
    async publish(manifest: Omit<SnapshotManifest, 'files'>, files: Files): Promise<SnapshotManifest> {
      const complete: SnapshotManifest = { ...manifest, files: Object.entries(files).map(([name, content]) => fileEntry(name, content)) };
      const name = versionDir(manifest.version);
      await writeDirectoryAtomically(dir, name, { ...files, [MANIFEST_FILE]: JSON.stringify(complete, null, 1) });
      await setCurrent(dir, name);
      await pruneDirectories(dir, { keep, prefix: 'v' });
      return complete;
    },

    /** The latest version's number, from CURRENT. */
    async latest(): Promise<number | undefined> {
      const current = await readCurrent(dir);
      const match = current ? VERSION_DIR.exec(current) : null;
      return match ? Number(match[1]) : undefined;
    },

    async manifest(version: number): Promise<{ manifest: SnapshotManifest; text: string } | undefined> {
      const path = join(dir, versionDir(version), MANIFEST_FILE);
      if (!existsSync(path)) return undefined;
      const text = await readFile(path, 'utf8');
      return { manifest: parseManifest(text, `snapshot v${version}`), text };
    },

    /** Path of a file the manifest lists, or undefined (never a path outside the version directory). */
    async filePath(version: number, name: string): Promise<{ path: string; entry: SnapshotFile } | undefined> {
      if (name === MANIFEST_FILE || !SnapshotFileName.safeParse(name).success) return undefined;
      const found = await this.manifest(version);
      const entry = found?.manifest.files.find((f) => f.name === name);
      if (!entry) return undefined;
      const path = join(dir, versionDir(version), entry.name);
      const info = await stat(path).catch(() => undefined);
      return info?.isFile() ? { path, entry } : undefined;
    },
  };
}
