/**
 * Publishing a centroid epoch through the control topic (ARCHITECTURE.md section 3): the chunks go out
 * one send each (acks = all; a record batch must stay under the topic's max.message.bytes), under the
 * writer's claim; then the publisher waits for its own follower to apply the log up to its last chunk,
 * and it won only if the log accepted THIS attempt for that epoch number. A losing attempt tombstones
 * its chunks so compaction reclaims them (no reader's verdict depends on a losing attempt).
 */
import type { Producer } from 'kafkajs';
import type { CentroidModel } from '../src/cluster/model.js';
import { errorMessage } from '../src/errors.js';
import type { Logger } from '../src/logger.js';
import type { ControlFollower } from './control-follower.js';
import { chunkKey, encodeRecord, epochChunks } from './control-log.js';
import type { CentroidPublisher } from './ports.js';
import type { CentroidSource } from '../src/cluster/routing.js';

export interface LogPublisherOptions {
  producer: Producer;
  topic: string;
  follower: ControlFollower;
  /** The local store the follower writes: what the controller reads back. */
  source: CentroidSource;
  node: string;
  /** The claim offset this writer holds, read at each publish (the leader's term binds its own). */
  claim: () => number;
  logger: Logger;
  /** After a publish the log refused because a newer claim exists: the writer was deposed. */
  onFenced?: () => void;
}

export function createLogPublisher({ producer, topic, follower, source, node, claim, logger, onFenced }: LogPublisherOptions): CentroidPublisher {
  return {
    latestEpoch: () => source.latestEpoch(),
    latest: () => source.latest(),
    async publish(model: CentroidModel): Promise<boolean> {
      const started = performance.now();
      const held = claim();
      const { publish, chunks } = epochChunks(model, { claim: held, node });
      let last = -1;
      for (const chunk of chunks) {
        const [meta] = await producer.send({ topic, acks: -1, messages: [encodeRecord(chunk)] });
        last = Number(meta!.baseOffset);
      }
      await follower.reached(last);
      const state = follower.state();
      const won = state.accepted.get(model.epoch)?.publish === publish;
      const ms = Math.round(performance.now() - started);
      if (won) {
        logger.info({ epoch: model.epoch, chunks: chunks.length, bytes: chunks.reduce((n, c) => n + c.data.byteLength, 0), claim: held, ms }, 'centroid epoch published on the control topic');
        return true;
      }
      const fenced = (state.claim?.offset ?? held) !== held;
      logger.warn({ epoch: model.epoch, claim: held, newestClaim: state.claim?.offset, ms }, fenced ? 'epoch refused: a newer controller claim fences this writer' : 'epoch refused: another attempt of this epoch number was accepted first');
      // Best effort: a tombstone that fails only leaves bytes for compaction to keep.
      await producer.send({ topic, acks: -1, messages: chunks.map((c) => ({ key: chunkKey(c), value: null })) }).catch((err: unknown) => logger.warn({ err: errorMessage(err) }, 'tombstones for a refused epoch not sent'));
      if (fenced) onFenced?.();
      return false;
    },
  };
}
