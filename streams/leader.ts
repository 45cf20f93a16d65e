/**
 * Exactly one active controller (ARCHITECTURE.md section 4, "Election"): every controller joins the
 * controller group on the one-partition leader topic (never written); the member Kafka assigns
 * partition 0 leads. The group alone cannot stop a deposed leader that has not noticed yet, so a new
 * leader first writes a claim on the control topic: its offset is the fencing token every epoch chunk
 * carries, and the log ignores chunks written under an older claim (streams/control-log.ts).
 *
 * A term: claim -> wait until the local follower has read the claim -> run the work bound to the claim.
 * It ends when the group assigns partition 0 elsewhere, the consumer crashes or stops, or a newer
 * claim appears in the log (then the next assignment of partition 0 to us starts a new term).
 */
import type { Kafka, Producer } from 'kafkajs';
import { ReplaySubject, Subject, concatMap, filter, lastValueFrom, map, merge, takeUntil, type Observable } from 'rxjs';
import type { KafkaSettings } from '../src/config.js';
import { errorMessage } from '../src/errors.js';
import type { Logger } from '../src/logger.js';
import type { ControlFollower } from './control-follower.js';
import { encodeRecord, newClaim } from './control-log.js';

/** What the group says: partition 0 is ours (or not), or our membership is gone. */
export type GroupSignal = { kind: 'assigned'; leader: boolean } | { kind: 'lost'; reason: string };

type Step = GroupSignal | { kind: 'fenced' };

export interface LeaderGroup {
  readonly signals: Observable<GroupSignal>;
  stop(): Promise<void>;
}

export async function joinLeaderGroup({ kafka, topic, groupId, settings, logger }: { kafka: Kafka; topic: string; groupId: string; settings: KafkaSettings; logger: Logger }): Promise<LeaderGroup> {
  // kafkajs joins inside consumer.run(): the first assignment comes before anyone can subscribe.
  const signals = new ReplaySubject<GroupSignal>(1);
  const consumer = kafka.consumer({
    groupId,
    sessionTimeout: settings.sessionTimeoutMs,
    heartbeatInterval: settings.heartbeatIntervalMs,
    // Nothing is ever fetched; a short fetch wait keeps the heartbeats (sent between fetches) on time.
    maxWaitTimeInMs: Math.min(settings.fetchMaxWaitMs, settings.heartbeatIntervalMs),
    allowAutoTopicCreation: false,
    retry: { initialRetryTime: 300, maxRetryTime: 5_000, retries: 12, restartOnFailure: async () => true },
  });
  consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => signals.next({ kind: 'assigned', leader: (payload.memberAssignment[topic] ?? []).includes(0) }));
  consumer.on(consumer.events.CRASH, ({ payload }) => signals.next({ kind: 'lost', reason: `consumer crashed: ${errorMessage(payload.error)}` }));
  consumer.on(consumer.events.STOP, () => signals.next({ kind: 'lost', reason: 'consumer stopped' }));
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: false });
  await consumer.run({ autoCommit: false, eachMessage: async () => {} });
  logger.debug({ groupId, topic }, 'joined the controller election');
  return {
    signals: signals.asObservable(),
    async stop() {
      await consumer.disconnect();
      signals.complete();
    },
  };
}

export interface Leadership {
  leader: boolean;
  /** When this term started (ms since epoch). */
  since?: number;
  /** The term's claim offset on the control topic (the fencing token). */
  claim?: number;
}

export interface LeaderTerms {
  leadership(): Leadership;
  /** Ends the current term (awaiting its work) and stops following the group. */
  stop(): Promise<void>;
}

/**
 * Runs `work` for each term this node leads. `work(claim)` starts the term's work and returns how to
 * stop it; its `fenced` callback ends the term early (a publish refused for a newer claim).
 */
export function runLeaderTerms({
  group,
  follower,
  producer,
  controlTopic,
  node,
  logger,
  work,
  onChange,
  retryMs = 2000,
}: {
  group: LeaderGroup;
  follower: ControlFollower;
  producer: Producer;
  controlTopic: string;
  node: string;
  logger: Logger;
  work: (claim: number, fenced: () => void) => { stop(): Promise<void> };
  onChange?: (leadership: Leadership) => void;
  /** Pause before claiming again while partition 0 is ours but no term runs. */
  retryMs?: number;
}): LeaderTerms {
  let term: { claim: number; since: number; running: { stop(): Promise<void> } } | undefined;
  const fencedNow = new Subject<void>();
  const set = (next: typeof term) => {
    const was = term;
    term = next;
    if (Boolean(was) !== Boolean(next) || was?.claim !== next?.claim) onChange?.(view());
  };
  const view = (): Leadership => (term ? { leader: true, since: term.since, claim: term.claim } : { leader: false });

  const end = async (reason: string) => {
    if (!term) return;
    const { claim, running } = term;
    await running.stop();
    set(undefined);
    logger.info({ claim, reason }, 'controller leadership ended');
  };
  const begin = async () => {
    // Still leading under the newest claim (a rebalance that gave partition 0 back to us): keep the term.
    if (term && follower.state().claim?.offset === term.claim) return;
    await end('a new term starts');
    const claim = newClaim(node);
    const [meta] = await producer.send({ topic: controlTopic, acks: -1, messages: [encodeRecord(claim)] });
    await follower.reached(Number(meta!.baseOffset));
    // The token is the claim's offset as the log has it (a redelivered copy would not count).
    const newest = follower.state().claim;
    if (newest?.id !== claim.id) {
      logger.warn({ newestClaim: newest?.offset, node: newest?.node }, 'another controller claimed right after us; waiting for the group');
      return;
    }
    set({ claim: newest.offset, since: Date.now(), running: work(newest.offset, () => fencedNow.next()) });
    logger.info({ claim: newest.offset, node }, 'controller leadership taken');
  };

  // A newer claim in the log than our term's, whoever wrote it, deposes us.
  const deposed = follower.outcomes.pipe(
    filter((o) => o.kind === 'claim' && term !== undefined && o.offset > term.claim),
    map((): Step => ({ kind: 'fenced' })),
  );
  // While the group gives us partition 0, a failed claim or a fenced term is retried after a pause: a
  // stale claimer learns from the group meanwhile that it lost, so the two do not take turns for long.
  const retries = new Subject<Step>();
  let assigned = false;
  let retry: NodeJS.Timeout | undefined;
  const retryLater = () => {
    clearTimeout(retry);
    retry = setTimeout(() => assigned && retries.next({ kind: 'assigned', leader: true }), retryMs);
  };
  const step = async (signal: Step) => {
    if (signal.kind === 'assigned') assigned = signal.leader;
    if (signal.kind === 'lost') assigned = false;
    try {
      if (signal.kind === 'assigned' && signal.leader) await begin();
      else if (signal.kind === 'assigned') await end('partition 0 assigned to another member');
      else if (signal.kind === 'lost') await end(signal.reason);
      else {
        await end('a newer claim fences this term');
        retryLater();
      }
      if (assigned && !term) retryLater();
    } catch (err) {
      logger.error({ err: errorMessage(err) }, 'controller leadership step failed; retrying');
      retryLater();
    }
  };
  const stopped = new Subject<void>();
  const steps = merge(group.signals, deposed, fencedNow.pipe(map((): Step => ({ kind: 'fenced' }))), retries).pipe(takeUntil(stopped), concatMap(step));
  // Completes once the step in flight (if any) has finished after stop().
  const done = lastValueFrom(steps, { defaultValue: undefined });
  return {
    leadership: view,
    async stop() {
      assigned = false;
      clearTimeout(retry);
      stopped.next();
      await done;
      await group.stop();
      await end('stopping');
    },
  };
}
