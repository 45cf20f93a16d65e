/**
 * Controller terms (streams/leader.ts runLeaderTerms) against an in-memory control log: a term starts
 * with a claim the log has read, ends when the group moves partition 0 away or a newer claim appears,
 * and its work is stopped (awaited) before anything else happens.
 */
import type { Producer } from 'kafkajs';
import { Subject } from 'rxjs';
import { describe, expect, test } from 'vitest';
import type { ControlFollower } from '../../streams/control-follower.js';
import { emptyControlState, encodeRecord, newClaim, reduceControl, type ControlOutcome } from '../../streams/control-log.js';
import { runLeaderTerms, type GroupSignal, type Leadership } from '../../streams/leader.js';
import type { Logger } from '../../src/logger.js';

const logger = { info() {}, warn() {}, error() {}, debug() {}, child: () => logger } as unknown as Logger;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One partition in memory: the producer appends, the follower folds each record as it is appended. */
function memoryLog() {
  let state = emptyControlState();
  const outcomes = new Subject<ControlOutcome & { offset: number }>();
  let next = 0;
  const append = (key: string, value: Buffer | null) => {
    const offset = next++;
    const r = reduceControl(state, offset, { key, value });
    state = r.state;
    if (r.outcome.kind !== 'none') outcomes.next({ ...r.outcome, offset });
    return offset;
  };
  const follower: ControlFollower = {
    caughtUp: async () => {},
    reached: async () => {},
    state: () => state,
    outcomes,
    stop: async () => outcomes.complete(),
  };
  const producer = {
    send: async ({ messages }: { messages: { key: string; value: Buffer | null }[] }) => messages.map((m) => ({ topicName: 'control', partition: 0, errorCode: 0, baseOffset: String(append(m.key, m.value)) })),
  } as unknown as Producer;
  return { follower, producer, append };
}

function harness() {
  const log = memoryLog();
  const group = new Subject<GroupSignal>();
  const events: string[] = [];
  const changes: Leadership[] = [];
  const fences: (() => void)[] = [];
  const terms = runLeaderTerms({
    group: { signals: group, stop: async () => group.complete() },
    follower: log.follower,
    producer: log.producer,
    controlTopic: 'control',
    node: 'me',
    logger,
    retryMs: 20,
    work: (claim, fenced) => {
      events.push(`start ${claim}`);
      fences.push(fenced);
      return {
        async stop() {
          await sleep(5); // a tick in flight
          events.push(`stop ${claim}`);
        },
      };
    },
    onChange: (l) => changes.push(l),
  });
  return { ...log, group, events, changes, fences, terms };
}

describe('controller terms', () => {
  test('partition 0 assigned: claim, then work under the claim; moved away: work stopped', async () => {
    const h = harness();
    h.group.next({ kind: 'assigned', leader: true });
    await sleep(10);
    expect(h.events).toEqual(['start 0']);
    expect(h.terms.leadership()).toMatchObject({ leader: true, claim: 0 });
    // A rebalance that gives partition 0 back to us keeps the term (no new claim).
    h.group.next({ kind: 'assigned', leader: true });
    await sleep(10);
    expect(h.events).toEqual(['start 0']);
    h.group.next({ kind: 'assigned', leader: false });
    await sleep(20);
    expect(h.events).toEqual(['start 0', 'stop 0']);
    expect(h.terms.leadership()).toEqual({ leader: false });
    expect(h.changes.map((c) => c.leader)).toEqual([true, false]);
    await h.terms.stop();
  });

  test('a newer claim by another node ends the term; while partition 0 stays ours, a new claim follows', async () => {
    const h = harness();
    h.group.next({ kind: 'assigned', leader: true });
    await sleep(10);
    const { key, value } = encodeRecord(newClaim('other'));
    h.append(key, value); // offset 1
    await sleep(60);
    expect(h.events.slice(0, 3)).toEqual(['start 0', 'stop 0', 'start 2']);
    expect(h.terms.leadership()).toMatchObject({ leader: true, claim: 2 });
    await h.terms.stop();
    expect(h.events.at(-1)).toBe('stop 2');
  });

  test('a publish refused for fencing ends the term; a crashed consumer ends it too', async () => {
    const h = harness();
    h.group.next({ kind: 'assigned', leader: true });
    await sleep(10);
    h.fences[0]!();
    h.group.next({ kind: 'lost', reason: 'consumer crashed' });
    await sleep(60);
    expect(h.events).toEqual(['start 0', 'stop 0']);
    expect(h.terms.leadership()).toEqual({ leader: false });
    await h.terms.stop();
  });

  test('stop awaits the work in flight', async () => {
    const h = harness();
    h.group.next({ kind: 'assigned', leader: true });
    await sleep(10);
    await h.terms.stop();
    expect(h.events).toEqual(['start 0', 'stop 0']);
  });
});
