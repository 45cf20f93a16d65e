/**
 * When the local Kafka is ready: every expected node is registered, and every group coordinator partition
 * answers, so a consumer started right after meets no coordinator that is still loading.
 */
import { Kafka, logLevel } from 'kafkajs';
import { EnvironmentError, TransientError, errorMessage } from '../../src/errors.js';
import { sleep, tailFile } from './environment.js';
import { OFFSETS_PARTITIONS } from './properties.js';

const READY_POLL_MS = 300;

/**
 * Group ids whose coordinator partitions cover all of __consumer_offsets. Kafka maps a group to
 * partition abs(javaStringHashCode(groupId)) % offsets.topic.num.partitions.
 */
export function probeGroupIds(): string[] {
  const byPartition = new Map<number, string>();
  for (let i = 0; byPartition.size < OFFSETS_PARTITIONS; i++) {
    const id = `modestream-readiness-${i}`;
    const p = javaAbs(javaStringHash(id)) % OFFSETS_PARTITIONS;
    if (!byPartition.has(p)) byPartition.set(p, id);
  }
  return [...byPartition.values()];
}

function javaStringHash(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(31, h) + s.charCodeAt(i)) | 0;
  return h;
}

/** Kafka's Utils.abs: Integer.MIN_VALUE maps to 0 rather than staying negative. */
function javaAbs(n: number): number {
  return n === -2147483648 ? 0 : Math.abs(n);
}

/** One attempt: the cluster lists every node of nodeIds and every group coordinator answers. Throws otherwise. */
export async function probeBroker(bootstrap: string, o: { nodeIds: readonly number[]; requestTimeoutMs: number }): Promise<void> {
  const kafka = new Kafka({
    clientId: 'modestream-broker-probe',
    brokers: bootstrap.split(','),
    // Refused connections are expected while polling; kafkajs would log each one as an error.
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1_000,
    requestTimeout: o.requestTimeoutMs,
    retry: { retries: 0 },
  });
  const admin = kafka.admin({ retry: { retries: 0 } });
  try {
    await admin.connect();
    const { brokers } = await admin.describeCluster();
    const missing = o.nodeIds.filter((id) => !brokers.some((b) => b.nodeId === id));
    if (missing.length > 0) throw new Error(`broker(s) ${missing.join(', ')} not registered yet`);
    // Looking up a coordinator also creates __consumer_offsets on first use.
    await admin.describeGroups(probeGroupIds());
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

export async function waitUntilReady(o: {
  bootstrap: string;
  nodeIds: readonly number[];
  deadline: number;
  /** Why a broker process is gone (naming it), or undefined while they live. */
  exitReason: () => { reason: string; logFile: string } | undefined;
  logFiles: readonly string[];
}): Promise<void> {
  let lastError: unknown;
  for (;;) {
    const exited = o.exitReason();
    if (exited !== undefined) {
      throw new EnvironmentError(
        `the Kafka broker stopped during start-up (${exited.reason}). Last lines of ${exited.logFile}:\n${await tailFile(exited.logFile)}`,
      );
    }
    try {
      await probeBroker(o.bootstrap, { nodeIds: o.nodeIds, requestTimeoutMs: 5_000 });
      return;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= o.deadline) {
      const tails = await Promise.all(o.logFiles.map(async (f) => `Last lines of ${f}:\n${await tailFile(f)}`));
      throw new TransientError(
        `the Kafka broker at ${o.bootstrap} was not ready in time (last probe: ${errorMessage(lastError)}); ` +
          `raise localBroker.startTimeoutMs on a slow machine. ${tails.join('\n')}`,
        { cause: lastError },
      );
    }
    await sleep(READY_POLL_MS);
  }
}
