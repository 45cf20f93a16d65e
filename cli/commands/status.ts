/** `modestream status [--json] [--verify]`: experts, centroids, offsets, dead letters and the cluster's nodes at a glance. */
import type { Command } from 'commander';
import type { StatusReport } from '../../src/status.js';
import { QUIET, createLogger, loadConfig, type GlobalOptions } from '../context.js';

interface StatusFlags {
  json?: boolean;
  verify?: boolean;
  kafka?: boolean;
}

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('per expert: records, fine clusters, last record, owner node; per partition: position vs end; DLQ count; nodes: live, dead or stopped')
    .option('--json', 'print the report as JSON (schema: src/status.ts)')
    .option('--verify', 'also audit the shards: every pair id stored exactly once (exit 1 if not)')
    .option('--no-kafka', 'LMDB figures only; do not contact the brokers')
    .action(async (flags: StatusFlags, cmd: Command) => {
      const config = loadConfig(cmd.optsWithGlobals<GlobalOptions>(), {}, QUIET);
      const logger = createLogger(config, 'status');
      // Loaded on use: the store and Kafka modules are not needed for `--help` or other commands.
      const { readStatusReport } = await import('../../app/status-report.js');
      const { report, audit } = await readStatusReport(config, logger, { kafka: flags.kafka !== false, verify: flags.verify === true });
      if (flags.json) process.stdout.write(`${JSON.stringify(audit ? { ...report, audit } : report, null, 2)}\n`);
      else process.stdout.write(formatStatus(report, audit));
      if (audit && audit.problems.length > 0) process.exitCode = 1;
    });
}

function formatStatus(r: StatusReport, audit?: { records: number; ids: number; problems: string[] }): string {
  const lines: string[] = [];
  const c = r.centroids;
  lines.push(
    c
      ? `centroids: epoch ${c.epoch}, ${c.fine} fine -> ${c.experts} experts, dim ${c.dim}, inertia ${c.inertia.toFixed(4)}, ` +
          `fine sizes ${c.fineSpread.min}-${c.fineSpread.max} (cv ${c.fineSpread.cv.toFixed(2)}), ${c.balanced ? 'balanced' : 'plain'}${c.oneStage ? ', one-stage' : ''}`
      : `centroids: none yet (reservoir ${r.reservoir.seen}/${r.reservoir.capacity})`,
  );
  const e = r.embedder;
  lines.push(`embedder: ${e.kind}${e.model ? ` ${e.model}` : ''}${e.dim !== null ? `, ${e.dim}-d` : ''}${e.fingerprint ? `, ${e.fingerprint}` : ''}${e.mismatch ? ' (MISMATCH: the newest epoch was built with another embedder)' : ''}`);
  lines.push(`records: ${r.totalRecords} stored, ${r.unrouted} waiting for routing, ${r.deadLettered ?? '?'} dead-lettered`);
  lines.push('', 'expert  records  fine  version  pending  oldest pending  state      last record');
  for (const e of r.experts) {
    const age = e.oldestPendingAgeSeconds === null ? '-' : `${Math.round(e.oldestPendingAgeSeconds)} s`;
    lines.push(
      `${String(e.id).padStart(6)}  ${String(e.records).padStart(7)}  ${String(e.fineClusters).padStart(4)}  ${(e.version === null ? '-' : `v${e.version}`).padStart(7)}  ${String(e.pending).padStart(7)}  ${age.padStart(14)}  ${e.state.padEnd(9)}  ${e.lastRecordAt ?? '-'}`,
    );
  }
  if (r.snapshot) lines.push('', `snapshot: v${r.snapshot.version} (epoch ${r.snapshot.epoch}) published ${r.snapshot.createdAt}`);
  if (r.partitions.length) {
    lines.push('', 'stage    topic/partition                position       end       lag');
    for (const p of r.partitions) {
      lines.push(`${p.stage.padEnd(7)}  ${`${p.topic}/${p.partition}`.padEnd(28)}  ${String(p.position ?? '-').padStart(8)}  ${String(p.end ?? '-').padStart(8)}  ${String(p.lag ?? '-').padStart(8)}`);
    }
  }
  if (r.models.length) {
    lines.push('', 'model      version  steps    loss  backend  samples/s  trained at');
    for (const m of r.models) lines.push(`${m.name.padEnd(9)}  ${`v${m.version}`.padStart(7)}  ${String(m.steps).padStart(5)}  ${m.loss.toFixed(3).padStart(6)}  ${m.backend.padEnd(7)}  ${String(Math.round(m.samplesPerSecond)).padStart(9)}  ${m.trainedAt}`);
  }
  for (const j of r.jobs.filter((job) => job.state !== 'done')) {
    lines.push(`job ${j.name}: ${j.state} at step ${j.step}/${j.totalSteps}${j.loss !== null ? `, loss ${j.loss.toFixed(3)}` : ''}${j.samplesPerSecond !== null ? `, ${Math.round(j.samplesPerSecond)} samples/s` : ''} on ${j.backend}${j.error ? ` (${j.error})` : ''}`);
  }
  if (r.events.length) {
    lines.push('', 'recent events:');
    for (const e of r.events.slice(0, 8)) lines.push(`  ${e.at} ${e.kind.padEnd(9)} ${e.message}`);
  }
  if (r.nodes.length) {
    lines.push('', 'node                      state    heartbeat  roles                                leader  routed partitions  http');
    for (const n of r.nodes) {
      const restoring = n.restores.filter((x) => x.state === 'restoring').map((x) => ` restoring ${x.partition}: ${x.applied - x.from}/${x.target - x.from}`);
      lines.push(
        `${n.id.padEnd(24)}  ${n.state.padEnd(7)}  ${`${n.heartbeatAgeSeconds.toFixed(1)} s`.padStart(9)}  ${n.roles.join(',').padEnd(35)}  ${(n.leader === null ? '-' : n.leader ? 'yes' : 'no').padEnd(6)}  ${(n.partitions.routed.join(',') || '-').padEnd(17)}  ${n.httpUrl ?? '-'}${restoring.join('')}`,
      );
    }
  }
  if (r.cluster && r.cluster.experts.length) {
    lines.push('', `expert  partition  owner                     records (cluster)  restore`);
    for (const e of r.cluster.experts) {
      const restore = e.restore ? (e.restore.state === 'live' ? 'live' : `${e.restore.applied - e.restore.from}/${e.restore.target - e.restore.from}`) : '-';
      lines.push(`${String(e.id).padStart(6)}  ${String(e.partition).padStart(9)}  ${(e.owner ?? '(none live)').padEnd(24)}  ${String(e.records).padStart(17)}  ${restore}`);
    }
  }
  if (r.nodesError) lines.push('', `nodes: the nodes topic could not be read (${r.nodesError})`);
  if (r.kafkaError) lines.push('', `kafka: unreachable (${r.kafkaError}); LMDB figures only`);
  if (audit) lines.push('', audit.problems.length ? `audit FAILED:\n  ${audit.problems.join('\n  ')}` : `audit: ${audit.ids} ids, each stored exactly once`);
  return `${lines.join('\n')}\n`;
}
