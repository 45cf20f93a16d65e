/**
 * A real Prometheus server (Debian package `prometheus`) for integration tests: started from the binary
 * with a generated config, a temp TSDB and a free port, queried over its HTTP API, killed with a signal.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './waits.js';

export const PROMETHEUS_INSTALL_HINT = 'install Debian\'s `prometheus` package (apt-get install prometheus; .ci/run does)';

/** Whether `bin` (prometheus, promtool) is on the PATH and runs. */
export function hasBinary(bin: string): boolean {
  return spawnSync(bin, ['--version'], { stdio: 'ignore' }).status === 0;
}

/** `promtool <args>`: exit code and output, for failure messages. */
export function promtool(args: string[]): { code: number | null; output: string } {
  const r = spawnSync('promtool', args, { encoding: 'utf8' });
  if (r.error) throw r.error;
  return { code: r.status, output: `${r.stdout}${r.stderr}` };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * Metric names an expression queries: every `modestream_*` identifier, plus any identifier right before a
 * label matcher (`up{`, `nodejs_eventloop_lag_p99_seconds{`). Label names and functions never precede `{`.
 */
export function metricNames(expr: string): string[] {
  const names = new Set<string>();
  for (const m of expr.matchAll(/\bmodestream_[a-zA-Z0-9_]+/g)) names.add(m[0]);
  for (const m of expr.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{/g)) names.add(m[1]!);
  return [...names].sort();
}

export interface PromResponse<T> {
  status: 'success' | 'error';
  data: T;
  errorType?: string;
  error?: string;
}

export interface AlertingRule {
  name: string;
  query: string;
  type: 'alerting' | 'recording';
  health: string;
  lastError?: string;
}

export interface Prometheus {
  url: string;
  /** Everything the server logged so far. */
  output(): string;
  /** GET /api/v1/<path>; resolves with the parsed body whatever the HTTP status (errors are 4xx with a body). */
  api<T>(path: string, params?: Record<string, string>): Promise<PromResponse<T>>;
  /** Instant query; the full response, so callers can assert status "success". */
  query(promql: string): Promise<PromResponse<{ resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] }>>;
  /** Names of the metrics with a live sample (the last 5 minutes) for `selector`. */
  liveMetricNames(selector: string): Promise<Set<string>>;
  /** The loaded rules of every group. */
  rules(): Promise<AlertingRule[]>;
  stop(): Promise<void>;
}

export interface StartPrometheusOptions {
  job: string;
  /** host:port of each /metrics endpoint. */
  targets: string[];
  /** Absolute paths. */
  ruleFiles: string[];
  scrapeIntervalSeconds?: number;
}

/** Starts `prometheus` on a free port with a generated config; resolves once /-/ready answers. */
export async function startPrometheus({ job, targets, ruleFiles, scrapeIntervalSeconds = 1 }: StartPrometheusOptions): Promise<Prometheus> {
  const dir = mkdtempSync(join(tmpdir(), 'modestream-prometheus-'));
  const interval = `${scrapeIntervalSeconds}s`;
  // JSON is YAML: no YAML library needed.
  const config = {
    global: { scrape_interval: interval, evaluation_interval: interval },
    rule_files: ruleFiles,
    scrape_configs: [{ job_name: job, scrape_interval: interval, scrape_timeout: interval, metrics_path: '/metrics', static_configs: [{ targets }] }],
  };
  const configFile = join(dir, 'prometheus.yml');
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(
    'prometheus',
    [`--config.file=${configFile}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  const keep = (b: Buffer) => (log = (log + b.toString()).slice(-100_000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let spawnError: Error | undefined;
  child.once('error', (err) => (spawnError = err));

  const api = async <T>(path: string, params: Record<string, string> = {}): Promise<PromResponse<T>> => {
    const res = await fetch(`${url}/api/v1/${path}?${new URLSearchParams(params)}`);
    return (await res.json()) as PromResponse<T>;
  };
  const prometheus: Prometheus = {
    url,
    output: () => log,
    api,
    query: (promql) => api('query', { query: promql }),
    async liveMetricNames(selector) {
      const r = await prometheus.query(`group by (__name__) (${selector})`);
      if (r.status !== 'success') throw new Error(`query failed: ${r.error}`);
      return new Set(r.data.result.map((s) => s.metric.__name__!));
    },
    async rules() {
      const r = await api<{ groups: { rules: AlertingRule[] }[] }>('rules');
      if (r.status !== 'success') throw new Error(`GET /api/v1/rules failed: ${r.error}`);
      return r.data.groups.flatMap((g) => g.rules);
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        child.kill('SIGTERM');
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await waitFor(
      'Prometheus to be ready',
      async () => {
        if (spawnError) throw new Error(`prometheus did not start: ${spawnError.message}`);
        if (child.exitCode !== null) throw new Error(`prometheus exited ${child.exitCode}:\n${log.slice(-3000)}`);
        return (await fetch(`${url}/-/ready`)).ok;
      },
      { timeoutMs: 60_000 },
    );
  } catch (err) {
    await prometheus.stop();
    throw err;
  }
  return prometheus;
}
