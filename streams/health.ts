/**
 * The truth about one stage's consumer, for liveness and readiness probes. kafkajs crashes a consumer
 * and either restarts it (retriable errors, as `restartOnFailure` decides) or leaves it stopped for good;
 * before this, /healthz said ok in both cases.
 *
 * Restart policy: a Kafka-side failure (connection lost, broker restarting, leader moved:
 * `isRetriableKafkaError`) is waited out for as long as it lasts, the stage reporting `restarting` (not
 * ready, still alive). Any other failure (our own processing after kafkajs's retries, e.g. a disk that
 * refuses writes) is restarted at most `maxRestarts` times in a row; then the stage is `dead`, liveness
 * fails, and the orchestrator restarts the process, which resumes from durable offsets.
 */
import type { Consumer } from 'kafkajs';
import { errorMessage } from '../src/errors.js';
import { isRetriableKafkaError } from './errors.js';

export type StageState = 'starting' | 'running' | 'restarting' | 'dead' | 'stopped';

export interface StageHealth {
  stage: string;
  state: StageState;
  /** When the stage entered this state (ms since epoch). */
  since: number;
  /** Consecutive restarts after failures of our own (reset by a committed chunk). */
  restarts: number;
  /** The last failure seen, if any. */
  error?: string;
}

export interface StageHealthTracker {
  /** For kafkajs `retry.restartOnFailure`. */
  shouldRestart(err: unknown): boolean;
  /** Follows the consumer's group joins and crashes. */
  watch(consumer: Consumer): void;
  /** A chunk was committed: the stage works. */
  progressed(): void;
  stopped(): void;
  view(): StageHealth;
}

export function createStageHealth({ stage, maxRestarts, now = Date.now }: { stage: string; maxRestarts: number; now?: () => number }): StageHealthTracker {
  let state: StageState = 'starting';
  let since = now();
  let restarts = 0;
  let error: string | undefined;
  const enter = (next: StageState) => {
    // Dead and stopped are final: a late event from the dying consumer must not revive the stage.
    if (state === next || state === 'dead' || state === 'stopped') return;
    state = next;
    since = now();
  };
  return {
    shouldRestart(err) {
      error = errorMessage(err);
      if (isRetriableKafkaError(err)) return true;
      restarts++;
      return restarts <= maxRestarts;
    },
    watch(consumer) {
      consumer.on(consumer.events.GROUP_JOIN, () => enter('running'));
      consumer.on(consumer.events.CRASH, ({ payload }) => {
        error = errorMessage(payload.error);
        enter(payload.restart ? 'restarting' : 'dead');
      });
    },
    progressed() {
      restarts = 0;
      enter('running');
    },
    stopped() {
      enter('stopped');
    },
    view: () => ({ stage, state, since, restarts, ...(error !== undefined ? { error } : {}) }),
  };
}

/** Liveness: no stage is dead. Readiness: every stage runs. */
export function probeHealth(stages: readonly StageHealth[]): { live: boolean; ready: boolean } {
  return { live: stages.every((s) => s.state !== 'dead'), ready: stages.every((s) => s.state === 'running') };
}
