/**
 * Ensemble snapshots end to end on a real state directory: trained seed and expert, snapshots published
 * atomically while readers poll over HTTP and from the directory (never a partial snapshot), the client
 * refusing a corrupt or incomplete snapshot, the HTTP routes (ETag, no traversal, read-only) and the
 * bearer token that guards them when http.token is set.
 */
import { mkdtempSync, readdirSync, rmSync, unlinkSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startHttpServer, type RunningHttpServer } from '../../app/http.js';
import { openCore, type Core } from '../../app/core.js';
import { publishSnapshot } from '../../training/snapshot.js';
import { runTrainingJob } from '../../training/job.js';
import { loadSnapshot } from '../../client/index.js';
import { clusterSample } from '../../src/cluster/bootstrap.js';
import { createRng } from '../../src/cluster/rng.js';
import { resolveConfig, snapshotsDirOf, type Config } from '../../src/config.js';
import { encodeRouted, type RoutedRecord } from '../../src/contract/routed.js';
import { silentLogger } from '../../src/logger.js';
import { createSnapshotStore } from '../../state/snapshots.js';

const stateDir = mkdtempSync(join(tmpdir(), 'modestream-snapshots-'));
const config: Config = resolveConfig([
  {
    origin: 'test',
    values: {
      stateDir,
      backend: 'wasm',
      embedder: { kind: 'hashed' },
      clustering: { fine: 8, experts: 4 },
      experts: { stemChannels: 8, imageHidden: 32, textHidden: 32, projection: 16, training: { batch: 32, checkpointEvery: 1000 } },
      snapshots: { keep: 3 },
      log: { level: 'silent' },
    },
  },
]);
let core: Core;
let server: RunningHttpServer;

beforeAll(async () => {
  core = await openCore(config, silentLogger);
  // Pairs of 4 topics: caption embeddings from the real embedder, images a pattern per topic.
  const topics = ['red cotton t-shirt', 'leather ankle boots', 'blue denim jeans', 'leather shoulder handbag'];
  const rng = createRng(9);
  const patterns = topics.map(() => Uint8Array.from({ length: 784 }, () => rng.nextInt(256)));
  const captions = topics.flatMap((t) => [0, 1, 2, 3, 4].map((i) => `${t} ${['sale', 'new', 'classic', 'men', 'women'][i]}`));
  const embeddings = await core.embedder.embed(captions);
  const sample = captions.map((_, i) => embeddings.slice(i * 256, (i + 1) * 256));
  const model = await clusterSample({ sample: [...sample, ...sample, ...sample], epoch: 1, settings: config.clustering, embedder: core.embedder.fingerprint });
  await core.centroids.publish(model);
  const routing = await import('../../src/cluster/routing.js').then((m) => m.createRouting(model));
  const routes = await routing.route(embeddings);
  routing.dispose();
  const items = Array.from({ length: 800 }, (_, n) => {
    const c = n % captions.length;
    const record: RoutedRecord = {
      id: `s${n}`,
      caption: captions[c]!,
      ts: 0,
      image: { kind: 'pixels', width: 28, height: 28, channels: 1, data: patterns[Math.floor(c / 5)]! },
      embedding: sample[c]!,
      route: routes[c]!,
      origin: { topic: 't', partition: 0, offset: String(n) },
    };
    return { record, bytes: encodeRouted(record) };
  });
  await core.store.append(items, { topic: 't', partition: 0, nextOffset: 800 });
  await runTrainingJob({ config, logger: silentLogger, core, target: { kind: 'seed' }, steps: 15 });
  await runTrainingJob({ config, logger: silentLogger, core, target: { kind: 'expert', expert: routes[0]!.expert }, steps: 10 });
  server = await startHttpServer({ host: '127.0.0.1', port: 0, logger: silentLogger, snapshots: createSnapshotStore({ dir: snapshotsDirOf(config), keep: 3 }) });
});

afterAll(async () => {
  await server?.close();
  await core?.close();
  rmSync(stateDir, { recursive: true, force: true });
});

describe('snapshots', () => {
  test('readers polling over HTTP and from the directory during 20 publishes, two at a time, always get a whole snapshot', async () => {
    let publishing = true;
    const seen = { http: new Set<number>(), dir: new Set<number>() };
    const poll = async (kind: 'http' | 'dir') => {
      while (publishing) {
        const loaded = await loadSnapshot(kind === 'http' ? server.url : snapshotsDirOf(config));
        // loadSnapshot verified every file's size and SHA-256 against the manifest.
        expect(loaded.manifest.files.length).toBeGreaterThanOrEqual(4);
        seen[kind].add(loaded.manifest.version);
        loaded.dispose();
      }
    };
    const published = [(await publishSnapshot({ config, core })).version];
    const readers = [poll('http'), poll('dir'), poll('http')];
    // Two publishers at once, as the trainer's and the snapshot assembler's can be: each gets its own version.
    for (let i = 0; i < 10; i++) published.push(...(await Promise.all([publishSnapshot({ config, core }), publishSnapshot({ config, core })])).map((m) => m.version));
    publishing = false;
    await Promise.all(readers);
    expect(published).toEqual(Array.from({ length: 21 }, (_, i) => i + 1));
    expect(seen.http.size + seen.dir.size).toBeGreaterThan(2);
    // keep = 3: older versions were pruned while readers ran.
    expect(readdirSync(snapshotsDirOf(config)).filter((n) => n.startsWith('v')).sort()).toEqual(['v000019', 'v000020', 'v000021']);
  });

  test('the loaded ensemble classifies and retrieves, with routing weights that sum to one', async () => {
    const { ensemble, manifest, dispose } = await loadSnapshot(server.url);
    expect(manifest.experts.map((e) => e.id).sort()).toEqual([0, 1, 2, 3]);
    const image = { kind: 'pixels' as const, width: 28, height: 28, channels: 1 as const, data: new Uint8Array(784).fill(128) };
    const result = await ensemble.classify([image, image], ['t-shirt', 'ankle boots', 'jeans']);
    expect(result.scores).toHaveLength(6);
    expect(result.predictions).toHaveLength(2);
    expect(Object.values(result.weights).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
    const retrieval = await ensemble.retrieve([image, image, image], ['red t-shirt', 'boots', 'jeans']);
    expect(retrieval.imageToText).toHaveLength(9);
    expect(retrieval.textToImage).toHaveLength(9);
    dispose();
  });

  test('with http.token: snapshots need the bearer token (401 + WWW-Authenticate without), probes and status stay open; the client sends it', async () => {
    const token = 'snapshot-token-0123456789abcdef';
    const guarded = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      logger: silentLogger,
      snapshots: createSnapshotStore({ dir: snapshotsDirOf(config), keep: 3 }),
      metrics: async () => 'm 1\n',
      auth: { token },
    });
    try {
      const get = (path: string, auth?: string) => fetch(`${guarded.url}${path}`, auth ? { headers: { authorization: auth } } : undefined);
      for (const path of ['/snapshots', '/snapshots/latest', '/snapshots/21/manifest.json']) {
        const refused = await get(path);
        expect(refused.status, path).toBe(401);
        expect(refused.headers.get('www-authenticate'), path).toMatch(/^Bearer realm="modestream"$/);
        const wrong = await get(path, `Bearer ${token}x`);
        expect(wrong.status, path).toBe(401);
        expect(wrong.headers.get('www-authenticate'), path).toMatch(/error="invalid_token"/);
        expect((await get(path, `Bearer ${token}`)).status, path).toBe(200);
      }
      expect((await get('/healthz')).status).toBe(200);
      expect((await get('/metrics')).status).toBe(200);
      await expect(loadSnapshot(guarded.url)).rejects.toThrow(/HTTP 401, the server wants a token/);
      await expect(loadSnapshot(guarded.url, { token: 'not-the-token-at-all' })).rejects.toThrow(/HTTP 401, the token was refused/);
      const { manifest, dispose } = await loadSnapshot(guarded.url, { token });
      expect(manifest.version).toBe(21);
      dispose();
    } finally {
      await guarded.close();
    }
    const metricsGuarded = await startHttpServer({ host: '127.0.0.1', port: 0, logger: silentLogger, metrics: async () => 'm 1\n', auth: { token, protectMetrics: true } });
    try {
      expect((await fetch(`${metricsGuarded.url}/metrics`)).status).toBe(401);
      expect((await fetch(`${metricsGuarded.url}/metrics`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
      expect((await fetch(`${metricsGuarded.url}/healthz`)).status).toBe(200);
    } finally {
      await metricsGuarded.close();
    }
  });

  test('a snapshot with a corrupt or missing file is refused with a clear error', async () => {
    const root = snapshotsDirOf(config);
    const dir = join(root, 'v000021');
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { files: { name: string }[] };
    const weights = manifest.files.find((f) => f.name.endsWith('.weights.bin'))!.name;
    const bytes = readFileSync(join(dir, weights));
    bytes[10] = bytes[10]! ^ 0xff;
    writeFileSync(join(dir, weights), bytes);
    await expect(loadSnapshot(dir)).rejects.toThrow(new RegExp(`${weights.replace('.', '\\.')} is corrupt \\(SHA-256 differs`));
    await expect(loadSnapshot(`${server.url}/snapshots/21`)).rejects.toThrow(/is corrupt/);
    unlinkSync(join(dir, 'centroids.bin'));
    await expect(loadSnapshot(dir)).rejects.toThrow(/centroids\.bin is missing/);
    await expect(loadSnapshot(`${server.url}/snapshots/21`)).rejects.toThrow(/centroids\.bin: not found/);
  });

  test('HTTP: list, latest, ETag and 304, no path traversal, read-only', async () => {
    const list = (await (await fetch(`${server.url}/snapshots`)).json()) as { latest: number; versions: { version: number }[] };
    expect(list.latest).toBe(21);
    expect(list.versions.map((v) => v.version)).toEqual([21, 20, 19]);
    const latest = await fetch(`${server.url}/snapshots/latest`);
    const etag = latest.headers.get('etag')!;
    expect(etag).toMatch(/^"[0-9a-f]{64}"$/);
    expect((await fetch(`${server.url}/snapshots/19`, { headers: { 'if-none-match': (await fetch(`${server.url}/snapshots/19`)).headers.get('etag')! } })).status).toBe(304);
    for (const path of ['/snapshots/19/..%2F..%2Fmodels', '/snapshots/19/%2e%2e%2fCURRENT', '/snapshots/19/../v000018/manifest.json', '/snapshots/1', '/snapshots/19/nope.bin', '/snapshots/x']) {
      expect((await fetch(`${server.url}${path}`)).status, path).toBe(404);
    }
    expect((await fetch(`${server.url}/snapshots/latest`, { method: 'POST' })).status).toBe(405);
  });
});
