/**
 * The entry point of a training child process (dist/training/job-process.js), forked by the scheduler
 * (scheduler.ts). A job runs in its own process so that a crash, an out-of-memory kill or a kill -9
 * never takes ingestion with it.
 *
 * Protocol, over the IPC channel of `child_process.fork`: the scheduler sends one JobRequest (the
 * resolved config object and the target); the child answers with one JobOutcome and exits: 0 done,
 * 130 stopped (SIGTERM/SIGINT: it stops after the current step, its checkpoint kept), 1 failed. Step
 * progress is not sent: the job reports it to the model store (LMDB), where `status` reads it from any
 * process. The config comes over IPC rather than argv so that secrets in it (kafka.sasl) never show in
 * `ps`; argv holds only the job's name, so that `ps` says which job a process is.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../app/logger.js';
import { ConfigSchema, type Config } from '../src/config.js';
import { errorMessage } from '../src/errors.js';
import { runTrainingJob, type TrainJobResult, type TrainTarget } from './job.js';

export interface JobRequest {
  type: 'train';
  config: Config;
  target: TrainTarget;
}

export type JobOutcome = { type: 'done'; result: TrainJobResult } | { type: 'stopped'; step: number } | { type: 'failed'; error: string };

export const EXIT_STOPPED = 130;

/** Sends the outcome (waiting until it is written: exiting at once could lose it), then exits. */
function finish(outcome: JobOutcome, code: number): void {
  if (!process.send || !process.connected) process.exit(code);
  process.send(outcome, undefined, {}, () => process.exit(code));
}

let running = false;
const abort = new AbortController();

async function run(request: JobRequest): Promise<void> {
  running = true;
  // First SIGTERM/SIGINT: stop after the current step (the last checkpoint stays); a second: exit now.
  const stop = () => {
    abort.abort();
    process.once('SIGINT', () => process.exit(EXIT_STOPPED));
    process.once('SIGTERM', () => process.exit(143));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    // The scheduler's config, validated again: it crossed a process boundary.
    const config = ConfigSchema.parse(request.config);
    const logger = createLogger(config, 'train', { job: request.target.kind === 'seed' ? 'seed' : `expert-${request.target.expert}` });
    const result = await runTrainingJob({ config, logger, target: request.target, signal: abort.signal });
    if (result.stopped) finish({ type: 'stopped', step: result.steps }, EXIT_STOPPED);
    else finish({ type: 'done', result }, 0);
  } catch (err) {
    finish({ type: 'failed', error: errorMessage(err) }, 1);
  }
}

// Only as the child's entry point: importing this module (for its types) must not touch the importer's process.
const isMain = process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain && !process.send) {
  process.stderr.write('modestream: training/job-process.js is started by the training scheduler (fork with IPC); run `modestream train` instead\n');
  process.exit(2);
}
if (isMain) {
  // The scheduler is gone: an orphaned job would train on next to the one a restarted scheduler starts,
  // on the same checkpoints, so it stops after its current step (or at once if it had not started).
  process.once('disconnect', () => (running ? abort.abort() : process.exit(EXIT_STOPPED)));
  process.once('message', (message: JobRequest) => void run(message));
}
