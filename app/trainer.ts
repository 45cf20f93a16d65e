/**
 * The training scheduler (ARCHITECTURE.md section 3): decides which model trains next and runs it as a child
 * process (`modestream train`), so a training job that crashes or is killed never takes ingestion with
 * it; the previous snapshot keeps being served, and the job is retried with exponential backoff.
 *
 * Each tick: the seed model first (once the shards hold controller.seedMinRecords), then experts that are
 * due (pending >= retrain.pendingRecords, or oldest pending record older than retrain.maxAgeSeconds, or
 * never trained), most stale first, at most retrain.concurrency jobs at once (one per accelerator).
 * A finished job publishes a new ensemble snapshot.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { exhaustMap, interval, startWith, type Subscription } from 'rxjs';
import type { Config } from '../src/config.js';
import { errorMessage } from '../src/errors.js';
import { backoffSeconds, freshnessOf, type Freshness } from '../src/freshness.js';
import type { Logger } from '../src/logger.js';
import type { EventLog } from '../state/events.js';
import { expertName, SEED } from '../state/models.js';
import type { Metrics } from './metrics.js';
import type { Core } from './core.js';
import { publishSnapshot } from './snapshot.js';

const CLI = fileURLToPath(new URL('../../bin/modestream.js', import.meta.url));

export interface ExpertFreshnessView extends Freshness {
  version: number | null;
  lastTrainedAt: number | null;
}

export interface SchedulerView {
  experts: ExpertFreshnessView[];
  queue: { name: string; reason: string; priority: number }[];
  running: string[];
  /** name -> failures and when the next attempt may start */
  failing: Record<string, { failures: number; retryAt: number; error: string }>;
}

export interface SchedulerDeps {
  config: Config;
  /** The resolved config as a file, so children train with exactly this process's settings. */
  configFile: string;
  core: Core;
  logger: Logger;
  events: EventLog;
  metrics?: Metrics;
  /** Starts a training child (tests inject failures); default: `node bin/modestream.js train ...`. */
  spawnJob?: (args: string[]) => ChildProcess;
}

export interface RunningScheduler {
  view(): SchedulerView;
  /** Runs one scheduling pass now (tests). */
  tick(): Promise<void>;
  stop(): Promise<void>;
}

/** Per-expert freshness from the shards and the model registry. */
export function expertFreshness(core: Pick<Core, 'centroids' | 'store' | 'models'>, config: Config, now = Date.now()): ExpertFreshnessView[] {
  const model = core.centroids.latest();
  if (!model) return [];
  const m = model.fineIds.length;
  return Array.from(model.experts, (expert) => {
    const { records } = core.store.shardSize(expert);
    const version = core.models.latest(expertName(expert));
    const first = core.store.read(expert, { fromSeq: version?.shardSeq ?? 0, limit: 1 }).next();
    const freshness = freshnessOf(
      {
        expert,
        records,
        trainedRecords: version?.records,
        oldestPendingTs: first.done ? undefined : first.value.record.ts,
        fineShare: model.fineToExpert.filter((e) => e === expert).length / m,
      },
      config.controller.retrain,
      now,
    );
    return { ...freshness, version: version?.version ?? null, lastTrainedAt: version?.createdAt ?? null };
  });
}

/** Freshness without a scheduler in this process (no trainer role): nothing queued or running here. */
export function expertsOnly(core: Pick<Core, 'centroids' | 'store' | 'models'>, config: Config): SchedulerView {
  return { experts: expertFreshness(core, config), queue: [], running: [], failing: {} };
}

export function startTrainingScheduler(deps: SchedulerDeps): RunningScheduler {
  const { config, configFile, core, logger, events, metrics } = deps;
  const settings = config.controller.retrain;
  const running = new Map<string, ChildProcess>();
  const failing: SchedulerView['failing'] = {};
  let stopping = false;

  const spawnJob =
    deps.spawnJob ??
    ((args: string[]) => spawn(process.execPath, [CLI, ...args], { env: process.env, stdio: ['ignore', 'pipe', 'pipe'] }));

  function plan(now: number): { queue: SchedulerView['queue']; experts: ExpertFreshnessView[] } {
    const experts = expertFreshness(core, config, now);
    const queue: SchedulerView['queue'] = [];
    if (!core.models.latest(SEED)) {
      const total = core.store.totalRecords() - core.store.unroutedCount();
      if (total >= config.controller.seedMinRecords && core.centroids.latestEpoch() > 0) queue.push({ name: SEED, reason: `${total} records, no seed model yet`, priority: Infinity });
      return { queue, experts };
    }
    for (const f of experts.filter((e) => e.due).sort((a, b) => b.priority - a.priority)) queue.push({ name: expertName(f.expert), reason: f.reason, priority: f.priority });
    return { queue: queue.filter((q) => !running.has(q.name)), experts };
  }

  function start(name: string, reason: string): void {
    const args = ['train', name === SEED ? '--seed' : `--expert=${name.slice('expert-'.length)}`, '--no-progress', '--config', configFile];
    const started = Date.now();
    const child = spawnJob(args);
    running.set(name, child);
    logger.info({ job: name, reason, pid: child.pid }, 'training job started');
    let tail = '';
    const keep = (b: Buffer) => (tail = (tail + b.toString()).slice(-4000));
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    child.once('exit', (code, signal) => {
      running.delete(name);
      const seconds = (Date.now() - started) / 1000;
      metrics?.trainingDuration.observe({ name, outcome: code === 0 ? 'done' : 'failed' }, seconds);
      if (code === 0) {
        delete failing[name];
        const version = core.models.latest(name);
        void events.record('retrain', `${name} v${version?.version ?? '?'} trained in ${seconds.toFixed(0)} s (${reason})`);
        if (version) metrics?.trainingSamplesPerSecond.set({ name }, version.samplesPerSecond);
        if (!stopping) void publish(`after training ${name}`);
        return;
      }
      // Stopped by us at shutdown: not a failure; the job resumes from its checkpoint next time.
      if (stopping && (signal === 'SIGTERM' || code === 130)) return;
      const failures = (failing[name]?.failures ?? 0) + 1;
      const wait = backoffSeconds(failures, settings);
      const error = lastLine(tail) ?? `exit ${code ?? signal}`;
      failing[name] = { failures, retryAt: Date.now() + wait * 1000, error };
      metrics?.trainingFailures.inc({ name });
      logger.warn({ job: name, code, signal, failures, retryInSeconds: wait, error }, 'training job failed; will retry');
      void events.record('failure', `${name} training failed (${error}); retry ${failures} in ${wait} s`);
    });
  }

  async function publish(why: string): Promise<void> {
    try {
      const manifest = await publishSnapshot({ config, core });
      metrics?.snapshotVersion.set(manifest.version);
      await events.record('snapshot', `snapshot v${manifest.version} published ${why} (epoch ${manifest.centroids.epoch}, ${manifest.experts.length} experts)`);
    } catch (err) {
      logger.error({ err: errorMessage(err) }, 'snapshot publish failed');
      await events.record('failure', `snapshot publish failed: ${errorMessage(err)}`);
    }
  }

  async function tick(): Promise<void> {
    if (stopping) return;
    const now = Date.now();
    const { queue, experts } = plan(now);
    if (metrics) {
      for (const e of experts) {
        const label = { expert: String(e.expert) };
        metrics.expertPending.set(label, e.pending);
        metrics.expertOldestPendingAge.set(label, e.oldestPendingAgeSeconds ?? 0);
        metrics.expertVersion.set(label, e.version ?? 0);
        if (e.lastTrainedAt) metrics.expertLastTrained.set(label, e.lastTrainedAt / 1000);
      }
    }
    for (const job of queue) {
      if (running.size >= settings.concurrency) break;
      if ((failing[job.name]?.retryAt ?? 0) > now) continue;
      start(job.name, job.reason);
    }
  }

  const subscription: Subscription = interval(config.controller.tickMs)
    .pipe(
      startWith(0),
      exhaustMap(() => tick().catch((err: unknown) => logger.error({ err: errorMessage(err) }, 'scheduler tick failed'))),
    )
    .subscribe();

  return {
    view() {
      const { queue, experts } = plan(Date.now());
      return { experts, queue, running: [...running.keys()], failing: { ...failing } };
    },
    tick,
    async stop() {
      stopping = true;
      subscription.unsubscribe();
      // A stopped job keeps its last checkpoint and resumes on the next start.
      await Promise.all(
        [...running.values()].map(
          (child) =>
            new Promise<void>((resolve) => {
              const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
              child.once('exit', () => {
                clearTimeout(timer);
                resolve();
              });
              child.kill('SIGTERM');
            }),
        ),
      );
    },
  };
}

function lastLine(text: string): string | undefined {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  const message = [...lines].reverse().find((l) => l.startsWith('modestream:'));
  return (message ?? lines.at(-1))?.slice(0, 300);
}
