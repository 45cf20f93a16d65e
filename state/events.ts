/**
 * The controller's event log (bootstrap, epochs, spawns, splits, retraining, snapshots, failures) for
 * the status page and `status`: appended in LMDB, keyed by time, trimmed to the newest `keep`.
 */
import { z } from 'zod';
import type { StateEnv } from './env.js';
import { keyText, parseStored } from './stored.js';

export const EventKind = z.enum(['bootstrap', 'epoch', 'spawn', 'split', 'retrain', 'snapshot', 'failure', 'leader']);
export type EventKind = z.infer<typeof EventKind>;
const StoredEvent = z.object({ at: z.number(), kind: EventKind, message: z.string() });
export type ControllerEvent = z.infer<typeof StoredEvent>;

export type EventLog = ReturnType<typeof createEventLog>;

const parseEvent = (key: unknown, value: unknown): ControllerEvent => parseStored(StoredEvent, value, `controller event ${keyText(key)}`);

export function createEventLog({ env, keep = 500 }: { env: StateEnv; keep?: number }) {
  const { events } = env;
  let counter = 0;
  return {
    async record(kind: EventKind, message: string, at = Date.now()): Promise<void> {
      // [time, process, counter]: unique across processes sharing the environment, ordered by time.
      await events.put([at, process.pid, counter++], { at, kind, message });
      const total = events.getCount();
      if (total > keep) {
        for (const key of events.getKeys({ limit: total - keep })) await events.remove(key);
      }
    },

    recent(limit = 50): ControllerEvent[] {
      return [...events.getRange({ reverse: true, limit })].map(({ key, value }) => parseEvent(key, value));
    },

    count(kind: EventKind): number {
      let n = 0;
      for (const { key, value } of events.getRange()) if (parseEvent(key, value).kind === kind) n++;
      return n;
    },
  };
}
