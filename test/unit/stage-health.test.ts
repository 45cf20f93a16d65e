/**
 * A stage's health as the probes see it (streams/health.ts), driven by a stand-in consumer that emits
 * kafkajs's events: Kafka outages are waited out, our own failures restarted a few times, then the stage
 * is dead and liveness fails.
 */
import { EventEmitter } from 'node:events';
import type { Consumer } from 'kafkajs';
import { describe, expect, test } from 'vitest';
import { createStageHealth, probeHealth } from '../../streams/health.js';

/** Just what the tracker uses of a kafkajs Consumer: `events` and `on`. */
function fakeConsumer() {
  const emitter = new EventEmitter();
  const events = { GROUP_JOIN: 'consumer.group_join', CRASH: 'consumer.crash' };
  const consumer = { events, on: (name: string, listener: (e: unknown) => void) => emitter.on(name, listener) } as unknown as Consumer;
  return {
    consumer,
    join: () => emitter.emit(events.GROUP_JOIN, { payload: {} }),
    crash: (error: Error, restart: boolean) => emitter.emit(events.CRASH, { payload: { error, restart } }),
  };
}

const connectionLost = Object.assign(new Error('Connection error: ECONNREFUSED'), { name: 'KafkaJSConnectionError', retriable: true });
const ownFailure = Object.assign(new Error('Number of retries exceeded'), { name: 'KafkaJSNumberOfRetriesExceeded', cause: new Error('MDB_MAP_FULL: Environment mapsize limit reached') });

describe('stage health', () => {
  test('starting until the group is joined, then running; a crash kafkajs restarts is "restarting" until work resumes', () => {
    let clock = 1000;
    const health = createStageHealth({ stage: 'sharder', maxRestarts: 3, now: () => clock });
    const c = fakeConsumer();
    health.watch(c.consumer);
    expect(health.view()).toMatchObject({ stage: 'sharder', state: 'starting', since: 1000 });
    clock = 2000;
    c.join();
    expect(health.view()).toMatchObject({ state: 'running', since: 2000 });
    expect(probeHealth([health.view()])).toEqual({ live: true, ready: true });
    c.crash(connectionLost, true);
    expect(health.view()).toMatchObject({ state: 'restarting', error: 'Connection error: ECONNREFUSED' });
    expect(probeHealth([health.view()])).toEqual({ live: true, ready: false });
    health.progressed();
    expect(health.view().state).toBe('running');
  });

  test('Kafka outages are waited out however long; our own failures only maxRestarts times in a row', () => {
    const health = createStageHealth({ stage: 'sharder', maxRestarts: 2 });
    for (let i = 0; i < 50; i++) expect(health.shouldRestart(connectionLost)).toBe(true);
    expect(health.view().restarts).toBe(0);
    expect(health.shouldRestart(ownFailure)).toBe(true);
    health.progressed(); // a committed chunk in between: the count starts again
    expect(health.shouldRestart(ownFailure)).toBe(true);
    expect(health.shouldRestart(ownFailure)).toBe(true);
    expect(health.shouldRestart(ownFailure)).toBe(false);
    expect(health.view()).toMatchObject({ restarts: 3, error: 'Number of retries exceeded' });
  });

  test('a crash kafkajs does not restart from makes the stage dead, for good: liveness fails', () => {
    const health = createStageHealth({ stage: 'sharder', maxRestarts: 1 });
    const c = fakeConsumer();
    health.watch(c.consumer);
    c.join();
    c.crash(ownFailure, false);
    expect(health.view().state).toBe('dead');
    c.join(); // a late event from the dying consumer does not revive it
    health.progressed();
    expect(health.view().state).toBe('dead');
    const router = createStageHealth({ stage: 'router', maxRestarts: 1 });
    router.progressed();
    expect(probeHealth([router.view(), health.view()])).toEqual({ live: false, ready: false });
  });

  test('a stopped stage stays stopped; no stages at all is live and ready', () => {
    const health = createStageHealth({ stage: 'router', maxRestarts: 1 });
    health.progressed();
    health.stopped();
    health.progressed();
    expect(health.view().state).toBe('stopped');
    expect(probeHealth([])).toEqual({ live: true, ready: true });
  });
});
