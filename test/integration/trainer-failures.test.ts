/**
 * Failure isolation of training (issue: continual learning): a training child killed with SIGKILL
 * leaves ingestion running and the previous snapshot served, is reported (event, status, metric), and
 * is retried with backoff until it succeeds and a new snapshot is published. A real `modestream run`
 * process on the local broker; the job is found among that process's children and killed for real.
 */
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { produceFashionMnist, readStatus, startProcessor, stopProcessor, testDeployment, type Processor } from '../support/processor.js';
import { waitFor } from '../support/waits.js';

const brokers = inject('brokers');

/** The expert training child of `parent` (`job-process.js expert-N`), if one is running. */
function expertJob(parent: number): { pid: number; expert: string } | undefined {
  let listing = '';
  try {
    listing = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(parent)], { encoding: 'utf8' });
  } catch {
    return undefined; // ps exits 1 when there is no child
  }
  const match = /^\s*(\d+)\s.*\bjob-process\.js expert-(\d+)/m.exec(listing);
  return match ? { pid: Number(match[1]), expert: `expert-${match[2]}` } : undefined;
}

describe('a training job that crashes', () => {
  const deployment = testDeployment(brokers, {
    MODESTREAM_CLUSTERING__EXPERTS: '2',
    MODESTREAM_EXPERTS__TRAINING__BATCH: '64',
    MODESTREAM_EXPERTS__TRAINING__SEED_STEPS: '30',
    MODESTREAM_EXPERTS__TRAINING__STEPS: '120',
    MODESTREAM_EXPERTS__TRAINING__CHECKPOINT_EVERY: '25',
    MODESTREAM_CONTROLLER__SEED_MIN_RECORDS: '500',
    MODESTREAM_CONTROLLER__TICK_MS: '200',
    MODESTREAM_CONTROLLER__RETRAIN__MIN_RECORDS: '100',
    MODESTREAM_CONTROLLER__RETRAIN__BACKOFF_SECONDS: '3',
    MODESTREAM_CONTROLLER__DRIFT__ENABLED: 'false',
    MODESTREAM_CLUSTERING__REFINE__ENABLED: 'false',
  });
  let processor: Processor;
  const status = () => readStatus(deployment);
  const produce = (schedule: string, seed: number) => produceFashionMnist(deployment, schedule, seed);

  beforeAll(async () => {
    processor = await startProcessor(deployment);
  });

  afterAll(async () => {
    await stopProcessor(processor);
    rmSync(deployment.stateDir, { recursive: true, force: true });
  });

  test('kill -9 of an expert job: ingestion goes on, the last snapshot stays served, the job is retried with backoff', async () => {
    const first = await produce('tops,bottoms:1500', 1);
    expect(first.code, first.output).toBe(0);
    const job = await waitFor('an expert training job', () => expertJob(processor.pid), { timeoutMs: 300_000, intervalMs: 100 });
    process.kill(job.pid, 'SIGKILL');

    const http = /"status":"(http:\/\/[^"]+)\/status\.json"/.exec(processor.output())?.[1];
    expect(http, 'the processor logs its status URL').toBeDefined();
    // The seed's snapshot is published right after the seed job, possibly a moment after the expert job started.
    const served = await waitFor('the seed snapshot to be served', async () => {
      const res = await fetch(`${http}/snapshots/latest`);
      return res.ok ? ((await res.json()) as { version: number }) : undefined;
    });
    const failed = await waitFor('the failure to be reported', async () => {
      const s = await status();
      return s.events.some((e) => e.kind === 'failure' && e.message.startsWith(`${job.expert} training failed`)) ? s : undefined;
    });
    expect(failed.events.find((e) => e.kind === 'failure')!.message).toMatch(/retry 1 in 3 s/);
    // The seed's snapshot is still the one served while the expert is down.
    expect(failed.snapshot?.version).toBe(served.version);

    // Ingestion is untouched: new pairs are routed and stored while the job waits for its retry.
    // (Another class: pair ids follow the image, so the same classes again would partly be duplicates.)
    const second = await produce('dresses:500', 2);
    expect(second.code, second.output).toBe(0);
    await waitFor(
      'all 2,000 pairs stored',
      async () => {
        const { totalRecords, unrouted } = await status();
        if (totalRecords !== 2000 || unrouted !== 0) throw new Error(`${totalRecords} stored, ${unrouted} unrouted`);
        return true;
      },
      { timeoutMs: 120_000, intervalMs: 500 },
    );

    const recovered = await waitFor(
      'the retried job to succeed and a new snapshot with it',
      async () => {
        const s = await status();
        const expert = s.experts.find((e) => `expert-${e.id}` === job.expert);
        const retrained = s.events.find((e) => e.kind === 'retrain' && e.message.startsWith(`${job.expert} v`));
        return expert?.version !== null && retrained && s.snapshot && s.snapshot.version > served.version ? s : undefined;
      },
      { timeoutMs: 300_000, intervalMs: 500 },
    );
    // Every failure message in the assertion, so a second one says what it was.
    const failures = recovered.events.filter((e) => e.kind === 'failure').map((e) => e.message);
    expect(failures, failures.join('\n')).toHaveLength(1);
    expect(processor.child.exitCode).toBeNull();
    const metrics = await (await fetch(`${http}/metrics`)).text();
    expect(metrics).toContain(`modestream_training_failures_total{name="${job.expert}"} 1`);
  });
});
