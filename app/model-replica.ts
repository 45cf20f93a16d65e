/**
 * The model replica (ARCHITECTURE.md section 4): every node keeps a copy of every trained model version.
 * A trainer publishes each version it trains to the models topic (streams/models-log.ts); every node
 * follows the topic from the beginning and writes the versions it lacks into its own model store, so a
 * node with the http role assembles complete ensemble snapshots whichever node trained each expert.
 */
import { randomUUID } from 'node:crypto';
import type { Admin, Kafka, Producer } from 'kafkajs';
import type { Config } from '../src/config.js';
import { errorMessage } from '../src/errors.js';
import type { Logger } from '../src/logger.js';
import type { ModelStore } from '../state/models.js';
import { createStageConsumer } from '../streams/kafka.js';
import { createModelAssembler, decodeChunk, encodeRelease, type ModelRelease } from './models-log.js';

export interface ModelReplica {
  /** Sends a locally registered version to the cluster; resolves once every chunk is acknowledged by all in-sync replicas. */
  publish(name: string, version: number): Promise<void>;
  /** Resolves once the versions on the topic when the replica started are applied. */
  caughtUp(): Promise<void>;
  stop(): Promise<void>;
}

export interface ModelReplicaOptions {
  config: Config;
  kafka: Kafka;
  admin: Admin;
  producer: Producer;
  models: ModelStore;
  logger: Logger;
  /** A version trained elsewhere is now in the local store (the http role assembles a snapshot). */
  onApplied?: (release: ModelRelease) => void;
}

export async function startModelReplica({ config, kafka, admin, producer, models, logger, onApplied }: ModelReplicaOptions): Promise<ModelReplica> {
  const topic = config.topics.models;
  const log = logger.child({ component: 'models' });
  const assembler = createModelAssembler();

  async function apply(release: ModelRelease): Promise<void> {
    const { name, info } = release;
    const local = models.versions(name).find((v) => v.version === info.version);
    // Our own publication coming back, or a version applied before a restart.
    if (local) {
      if (local.createdAt !== info.createdAt) log.warn({ name, version: info.version }, 'a different model version with this number is in the local store already; keeping the local one');
      return;
    }
    await models.writeVersion(name, info.version, release.files);
    await models.register(name, info);
    log.info({ name, version: info.version, bytes: release.files.weights.byteLength }, 'model version applied from the models topic');
    onApplied?.(release);
  }

  // The end offset at start: caughtUp resolves once the follower has read that far.
  const [end] = await admin.fetchTopicOffsets(topic);
  const target = Number(end?.high ?? 0);
  let resolveCaughtUp!: () => void;
  const caughtUp = new Promise<void>((resolve) => (resolveCaughtUp = resolve));
  if (target === 0) resolveCaughtUp();

  // A group of its own that never commits: every start reads the topic from the beginning (it is compacted).
  const consumer = createStageConsumer({ kafka, groupId: `${config.groups.controller}.models.${randomUUID()}`, settings: config.kafka, logger: log });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ message }) => {
      const decoded = decodeChunk(message.value);
      if (!decoded.ok) log.warn({ offset: message.offset, detail: decoded.detail }, 'unreadable message on the models topic; skipped');
      else {
        const done = assembler.accept(decoded.chunk);
        if (done?.kind === 'corrupt') log.warn({ name: done.name, version: done.version, detail: done.detail }, 'model version on the models topic is corrupt; skipped');
        else if (done) await apply(done.release).catch((err: unknown) => log.error({ name: done.release.name, err: errorMessage(err) }, 'could not apply a model version'));
      }
      if (Number(message.offset) + 1 >= target) resolveCaughtUp();
    },
  });

  return {
    async publish(name, version) {
      const info = models.versions(name).find((v) => v.version === version);
      if (!info) throw new Error(`${name} v${version} is not in the local model store`);
      const files = await models.readVersion(name, version);
      const messages = encodeRelease({ name, info, files });
      await producer.send({ topic, acks: -1, messages });
      log.info({ name, version, chunks: messages.length }, 'model version published to the models topic');
    },
    caughtUp: () => caughtUp,
    async stop() {
      await consumer.disconnect();
    },
  };
}
