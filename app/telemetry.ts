/**
 * One telemetry port for the process: stages, the controller and the trainer emit typed events here;
 * Prometheus metrics, the event log and the benchmarks' latency probe subscribe (app/metrics.ts,
 * app/run.ts). Emitters know nothing of prom-client or LMDB, and a new consumer of the figures is one
 * more subscription instead of one more callback threaded through every constructor.
 */
import { Subject, filter, type Observable } from 'rxjs';
import type { RoutedRecord } from '../src/contract/routed.js';
import type { EventKind } from '../state/events.js';
import type { ChunkOutcome } from '../streams/stage.js';

export type TelemetryEvent =
  /** A stage committed one chunk of one partition. */
  | { type: 'chunk'; stage: string; topic: string; partition: number; outcome: ChunkOutcome; ms: number }
  /** The sharder made records durable: the LMDB commit + flush time and when it finished. */
  | { type: 'appended'; records: readonly RoutedRecord[]; commitMs: number; durableAt: number }
  /** The router's caption-embedding cache. */
  | { type: 'cache'; hits: number; misses: number }
  /** Something the operators should read about (event log, status page); `fineClustersAdded` by novelty. */
  | { type: 'event'; kind: EventKind; message: string; fineClustersAdded?: number }
  /** A training job ended (samples per second when it trained). */
  | { type: 'training'; name: string; outcome: 'done' | 'failed'; seconds: number; samplesPerSecond?: number };

export type TelemetryType = TelemetryEvent['type'];
export type TelemetryOf<T extends TelemetryType> = Extract<TelemetryEvent, { type: T }>;

export interface Telemetry {
  emit(event: TelemetryEvent): void;
  /** The events of one type, as they are emitted (synchronously, in order). */
  on<T extends TelemetryType>(type: T): Observable<TelemetryOf<T>>;
  close(): void;
}

export function createTelemetry(): Telemetry {
  const events = new Subject<TelemetryEvent>();
  return {
    emit: (event) => events.next(event),
    on: <T extends TelemetryType>(type: T) => events.pipe(filter((e): e is TelemetryOf<T> => e.type === type)),
    close: () => events.complete(),
  };
}
