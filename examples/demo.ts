/**
 * The whole story on one machine, for the README's first command: a local Kafka broker, a feed of
 * web-crawl-like Fashion-MNIST pairs, routing and sharding, centers bootstrapped from the stream, the
 * seed and the experts trained, a snapshot and its evaluation; then a new class family arrives (drift):
 * new fine clusters or a new expert, retraining, a new snapshot and the evaluation again. Prints the
 * status page URL and the controller's events as they happen. Stays up until Ctrl-C unless `once`.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { localKafkaStatus, startLocalKafka, stopLocalKafka } from '../deploy/kafka/local-kafka.js';
import { ConfigSchema, snapshotsDirOf, type Config } from '../src/config.js';
import { STATIC_SUBDIR } from '../src/embed/embedder.js';
import { ConfigError } from '../src/errors.js';
import type { Logger } from '../src/logger.js';
import { loadSnapshot } from '../client/index.js';
import { produceAll } from '../app/produce.js';
import { startApp, type App } from '../app/run.js';
import { labelsOfFamily } from './fashion-mnist/classes.js';
import { fashionMnistTestSet, zeroShotReport, type TestSet } from './fashion-mnist/eval.js';
import { fashionMnistPairs, parseScheduleText } from './fashion-mnist/feed.js';

export interface DemoOptions {
  config: Config;
  logger: Logger;
  /** Pairs fed before and after the drift. */
  before: number;
  after: number;
  once: boolean;
  out?: (line: string) => void;
}

const FIRST = ['tops', 'bottoms', 'dresses'] as const;
const LATER = ['footwear', 'bags'] as const;

export async function runDemo({ config, logger, before, after, once, out = (l) => process.stdout.write(`${l}\n`) }: DemoOptions): Promise<void> {
  const started = Date.now();
  // The story (bootstrap, experts, then drift) needs an empty state: on an earlier run's state the pairs
  // are duplicates, nothing is new to train, and the demo would wait for a snapshot that never comes.
  if (existsSync(config.stateDir) && readdirSync(config.stateDir).length > 0) {
    throw new ConfigError(`the demo starts from an empty state, but ${config.stateDir} holds an earlier run's: remove it (rm -rf ${config.stateDir}) or pass --state-dir <new dir>`);
  }
  const say = (line: string) => out(`[${String(Math.round((Date.now() - started) / 1000)).padStart(4)} s] ${line}`);
  await ensureModel(config, say);
  const broker = { ...config.localBroker, logger };
  const wasRunning = (await localKafkaStatus(broker)).running;
  say(wasRunning ? 'local Kafka already running' : 'starting a local Kafka broker (the first start fetches its jars with Maven)...');
  const { bootstrap } = await startLocalKafka(broker);
  const demoConfig: Config = { ...config, kafka: { ...config.kafka, brokers: [bootstrap] }, ...freshTopics(config, started) };

  const app = await startApp({ config: demoConfig, logger });
  say(`modestream running on ${app.backend.name}; status page: ${app.httpUrl}/status  (metrics: ${app.httpUrl}/metrics, snapshots: ${app.httpUrl}/snapshots)`);
  const seen = new Set<string>();
  const events = setInterval(() => {
    for (const e of app.events.recent(20).reverse()) {
      const key = `${e.at}|${e.message}`;
      if (!seen.has(key)) {
        seen.add(key);
        say(`${e.kind}: ${e.message}`);
      }
    }
  }, 1000);

  try {
    const test = await fashionMnistTestSet({ perClass: 200 });
    const firstLabels = FIRST.flatMap((f) => labelsOfFamily(f));
    const laterLabels = LATER.flatMap((f) => labelsOfFamily(f));

    await feed(demoConfig, `${FIRST.join(',')}:${before}`, 1);
    say(`fed ${before} pairs of ${FIRST.join(', ')} (labels ${firstLabels.join(',')}) to ${demoConfig.topics.pairs}; waiting for bootstrap, seed and experts...`);
    const v1 = await settled(app, () => app.models.names().length > 1);
    await evaluate(demoConfig, v1, test, firstLabels, laterLabels, say);

    // The new family may become new fine clusters (drift), or land in clusters that the first families'
    // captions already opened (a crawl's wrong captions name footwear under a t-shirt too) and retrain
    // those experts: the demo waits until every pair is stored and the trainer has stayed idle a while.
    const fineBefore = app.centroids.latest()?.fineIds.length ?? 0;
    const storedBefore = app.store.totalRecords();
    await feed(demoConfig, `${LATER.join(',')}:${after}`, 2);
    say(`fed ${after} pairs of ${LATER.join(', ')} (labels ${laterLabels.join(',')}), a family the experts have never seen; waiting for drift handling and retraining...`);
    const v2 = await settled(app, () => app.store.totalRecords() >= storedBefore + after, { after: v1, quietMs: 20_000 });
    const added = (app.centroids.latest()?.fineIds.length ?? 0) - fineBefore;
    say(added > 0 ? `drift handled: ${added} new fine clusters` : 'no new fine clusters: the new family fell inside clusters the first families had opened');
    await evaluate(demoConfig, v2, test, firstLabels, laterLabels, say);

    if (!once) {
      say(`running until Ctrl-C; status page: ${app.httpUrl}/status`);
      say(`feed it a real crawl: JPEG/PNG/WebP files go in as {"image": {"encoded": "<base64>"}}, e.g. printf '{"id":"crawl-1","caption":"red canvas sneakers","image":{"encoded":"%s"}}\\n' "$(base64 -w0 photo.jpg)" | node bin/modestream.js produce -  (README, "Real crawls")`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
      });
    }
  } finally {
    clearInterval(events);
    await app.stop();
    if (!wasRunning) await stopLocalKafka(broker);
  }
}

/** The configured encoder, pulled first when missing: the demo is the first thing a new user runs. */
async function ensureModel(config: Config, say: (line: string) => void): Promise<void> {
  const { embedder } = config;
  if (embedder.kind === 'hashed' || embedder.kind === 'tfjs-graph' || !embedder.model) return;
  const dir = join(config.modelsDir, embedder.model);
  if (existsSync(embedder.kind === 'static' ? join(dir, STATIC_SUBDIR) : dir)) return;
  say(`pulling the caption encoder ${embedder.model} with pip into ${config.modelsDir} (once; \`modestream models pull\` does the same)...`);
  const [{ pull }, { loadCatalog }] = await Promise.all([import('../app/models/pull.js'), import('../app/models/catalog-file.js')]);
  const result = await pull({ name: embedder.model, modelsDir: config.modelsDir, catalog: await loadCatalog(undefined), pip: { python: 'python3' }, distill: embedder.kind === 'static' });
  say(`caption encoder ready: ${result.dir} (${result.manifest.license})`);
}

async function feed(config: Config, schedule: string, seed: number): Promise<void> {
  const producer = new Kafka({ brokers: config.kafka.brokers, logLevel: logLevel.ERROR }).producer();
  await producer.connect();
  try {
    const items = fashionMnistPairs({ seed, split: 'train', schedule: parseScheduleText(schedule) });
    await produceAll({ producer, topic: config.topics.pairs, items, batchSize: 1000 });
  } finally {
    await producer.disconnect();
  }
}

/**
 * Waits until `progressed` holds and then the trainer has nothing left to do: every expert with enough
 * records trained since, the queue empty, a snapshot published after `after` (or, with `quietMs`, none
 * needed once the trainer stayed idle that long). Returns the newest snapshot.
 */
async function settled(app: App, progressed: () => boolean, { after = 0, quietMs }: { after?: number; quietMs?: number } = {}): Promise<number> {
  const deadline = Date.now() + 30 * 60_000;
  let quietSince: number | undefined;
  for (;;) {
    if (Date.now() > deadline) throw new Error('the demo did not settle within 30 minutes; see the status page and the events above');
    const view = app.scheduler?.view();
    const latest = (await latestSnapshot(app)) ?? 0;
    const idle = view && view.running.length === 0 && view.queue.length === 0;
    // With quietMs, an unchanged snapshot is an answer too, once nothing has been queued for that long.
    const published = quietMs === undefined ? latest > after : latest >= after;
    if (progressed() && idle && published && app.store.unroutedCount() === 0) {
      quietSince ??= Date.now();
      if (quietMs === undefined || Date.now() - quietSince >= quietMs) return latest;
    } else quietSince = undefined;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

async function latestSnapshot(app: App): Promise<number | undefined> {
  const res = await fetch(`${app.httpUrl}/snapshots`).catch(() => undefined);
  return res?.ok ? ((await res.json()) as { latest: number | null }).latest ?? undefined : undefined;
}

async function evaluate(config: Config, version: number, test: TestSet, first: number[], later: number[], say: (l: string) => void): Promise<void> {
  const snapshot = await loadSnapshot(`${snapshotsDirOf(config)}/v${String(version).padStart(6, '0')}`, { modelsDir: config.modelsDir });
  try {
    const all = await zeroShotReport({ ensemble: snapshot.ensemble, test });
    const families = await Promise.all([first, later].map((classes) => zeroShotReport({ ensemble: snapshot.ensemble, test, classes })));
    say(
      `snapshot v${version} (epoch ${snapshot.manifest.centroids.epoch}, ${snapshot.manifest.experts.length} experts): zero-shot top-1 ${(100 * all.top1).toFixed(1)}% over all 10 classes; ` +
        `${(100 * families[0]!.top1).toFixed(1)}% on the first families' images choosing among their ${first.length} class names, ` +
        `${(100 * families[1]!.top1).toFixed(1)}% on the later families' images choosing among their ${later.length}`,
    );
    say(`  per class: ${all.perClass.map((c) => `${c.name} ${(100 * c.top1).toFixed(0)}%`).join(', ')}`);
  } finally {
    snapshot.dispose();
  }
}

/**
 * Topics and groups of this run alone, where the config leaves the defaults: the local broker keeps its
 * data between demos, and a fresh state dir reading the default topics would consume an earlier run's
 * pairs too (duplicates, odd counts, a story that does not add up). Names the config sets are kept.
 */
function freshTopics(config: Config, started: number): Pick<Config, 'topics' | 'groups'> {
  const defaults = ConfigSchema.parse({});
  const run = `demo-${started.toString(36)}`;
  const fresh = (name: string, fallback: string) => (name === fallback ? fallback.replace(/^modestream\./, `modestream.${run}.`) : name);
  // Every topic and group, the control topic's epochs included: a fresh state dir must not meet an old run's epochs.
  const renamed = <T extends Record<string, unknown>>(values: T, fallbacks: T): T =>
    Object.fromEntries(Object.entries(values).map(([key, value]) => [key, typeof value === 'string' ? fresh(value, fallbacks[key] as string) : value])) as T;
  return { topics: renamed(config.topics, defaults.topics), groups: renamed(config.groups, defaults.groups) };
}
