/**
 * The exactly-once audit (tests, `status --verify`): every dedup entry points at a stored record with
 * that id, and there are as many stored records as dedup entries (no record stored twice, none without
 * its key). Read-only.
 */
import type { DedupIndex } from './dedup.js';
import type { RecordLog } from './records.js';

export interface ShardAudit {
  records: number;
  ids: number;
  problems: string[];
}

/** At most this many per-id problems are listed; the count mismatch is always reported. */
const MAX_LISTED = 20;

export function auditShards(dedup: DedupIndex, records: RecordLog): ShardAudit {
  const problems: string[] = [];
  let ids = 0;
  for (const { id, expert, seq } of dedup.ids()) {
    ids++;
    const held = records.holding({ expert, seq });
    if (held?.id !== id && problems.length < MAX_LISTED) {
      problems.push(`id ${id}: dedup points at [${expert}, ${seq}] holding ${held ? (held.id ?? 'an undecodable record') : 'nothing'}`);
    }
  }
  const stored = records.storedCount();
  if (stored !== ids) problems.push(`${stored} stored records but ${ids} distinct ids`);
  return { records: stored, ids, problems };
}
