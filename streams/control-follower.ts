/**
 * The control follower every node runs (ARCHITECTURE.md section 4): reads the control topic from its
 * beginning, folds each record into the log's state (streams/control-log.ts reduceControl) and writes
 * each accepted epoch into the local centroid store, in log order, before reading on. The local store
 * is thus a copy of the log that routing follows (src/cluster/routing.ts createRoutingSource).
 *
 * A group of its own per process that never commits: every start replays the whole (compacted) log,
 * so every node reaches the same verdicts; the local store's conditional write makes the replay of
 * epochs it holds already a no-op.
 */
import { randomUUID } from 'node:crypto';
import type { Admin, Kafka } from 'kafkajs';
import { BehaviorSubject, Subject, filter, firstValueFrom, type Observable } from 'rxjs';
import type { KafkaSettings } from '../src/config.js';
import { errorMessage } from '../src/errors.js';
import type { Logger } from '../src/logger.js';
import { emptyControlState, reduceControl, type ControlOutcome, type ControlState } from './control-log.js';
import { createStageConsumer } from './kafka.js';
import type { EpochStore } from './ports.js';

export interface ControlFollower {
  /** Resolves once every record that was in the log when the follower started has been applied. */
  caughtUp(): Promise<void>;
  /** Resolves once the record at `offset` (and everything before it) has been applied. */
  reached(offset: number): Promise<void>;
  /** What the log has decided so far (newest claim, accepted epochs). */
  state(): ControlState;
  /** Every verdict, in log order (claims, accepted and ignored records). */
  readonly outcomes: Observable<ControlOutcome & { offset: number }>;
  stop(): Promise<void>;
}

export interface ControlFollowerOptions {
  kafka: Kafka;
  admin: Admin;
  topic: string;
  /** Prefix of the per-process group id. */
  groupPrefix: string;
  settings: KafkaSettings;
  store: EpochStore;
  logger: Logger;
}

export async function startControlFollower({ kafka, admin, topic, groupPrefix, settings, store, logger }: ControlFollowerOptions): Promise<ControlFollower> {
  let state = emptyControlState();
  // The next offset to apply; messages below it are a replay after a consumer restart.
  const position = new BehaviorSubject(0);
  const outcomes = new Subject<ControlOutcome & { offset: number }>();
  const offsets = await topicOffsets(admin, topic, logger);
  const end = Number(offsets[0]?.high ?? 0);
  const start = Number(offsets[0]?.low ?? 0);

  const consumer = createStageConsumer({ kafka, groupId: `${groupPrefix}.follower.${randomUUID()}`, settings, logger });
  // A batch's last offset can lie past its last record (compaction removed the tail, or only tombstones
  // were left): the position moves there too, so caughtUp() never waits for a record that is gone.
  consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
    const next = Number(payload.lastOffset) + 1;
    if (payload.topic === topic && next > position.value) position.next(next);
  });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch, heartbeat }) => {
      for (const message of batch.messages) {
        const offset = Number(message.offset);
        if (offset < position.value) continue;
        const { state: next, outcome } = reduceControl(state, offset, { key: message.key?.toString() ?? '', value: message.value });
        if (outcome.kind === 'accepted') {
          // Applied before the state moves on: a failed write is retried when the consumer restarts.
          const written = await store.publish(outcome.model);
          logger.info({ epoch: outcome.epoch, publish: outcome.publish, offset, written }, written ? 'centroid epoch applied from the control log' : 'centroid epoch from the control log is in the local store already');
        } else if (outcome.kind === 'ignored') logger.warn({ offset, epoch: outcome.epoch, publish: outcome.publish, reason: outcome.reason }, 'control record ignored');
        else if (outcome.kind === 'claim') logger.info({ offset, node: outcome.node }, 'controller claim in the control log');
        state = next;
        if (outcome.kind !== 'none') outcomes.next({ ...outcome, offset });
        position.next(offset + 1);
        await heartbeat();
      }
    },
  });

  const reached = (offset: number) =>
    firstValueFrom(position.pipe(filter((p) => p > offset))).then(
      () => undefined,
      (err: unknown) => {
        throw new Error(`control follower stopped before offset ${offset} of ${topic}: ${errorMessage(err)}`);
      },
    );
  let stopping: Promise<void> | undefined;
  return {
    caughtUp: () => (end > start ? reached(end - 1) : Promise.resolve()),
    reached,
    state: () => state,
    outcomes: outcomes.asObservable(),
    stop() {
      stopping ??= (async () => {
        await consumer.disconnect();
        position.complete();
        outcomes.complete();
      })();
      return stopping;
    },
  };
}

/**
 * The partition's offsets; retried, because right after the topic's creation the metadata kafkajs holds
 * may still name no leader for it ("not the leader for that topic-partition").
 */
async function topicOffsets(admin: Admin, topic: string, logger: Logger, attempts = 20) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await admin.fetchTopicOffsets(topic);
    } catch (err) {
      if (attempt >= attempts) throw err;
      logger.debug({ topic, err: errorMessage(err), attempt }, 'control topic offsets not available yet; retrying');
      await new Promise((r) => setTimeout(r, Math.min(3000, 200 * attempt)));
    }
  }
}
