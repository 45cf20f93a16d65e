/**
 * The training scheduler (ARCHITECTURE.md section 3): decides which model trains next and runs it as a child
 * process (job-process.ts), so a training job that crashes or is killed never takes ingestion with
 * it; the previous snapshot keeps being served, and the job is retried with exponential backoff.
 *
 * Each tick: the seed model first (once the shards hold controller.seedMinRecords), then experts that are
 * due (pending >= retrain.pendingRecords, or oldest pending record older than retrain.maxAgeSeconds, or
 * never trained), most stale first, at most retrain.concurrency jobs at once (one per accelerator).
 * A finished job publishes a new ensemble snapshot, and so does a new expert set (a spawn, a split), its
 * untrained experts serving with the seed.
 *
 * The child gets its options (this process's resolved config and the target) over the fork IPC channel
 * and answers with one structured outcome (job-process.ts); its stderr is kept only to explain a child
 * that died without one (kill -9, a native crash).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { exhaustMap, interval, startWith, type Subscription } from 'rxjs';
import { snapshotsDirOf, type Config } from '../src/config.js';
import { errorMessage } from '../src/errors.js';
import { backoffSeconds, freshnessOf, type Freshness } from '../src/freshness.js';
import type { Logger } from '../src/logger.js';
import { expertName, SEED } from '../state/models.js';
import { createSnapshotStore } from '../state/snapshots.js';
import type { Core } from '../app/core.js';
import type { Telemetry } from '../app/telemetry.js';
// Types only: loading the module would load the job's code (tfjs and all) into this process.
import type { JobOutcome, JobRequest } from './job-process.js';
import { publishSnapshot } from './snapshot.js';

// Compiled, the job is this file's sibling (dist/training/); run from the sources (vitest), the sibling
// is a .ts file, so the compiled one under dist/ is used, as bin/modestream.js does for the CLI.
const JOB_PROCESS = [new URL('./job-process.js', import.meta.url), new URL('../dist/training/job-process.js', import.meta.url)].map((u) => fileURLToPath(u)).find((p) => existsSync(p)) ?? fileURLToPath(new URL('./job-process.js', import.meta.url));

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
  /** Children train with exactly this config, whatever mix of file, env and flags produced it. */
  config: Config;
  core: Core;
  logger: Logger;
  /** Job outcomes and events (retrain, snapshot, failure) for metrics and the event log. */
  telemetry: Telemetry;
  /** Whether this node trains model `name` (training/placement.ts); default: every model. */
  trains?: (name: string) => boolean;
  /** Where the seed trains from: the seed sample on a node holding only some partitions (training/placement.ts). */
  seedFrom?: () => 'sample' | 'shards';
  /** A job registered a new version (the models topic carries it to the other nodes: app/model-replica.ts). */
  onTrained?: (name: string, version: number) => Promise<void>;
  /** Starts the training child of job `name` with an IPC channel (tests inject failures); default: fork job-process.js. */
  spawnJob?: (name: string) => ChildProcess;
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
  const { config, core, logger, telemetry } = deps;
  const record = (kind: 'retrain' | 'snapshot' | 'failure', message: string) => telemetry.emit({ type: 'event', kind, message });
  const settings = config.controller.retrain;
  const running = new Map<string, ChildProcess>();
  const failing: SchedulerView['failing'] = {};
  let stopping = false;
  // A spawn or split changes the epoch's expert set; its new experts serve with the seed until trained,
  // and must reach the served snapshot without waiting for a job to finish. `served` caches the newest
  // snapshot's expert set (whoever published it: this scheduler, the assembler, `modestream train`).
  const snapshots = createSnapshotStore({ dir: snapshotsDirOf(config), keep: config.snapshots.keep });
  let served: { version: number; experts: string } | undefined;
  let publishing: Promise<void> | undefined;
  const expertSet = (ids: Iterable<number>) => [...ids].join(',');

  const spawnJob =
    deps.spawnJob ??
    // The name in argv only labels the process for `ps`; the options travel over IPC.
    // 'advanced' serialization (structured clone) keeps what JSON would not, such as a NaN loss.
    ((name: string) => fork(JOB_PROCESS, [name], { env: process.env, execArgv: [], stdio: ['ignore', 'pipe', 'pipe', 'ipc'], serialization: 'advanced' }));

  function plan(now: number): { queue: SchedulerView['queue']; experts: ExpertFreshnessView[] } {
    const experts = expertFreshness(core, config, now);
    const queue: SchedulerView['queue'] = [];
    const trains = deps.trains ?? (() => true);
    if (!core.models.latest(SEED)) {
      // What the job will train from (training/job.ts): the cluster-wide seed sample on a node holding only
      // some partitions, once it holds a batch; otherwise the routed records of the local shards. Records
      // still waiting in the unrouted shard (the backlog before the first epoch) do not count: a job
      // started on them would find nothing to train on and fail.
      const routed = core.store.totalRecords() - core.store.unroutedCount();
      const rate = config.controller.seedSample.rate;
      const fromSample = (deps.seedFrom?.() ?? 'shards') === 'sample';
      // On such a node the local shards hold its partitions only; the sample tells the whole stream's size.
      const total = fromSample && rate > 0 ? Math.max(routed, Math.round(core.seedSample.seen() / rate)) : routed;
      const hasData = routed > 0 || (fromSample && core.seedSample.size() >= config.experts.training.batch);
      if (trains(SEED) && hasData && total >= config.controller.seedMinRecords && core.centroids.latestEpoch() > 0) queue.push({ name: SEED, reason: `${total} records, no seed model yet`, priority: Infinity });
      return { queue, experts };
    }
    for (const f of experts.filter((e) => e.due).sort((a, b) => b.priority - a.priority)) queue.push({ name: expertName(f.expert), reason: f.reason, priority: f.priority });
    return { queue: queue.filter((q) => !running.has(q.name) && trains(q.name)), experts };
  }

  function start(name: string, reason: string): void {
    const target: JobRequest['target'] = name === SEED ? { kind: 'seed', from: deps.seedFrom?.() ?? 'shards' } : { kind: 'expert', expert: Number(name.slice('expert-'.length)) };
    const started = Date.now();
    const child = spawnJob(name);
    running.set(name, child);
    logger.info({ job: name, reason, pid: child.pid }, 'training job started');
    let outcome: JobOutcome | undefined;
    child.on('message', (message: JobOutcome) => (outcome = message));
    // Without a listener, an 'error' (the fork failed, the channel broke) would throw in this process.
    child.on('error', (err) => logger.warn({ job: name, err: errorMessage(err) }, 'training child error'));
    // A child that died before reading its request has closed the channel; its exit is handled below.
    child.send({ type: 'train', config, target } satisfies JobRequest, (err) => err && logger.warn({ job: name, err: errorMessage(err) }, 'could not send the training request'));
    let tail = '';
    const keep = (b: Buffer) => (tail = (tail + b.toString()).slice(-4000));
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    // 'close', not 'exit': it comes after the IPC channel has delivered the child's last message.
    child.once('close', (code, signal) => {
      running.delete(name);
      const seconds = (Date.now() - started) / 1000;
      const done = code === 0 && outcome?.type === 'done' ? outcome.result : undefined;
      if (done) {
        delete failing[name];
        telemetry.emit({ type: 'training', name, outcome: 'done', seconds, samplesPerSecond: done.samplesPerSecond });
        record('retrain', `${name} v${done.version} trained in ${seconds.toFixed(0)} s (${reason})`);
        void deps.onTrained?.(name, done.version).catch((err: unknown) => {
          logger.error({ job: name, version: done.version, err: errorMessage(err) }, 'could not publish the model version to the cluster');
          record('failure', `${name} v${done.version} not published to the models topic: ${errorMessage(err)}`);
        });
        if (!stopping) void publish(`after training ${name}`);
        return;
      }
      // Stopped by us at shutdown: not a failure; the job resumes from its checkpoint next time.
      if (stopping && (signal === 'SIGTERM' || outcome?.type === 'stopped')) return;
      const failures = (failing[name]?.failures ?? 0) + 1;
      const wait = backoffSeconds(failures, settings);
      const error = outcome?.type === 'failed' ? outcome.error : outcome?.type === 'stopped' ? `stopped at step ${outcome.step}` : diedWithout(code, signal, tail);
      failing[name] = { failures, retryAt: Date.now() + wait * 1000, error };
      telemetry.emit({ type: 'training', name, outcome: 'failed', seconds });
      logger.warn({ job: name, code, signal, failures, retryInSeconds: wait, error }, 'training job failed; will retry');
      record('failure', `${name} training failed (${error}); retry ${failures} in ${wait} s`);
    });
  }

  function publish(why: string): Promise<void> {
    const done = publishSnapshot({ config, core }).then(
      (manifest) => {
        record('snapshot', `snapshot v${manifest.version} published ${why} (epoch ${manifest.centroids.epoch}, ${manifest.experts.length} experts)`);
      },
      (err: unknown) => {
        logger.error({ err: errorMessage(err) }, 'snapshot publish failed');
        record('failure', `snapshot publish failed: ${errorMessage(err)}`);
      },
    );
    const tracked: Promise<void> = done.finally(() => {
      if (publishing === tracked) publishing = undefined;
    });
    publishing = tracked;
    return done;
  }

  /** A snapshot for the epoch's experts when they differ from the served snapshot's (a spawn, a split). */
  async function publishNewExperts(): Promise<void> {
    const model = core.centroids.latest();
    if (publishing || !model || !core.models.latest(SEED)) return;
    // No snapshot yet: the seed's job publishes the first one, with every expert of its epoch.
    const latest = await snapshots.latest();
    if (latest === undefined) return;
    if (served?.version !== latest) {
      // An unreadable newest snapshot counts as one without these experts: a new one replaces it.
      const found = await snapshots.manifest(latest).catch(() => undefined);
      served = { version: latest, experts: found ? expertSet(found.manifest.experts.map((e) => e.id)) : '' };
    }
    const now = expertSet(model.experts);
    if (now !== served.experts && !publishing) void publish('for a new expert set (untrained experts serve with the seed)');
  }

  async function tick(): Promise<void> {
    if (stopping) return;
    const now = Date.now();
    const { queue } = plan(now);
    for (const job of queue) {
      if (running.size >= settings.concurrency) break;
      if ((failing[job.name]?.retryAt ?? 0) > now) continue;
      start(job.name, job.reason);
    }
    await publishNewExperts();
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
      await publishing;
      // A stopped job keeps its last checkpoint and resumes on the next start.
      await Promise.all(
        [...running.values()].map(
          (child) =>
            new Promise<void>((resolve) => {
              const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
              child.once('close', () => {
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

/** Why a child ended without an outcome: its exit, and the last line of its stderr that is not a JSON log line. */
function diedWithout(code: number | null, signal: NodeJS.Signals | null, stderr: string): string {
  const last = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('{'))
    .at(-1);
  return `${signal ? `killed by ${signal}` : `exit ${code}`}${last ? `: ${last.slice(0, 300)}` : ''}`;
}
