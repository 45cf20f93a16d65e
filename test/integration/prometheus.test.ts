/**
 * The shipped monitoring against a real Prometheus (Debian package `prometheus`): promtool accepts
 * deploy/prometheus/*, and a Prometheus loading deploy/prometheus/alerts.yml scrapes a real `modestream
 * run` (every role, hashed embedder). After a short run that bootstraps, trains (with one crashed job) and
 * dead-letters a few records, every metric the alert rules and the Grafana dashboard query has a live
 * series, and every rule's expression evaluates. Only Prometheus talks to the processor: a metric that is
 * set only when someone opens /status would show up here as missing.
 * Without the binaries it skips, except under CI=true, where it fails.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { makeInvalidMessages } from '../support/fixtures.js';
import { ROOT, produceFashionMnist, startProcessor, stopProcessor, testDeployment, type Processor } from '../support/processor.js';
import { PROMETHEUS_INSTALL_HINT, hasBinary, metricNames, promtool, startPrometheus, type Prometheus } from '../support/prometheus.js';
import { waitFor } from '../support/waits.js';

const brokers = inject('brokers');
const JOB = 'modestream'; // the job name the alert rules select
const PROMETHEUS_DIR = join(ROOT, 'deploy', 'prometheus');
const ALERTS = join(PROMETHEUS_DIR, 'alerts.yml');
const DASHBOARD = join(ROOT, 'deploy', 'grafana', 'modestream-dashboard.json');

const installed = hasBinary('prometheus') && hasBinary('promtool');
// In CI Prometheus is part of the setup (.ci/run): skipping there would hide a broken install.
const required = Boolean(process.env.CI);
if (!installed && !required) console.warn(`prometheus: skipped, no prometheus/promtool on the PATH: ${PROMETHEUS_INSTALL_HINT}`);

/** The PID of the processor's training child for job `what` (`seed`, `expert-N`), if one is running. */
function trainingJob(parent: number, what: string): number | undefined {
  let listing = '';
  try {
    listing = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(parent)], { encoding: 'utf8' });
  } catch {
    return undefined; // ps exits 1 when there is no child
  }
  // The scheduler forks training/job-process.js with the job's name as its only argument (for ps).
  const line = listing.split('\n').find((l) => new RegExp(`\\bjob-process\\.js ${what}$`).test(l.trim()));
  return line ? Number(line.trim().split(/\s+/)[0]) : undefined;
}

/** Every PromQL string of the dashboard: panel targets, annotations and variable queries. */
function dashboardQueries(): { exprs: string[]; variableQueries: string[] } {
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { templating?: { list?: { definition?: string }[] } };
  const exprs: string[] = [];
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node && typeof node === 'object') for (const [k, v] of Object.entries(node)) k === 'expr' && typeof v === 'string' ? exprs.push(v) : walk(v);
  };
  walk(dashboard);
  const variableQueries = (dashboard.templating?.list ?? []).flatMap((v) => (v.definition ? [v.definition] : []));
  return { exprs, variableQueries };
}

/** Grafana's variables as they are with every job and instance selected. */
const grafanaVariables = (expr: string) => expr.replaceAll('$__rate_interval', '1m').replaceAll('$job', JOB).replaceAll('$instance', '.+');

describe.skipIf(!installed && !required)('Prometheus scrapes modestream with the shipped alerts and dashboard', () => {
  const deployment = testDeployment(brokers, {
    MODESTREAM_CLUSTERING__EXPERTS: '2',
    // Every training-related series needs a finished seed and expert job: as few steps as possible.
    MODESTREAM_EXPERTS__TRAINING__BATCH: '32',
    MODESTREAM_EXPERTS__TRAINING__SEED_STEPS: '5',
    MODESTREAM_EXPERTS__TRAINING__STEPS: '5',
    MODESTREAM_EXPERTS__TRAINING__CHECKPOINT_EVERY: '5',
    MODESTREAM_CONTROLLER__SEED_MIN_RECORDS: '500',
    MODESTREAM_CONTROLLER__TICK_MS: '200',
    MODESTREAM_CONTROLLER__RETRAIN__MIN_RECORDS: '100',
    MODESTREAM_CONTROLLER__RETRAIN__BACKOFF_SECONDS: '1',
    MODESTREAM_CLUSTERING__REFINE__ENABLED: 'false',
  });
  let processor: Processor | undefined;
  let prometheus: Prometheus | undefined;
  let target = '';

  /** The short run every series check needs, done once whichever test asks first. */
  let ran: Promise<void> | undefined;
  const shortRun = () => (ran ??= drive());
  async function drive(): Promise<void> {
    // Invalid records, so that the dead-letter counters exist (ModestreamDeadLettersSpiking queries them).
    const kafka = new Kafka({ brokers: brokers.split(','), logLevel: logLevel.NOTHING });
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: deployment.topics.pairs, acks: -1, messages: makeInvalidMessages('prom-bad').map(({ key, value }) => ({ key, value })) });
    await producer.disconnect();
    const produced = await produceFashionMnist(deployment, 'tops,bottoms:2000', 1);
    expect(produced.code, produced.output).toBe(0);
    // A crashed job, so that the failure counter exists (ModestreamTrainingFailures, ModestreamTrainingStalled);
    // it is retried after 1 s.
    const seed = await waitFor('the seed training job', () => trainingJob(processor!.pid, 'seed'), { timeoutMs: 120_000, intervalMs: 100 });
    process.kill(seed, 'SIGKILL');
    // The slowest series: an expert trained after the retried seed, and the failure, both seen by Prometheus.
    await waitFor(
      'Prometheus to see a trained expert and the failed job',
      async () => {
        const live = await prometheus!.liveMetricNames(`{job="${JOB}"}`);
        return live.has('modestream_expert_last_trained_timestamp_seconds') && live.has('modestream_training_failures_total');
      },
      { timeoutMs: 180_000, intervalMs: 500 },
    );
  }

  /** The names in `wanted` without a live series, after a few more scrapes for stragglers. */
  async function missingSeries(wanted: string[]): Promise<string[]> {
    await shortRun();
    let missing = wanted;
    await waitFor(
      'every wanted metric to have a series',
      async () => {
        const live = await prometheus!.liveMetricNames(`{job="${JOB}"}`);
        missing = wanted.filter((name) => !live.has(name));
        return missing.length === 0;
      },
      { timeoutMs: 5000, intervalMs: 500 },
    ).catch(() => undefined);
    return missing;
  }

  beforeAll(async () => {
    if (!installed) throw new Error(`no prometheus/promtool on the PATH: ${PROMETHEUS_INSTALL_HINT}`);
    processor = await startProcessor(deployment);
    const http = /"status":"(http:\/\/[^"]+)\/status\.json"/.exec(processor.output())?.[1];
    if (!http) throw new Error(`the processor logs no status URL:\n${processor.output().slice(-3000)}`);
    target = new URL(http).host;
    // deploy/prometheus/prometheus.yml scrapes 127.0.0.1:8080 every 15 s: the live run gets its own config
    // with the same job name and the shipped rules, by absolute path.
    prometheus = await startPrometheus({ job: JOB, targets: [target], ruleFiles: [ALERTS] });
  });

  afterAll(async () => {
    await prometheus?.stop();
    await stopProcessor(processor);
    rmSync(deployment.stateDir, { recursive: true, force: true });
  });

  test('promtool accepts the shipped config and rules', () => {
    // The files as shipped; promtool resolves rule_files (alerts.yml) next to the config.
    const config = promtool(['check', 'config', join(PROMETHEUS_DIR, 'prometheus.yml')]);
    expect(config.code, config.output).toBe(0);
    const rules = promtool(['check', 'rules', ALERTS]);
    expect(rules.code, rules.output).toBe(0);
  });

  test('the processor is an `up` target', async () => {
    const targets = await waitFor(
      'the target to be up',
      async () => {
        const r = await prometheus!.api<{ activeTargets: { scrapeUrl: string; health: string; lastError: string }[] }>('targets');
        const mine = r.data.activeTargets.filter((t) => t.scrapeUrl === `http://${target}/metrics`);
        return mine.length > 0 && mine.every((t) => t.health === 'up') ? mine : undefined;
      },
      { timeoutMs: 30_000 },
    );
    expect(targets).toHaveLength(1);
    const up = await prometheus!.query(`up{job="${JOB}"}`);
    expect(up.data.result.map((s) => s.value[1])).toEqual(['1']);
  });

  test('every alert rule: the metrics it queries have live series, and its expression evaluates', async () => {
    const rules = (await prometheus!.rules()).filter((r) => r.type === 'alerting');
    // All the file's alerts were loaded (Prometheus parsed the YAML; the API gives each expr back).
    const declared = [...readFileSync(ALERTS, 'utf8').matchAll(/^\s*-\s*alert:\s*(\S+)/gm)].map((m) => m[1]!);
    expect(rules.map((r) => r.name).sort()).toEqual(declared.sort());

    const wanted = [...new Set(rules.flatMap((r) => metricNames(r.query)))].sort();
    expect(wanted).toContain('modestream_records_total');
    const missing = await missingSeries(wanted);
    expect(missing, `metrics the alert rules query without a series (rule: names):\n${rules.map((r) => `  ${r.name}: ${metricNames(r.query).filter((n) => missing.includes(n)).join(', ')}`).join('\n')}`).toEqual([]);

    for (const rule of rules) {
      const r = await prometheus!.query(rule.query);
      expect(r.status, `${rule.name}: ${r.error ?? ''}`).toBe('success');
    }
    // And Prometheus's own evaluation of the loaded rules reports no error.
    await waitFor('every rule evaluated', async () => (await prometheus!.rules()).every((r) => r.health !== 'unknown'), { timeoutMs: 10_000 });
    const unhealthy = (await prometheus!.rules()).filter((r) => r.health !== 'ok');
    expect(unhealthy.map((r) => `${r.name}: ${r.health} ${r.lastError ?? ''}`)).toEqual([]);
  });

  test('every metric the Grafana dashboard queries has a live series, and its panel queries evaluate', async () => {
    const { exprs, variableQueries } = dashboardQueries();
    expect(exprs.length).toBeGreaterThan(10);
    const wanted = [...new Set([...exprs, ...variableQueries].flatMap(metricNames))].sort();
    expect(wanted).toContain('modestream_expert_version');
    const missing = await missingSeries(wanted);
    expect(missing, 'metrics the dashboard queries without a series').toEqual([]);

    const failed: string[] = [];
    for (const expr of exprs) {
      const r = await prometheus!.query(grafanaVariables(expr));
      if (r.status !== 'success') failed.push(`${expr}: ${r.error}`);
    }
    expect(failed).toEqual([]);
  });

  test('the gauges of state report what the run reached, not their initial 0', async () => {
    await shortRun();
    // An unlabelled prom-client gauge exports 0 before anything sets it: a series alone proves nothing here.
    const value = async (promql: string) => Number((await prometheus!.query(promql)).data.result[0]?.value[1] ?? NaN);
    await waitFor('a snapshot to be reported', async () => (await value(`max(modestream_snapshot_version{job="${JOB}"})`)) >= 1, { timeoutMs: 30_000 });
    expect(await value(`max(modestream_expert_version{job="${JOB}"})`)).toBeGreaterThanOrEqual(1);
    // The run bootstrapped (experts were trained): the centroid epoch is at least 1.
    expect(await value(`max(modestream_centroid_epoch{job="${JOB}"})`), 'modestream_centroid_epoch after bootstrap').toBeGreaterThanOrEqual(1);
  });
});
