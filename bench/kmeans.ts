/**
 * `npm run bench -- kmeans [--n 100000] [--dims 256,768] [--k 1024] [--iterations 10]
 *                          [--backend wasm|webgpu|cpu|auto] [--mode spherical|plain] [--balanced] [--json FILE]`
 *
 * Lloyd iterations of our tfjs k-means against numpy (bench/kmeans_ref.py) on the same data from the
 * same initial centers, in one run, plus scikit-learn's KMeans from those centers when it is installed.
 * For each dimension: n synthetic caption-like embeddings (unit vectors around Zipf-popular topics) and
 * k-means++ seeds are written to temporary files that both sides read; each side runs one E step on the
 * seeds and `iterations` x (M step, E step); we print seconds per iteration, final inertia and the
 * tfjs/numpy ratios. `--mode plain` (no re-normalisation of centers) is the mode scikit-learn runs, so
 * only then is its inertia comparable. `--balanced` also times our balanced (auction) k-means.
 *
 * Python: <repo>/.venv/bin/python with numpy (scikit-learn optional); create it with
 *   python3 -m venv .venv && .venv/bin/pip install numpy scikit-learn
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { kmeans } from '../src/cluster/kmeans.js';
import { createRng } from '../src/cluster/rng.js';
import { kmeansPlusPlus } from '../src/cluster/seeding.js';
import { BackendName } from '../src/config.js';
import { initBackend } from '../src/tensor/backend.js';

const { values: args } = parseArgs({
  options: {
    n: { type: 'string', default: '100000' },
    dims: { type: 'string', default: '256,768' },
    k: { type: 'string', default: '1024' },
    iterations: { type: 'string', default: '10' },
    backend: { type: 'string', default: 'wasm' },
    mode: { type: 'string', default: 'spherical' },
    seed: { type: 'string', default: '1' },
    balanced: { type: 'boolean', default: false },
    json: { type: 'string' },
  },
});
const N = Number(args.n);
const K = Number(args.k);
const ITERATIONS = Number(args.iterations);
const DIMS = args.dims.split(',').map(Number);
const SEED = Number(args.seed);
const SPHERICAL = args.mode === 'spherical';
if (args.mode !== 'spherical' && args.mode !== 'plain') throw new Error(`--mode must be spherical or plain, got ${args.mode}`);
const ROOT = resolve(import.meta.dirname, '..', '..');
const PYTHON = join(ROOT, '.venv', 'bin', 'python');
const REF = join(ROOT, 'bench', 'kmeans_ref.py');

interface Run {
  seconds: number;
  iterations: number;
  inertia: number;
}

interface Reference {
  numpy_version: string;
  numpy: Run;
  sklearn: (Run & { version: string }) | null;
}

/**
 * Caption-like embeddings: 4 * sqrt(n) topic directions with Zipf(1) popularity, each point its topic
 * plus isotropic noise of norm ~0.8, renormalised. Deterministic for a seed.
 */
function syntheticEmbeddings(n: number, dim: number, seed: number): Float32Array {
  const rng = createRng(seed);
  const topics = Math.max(8, Math.round(4 * Math.sqrt(n)));
  const directions = new Float32Array(topics * dim);
  for (let t = 0; t < topics; t++) {
    let s = 0;
    for (let j = 0; j < dim; j++) s += (directions[t * dim + j] = rng.nextGaussian()) ** 2;
    const inv = 1 / Math.sqrt(s);
    for (let j = 0; j < dim; j++) directions[t * dim + j]! *= inv;
  }
  const cumulative = new Float64Array(topics);
  let total = 0;
  for (let t = 0; t < topics; t++) cumulative[t] = total += 1 / (t + 1);
  const points = new Float32Array(n * dim);
  const noise = 0.8 / Math.sqrt(dim);
  for (let i = 0; i < n; i++) {
    const u = rng.next() * total;
    let lo = 0;
    let hi = topics - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cumulative[mid]! > u) hi = mid;
      else lo = mid + 1;
    }
    let s = 0;
    for (let j = 0; j < dim; j++) s += (points[i * dim + j] = directions[lo * dim + j]! + noise * rng.nextGaussian()) ** 2;
    const inv = 1 / Math.sqrt(s);
    for (let j = 0; j < dim; j++) points[i * dim + j]! *= inv;
  }
  return points;
}

function runReference(files: { points: string; init: string }, dim: number): Reference | string {
  if (!existsSync(PYTHON)) return `no Python venv at ${PYTHON}: python3 -m venv .venv && .venv/bin/pip install numpy scikit-learn`;
  const ref = spawnSync(
    PYTHON,
    [REF, '--points', files.points, '--init', files.init, '--n', String(N), '--dim', String(dim), '--k', String(K), '--iterations', String(ITERATIONS), '--mode', args.mode],
    { encoding: 'utf8', maxBuffer: 1 << 20 },
  );
  if (ref.status !== 0) return `kmeans_ref.py failed (${ref.status}): ${ref.stderr.trim().split('\n').slice(-3).join(' | ')}`;
  return JSON.parse(ref.stdout) as Reference;
}

const f = (x: number, digits = 3) => x.toFixed(digits);
const line = (name: string, run: Run, extra = '') =>
  console.log(`  ${name.padEnd(22)} ${f(run.seconds / Math.max(1, run.iterations)).padStart(8)} s/iter  ${String(run.iterations).padStart(3)} iterations  inertia ${f(run.inertia, 2).padStart(12)}${extra}`);

async function main(): Promise<void> {
  const info = await initBackend(BackendName.parse(args.backend));
  console.log(
    `kmeans bench: n=${N} k=${K} iterations=${ITERATIONS} mode=${args.mode} tfjs backend=${info.tfBackend}${info.adapter ? ` (${info.adapter})` : ''}; ` +
      `${cpus().length} CPU cores (numpy/sklearn may use all of them, tfjs-wasm runs one thread)`,
  );
  const results: Record<string, unknown>[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'modestream-kmeans-bench-'));
  try {
    for (const dim of DIMS) {
      let t = performance.now();
      const points = syntheticEmbeddings(N, dim, SEED + dim);
      const dataSeconds = (performance.now() - t) / 1000;
      t = performance.now();
      const init = await kmeansPlusPlus({ points, dim, k: K, rng: createRng(SEED) });
      const initSeconds = (performance.now() - t) / 1000;
      const files = { points: join(dir, `points-${dim}.f32`), init: join(dir, `init-${dim}.f32`) };
      writeFileSync(files.points, points);
      writeFileSync(files.init, init);
      console.log(`dim=${dim}: synthetic data ${f(dataSeconds, 1)} s, k-means++ seeds (tfjs) ${f(initSeconds, 1)} s`);

      t = performance.now();
      const ours = await kmeans({ points, dim, k: K, seed: SEED, maxIterations: ITERATIONS, tolerance: 0, init, normalize: SPHERICAL });
      const tfjs: Run = { seconds: (performance.now() - t) / 1000, iterations: ours.iterations, inertia: ours.inertia };
      line(`tfjs-${info.tfBackend}`, tfjs);

      const ref = runReference(files, dim);
      const row: Record<string, unknown> = { dim, dataSeconds, initSeconds, tfjs };
      if (typeof ref === 'string') {
        console.log(`  reference skipped: ${ref}`);
      } else {
        line(`numpy ${ref.numpy_version}`, ref.numpy);
        if (ref.sklearn) line(`sklearn ${ref.sklearn.version} (plain)`, ref.sklearn, SPHERICAL ? '  (plain Lloyd: inertia not comparable in spherical mode)' : '');
        else console.log('  sklearn not installed: skipped');
        const perIter = (r: Run) => r.seconds / Math.max(1, r.iterations);
        console.log(`  tfjs/numpy: time ${f(perIter(tfjs) / perIter(ref.numpy), 2)}x, inertia ${f(tfjs.inertia / ref.numpy.inertia, 5)}`);
        if (ref.sklearn) {
          console.log(`  tfjs/sklearn: time ${f(perIter(tfjs) / perIter(ref.sklearn), 2)}x${SPHERICAL ? '' : `, inertia ${f(tfjs.inertia / ref.sklearn.inertia, 5)}`}`);
        }
        Object.assign(row, { numpy: ref.numpy, sklearn: ref.sklearn });
      }

      if (args.balanced) {
        t = performance.now();
        const balanced = await kmeans({ points, dim, k: K, seed: SEED, maxIterations: ITERATIONS, tolerance: 0, init, normalize: SPHERICAL, assignment: 'balanced' });
        const run: Run = { seconds: (performance.now() - t) / 1000, iterations: balanced.iterations, inertia: balanced.inertia };
        line(`tfjs-${info.tfBackend} balanced`, run, `  sizes ${Math.min(...balanced.sizes)}..${Math.max(...balanced.sizes)} (capacity ${Math.ceil(N / K)})`);
        row.balanced = run;
      }
      results.push(row);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  if (args.json) writeFileSync(args.json, JSON.stringify({ n: N, k: K, iterations: ITERATIONS, mode: args.mode, backend: info.tfBackend, results }, null, 2));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
