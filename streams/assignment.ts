/**
 * The sharder's partition assignment, the kafkajs edge of restore on assignment (ARCHITECTURE.md
 * section 4). kafkajs starts an assigned partition at the GROUP'S committed offset; the sharder's
 * position is its own store's, so on every GROUP_JOIN each assigned partition is sought to the offset
 * LMDB made durable here, or to 0 when the store holds nothing of it (below the log start, kafkajs's
 * out-of-range reset takes the earliest offset: the stage subscribes fromBeginning). The seek is
 * synchronous on purpose: GROUP_JOIN is emitted inside join-and-sync, before the first fetch of the
 * generation, and a pending seek is applied at the start of every fetch, so no record of the new
 * assignment is fetched from the committed offset first. The offsets the progress needs (committed,
 * earliest, end) are read afterwards; nothing waits for them.
 */
import type { Admin, Consumer } from 'kafkajs';
import { errorMessage } from '../src/errors.js';
import type { Logger } from '../src/logger.js';
import { planRestore, type RestoreTracker } from './restore.js';

export interface AssignmentDeps {
  consumer: Consumer;
  admin: Pick<Admin, 'fetchTopicOffsets' | 'fetchOffsets'>;
  topic: string;
  group: string;
  /** Next offset durable here for a partition (state/shards/offsets.ts). */
  nextOffset(topic: string, partition: number): number | undefined;
  tracker: RestoreTracker;
  logger: Logger;
}

export function seekOnAssignment({ consumer, admin, topic, group, nextOffset, tracker, logger }: AssignmentDeps): void {
  let generation = 0;
  consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
    const partitions = payload.memberAssignment[topic] ?? [];
    const local = new Map(partitions.map((p) => [p, nextOffset(topic, p)]));
    for (const [partition, next] of local) consumer.seek({ topic, partition, offset: String(next ?? 0) });
    tracker.assigned(partitions);
    logger.info({ topic, partitions }, 'routed partitions assigned');
    const mine = ++generation;
    void (async () => {
      const [ends, committed] = await Promise.all([admin.fetchTopicOffsets(topic), admin.fetchOffsets({ groupId: group, topics: [topic] })]);
      if (mine !== generation) return;
      const committedOf = new Map((committed[0]?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
      for (const end of ends) {
        if (!local.has(end.partition)) continue;
        const committed = committedOf.get(end.partition);
        tracker.planned(planRestore({ topic, partition: end.partition, local: local.get(end.partition), committed, earliest: Number(end.low), end: Number(end.high) }), committed);
      }
    })().catch((err: unknown) => logger.warn({ topic, err: errorMessage(err) }, 'restore progress unknown: offsets not read'));
  });
}
