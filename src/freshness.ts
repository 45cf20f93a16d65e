/**
 * Expert freshness (ARCHITECTURE.md section 3): what arrived since an expert's last training started, how old
 * the oldest of it is, whether that makes the expert due, and in which order due experts train. Pure.
 */
import type { ControllerSettings } from './config.js';

export interface ExpertFreshnessInput {
  expert: number;
  records: number;
  /** Event time of the oldest record not in the newest version (undefined: nothing pending). */
  oldestPendingTs?: number;
  /** Records when the newest version's job started; undefined when never trained. */
  trainedRecords?: number;
  /** Share of fine clusters this expert holds (wider experts train first on ties). */
  fineShare: number;
}

export interface Freshness {
  expert: number;
  pending: number;
  oldestPendingAgeSeconds: number | null;
  due: boolean;
  reason: string;
  priority: number;
}

export function freshnessOf(input: ExpertFreshnessInput, settings: ControllerSettings['retrain'], now: number): Freshness {
  const pending = Math.max(0, input.records - (input.trainedRecords ?? 0));
  const age = input.oldestPendingTs === undefined || pending === 0 ? null : Math.max(0, (now - input.oldestPendingTs) / 1000);
  const enough = input.records >= settings.minRecords;
  const byCount = pending >= settings.pendingRecords;
  const byAge = age !== null && age >= settings.maxAgeSeconds;
  const due = enough && (input.trainedRecords === undefined || byCount || byAge);
  const reason = !enough
    ? `${input.records} records, below the ${settings.minRecords} needed`
    : input.trainedRecords === undefined
      ? 'never trained'
      : byCount
        ? `${pending} records pending (>= ${settings.pendingRecords})`
        : byAge
          ? `oldest pending record is ${Math.round(age!)} s old (>= ${settings.maxAgeSeconds} s)`
          : 'fresh';
  // Most stale first (age in units of the limit, plus pending in units of the threshold); the fine-share
  // term only breaks ties in favour of wider experts.
  const priority = (age ?? 0) / settings.maxAgeSeconds + pending / settings.pendingRecords + (input.trainedRecords === undefined ? 1 : 0) + input.fineShare * 1e-3;
  return { expert: input.expert, pending, oldestPendingAgeSeconds: age, due, reason, priority };
}

/** Exponential backoff after `failures` failed attempts. */
export function backoffSeconds(failures: number, settings: ControllerSettings['retrain']): number {
  return failures <= 0 ? 0 : Math.min(settings.maxBackoffSeconds, settings.backoffSeconds * 2 ** (failures - 1));
}
