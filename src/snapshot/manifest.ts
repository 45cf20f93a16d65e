/**
 * An ensemble snapshot: everything an evaluator needs to run the MoDE ensemble, in one versioned
 * directory described by manifest.json. Every other file is listed with its size and SHA-256, so a
 * reader can verify what it fetched and refuse a partial or corrupt snapshot.
 *
 *   manifest.json            this schema
 *   centroids.bin            fine centers, float32 little-endian, m x dim, rows in manifest order
 *   seed.model.json / .bin   the seed model (tfjs artifact layout), when one exists
 *   expert-<id>.model.json / .weights.bin   each expert
 */
import { z } from 'zod';
import { EmbedderConfig } from '../config.js';
import { RoutingFormula } from '../ensemble/weights.js';
import { StateError } from '../errors.js';

export const SNAPSHOT_FORMAT = 'modestream-snapshot';
export const MANIFEST_FILE = 'manifest.json';
export const CENTROIDS_FILE = 'centroids.bin';
export const modelFiles = (name: string) => ({ json: `${name}.model.json`, weights: `${name}.weights.bin` });

/** File names a snapshot may hold: plain names, no separators, no dot-files (no path traversal). */
export const SnapshotFileName = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,99}$/i, { message: 'not a snapshot file name' });

const FileEntry = z.object({ name: SnapshotFileName, bytes: z.number().int().nonnegative(), sha256: z.string().regex(/^[0-9a-f]{64}$/) });

const ModelRef = z.object({
  version: z.number().int().positive(),
  files: z.object({ json: SnapshotFileName, weights: SnapshotFileName }),
  trainedAt: z.string(),
  steps: z.number().int().nonnegative(),
  loss: z.number(),
  records: z.number().int().nonnegative(),
  backend: z.string(),
});

export const SnapshotManifest = z.object({
  format: z.literal(SNAPSHOT_FORMAT),
  formatVersion: z.literal(1),
  version: z.number().int().positive(),
  createdAt: z.string(),
  embedder: z.object({ settings: EmbedderConfig, fingerprint: z.string(), dim: z.number().int().positive() }),
  centroids: z.object({
    epoch: z.number().int().positive(),
    dim: z.number().int().positive(),
    file: SnapshotFileName,
    fineIds: z.array(z.number().int().nonnegative()),
    /** Expert id of each fine center, in centroids.bin row order. */
    fineToExpert: z.array(z.number().int().nonnegative()),
  }),
  routing: z.object({
    formula: RoutingFormula,
    constants: z.object({ codeTemperature: z.number(), paperLambda: z.number() }),
  }),
  seed: ModelRef.nullable(),
  experts: z.array(ModelRef.extend({ id: z.number().int().nonnegative(), fineClusters: z.number().int().nonnegative() })),
  files: z.array(FileEntry),
});
export type SnapshotManifest = z.infer<typeof SnapshotManifest>;
export type SnapshotFile = z.infer<typeof FileEntry>;

/** manifest.json text -> a validated manifest; `what` names its source in errors. The store and the client both read it. */
export function parseManifest(text: string, what: string): SnapshotManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new StateError(`${what}: manifest.json is not valid JSON (${(err as Error).message})`);
  }
  const parsed = SnapshotManifest.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new StateError(`${what}: not a modestream snapshot manifest: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return parsed.data;
}
