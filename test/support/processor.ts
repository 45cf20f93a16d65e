/**
 * Real `modestream run` processes for integration tests: spawned from the built CLI (dist/), configured
 * through MODESTREAM_* variables, killed with real signals. Their logs are kept for failure messages.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { StatusReport } from '../../src/status.js';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const CLI = join(ROOT, 'bin', 'modestream.js');

export interface TestDeployment {
  brokers: string;
  stateDir: string;
  topics: { pairs: string; dlq: string; routed: string; control: string; leader: string; nodes: string; models: string };
  groups: { router: string; sharder: string; controller: string };
  /** MODESTREAM_* variables that point a process at this deployment. */
  env: Record<string, string>;
}

/** Fresh topics, groups and state dir, so test files never see each other's data. */
export function testDeployment(brokers: string, overrides: Record<string, string> = {}): TestDeployment {
  const tag = randomUUID().slice(0, 8);
  const topics = { pairs: `t${tag}.pairs`, dlq: `t${tag}.pairs.dlq`, routed: `t${tag}.routed`, control: `t${tag}.control`, leader: `t${tag}.leader`, nodes: `t${tag}.nodes`, models: `t${tag}.models` };
  const groups = { router: `t${tag}.router`, sharder: `t${tag}.sharder`, controller: `t${tag}.controller` };
  const stateDir = mkdtempSync(join(tmpdir(), `modestream-state-${tag}-`));
  const env: Record<string, string> = {
    MODESTREAM_KAFKA__BROKERS: brokers,
    MODESTREAM_STATE_DIR: stateDir,
    MODESTREAM_TOPICS__PAIRS: topics.pairs,
    MODESTREAM_TOPICS__DLQ: topics.dlq,
    MODESTREAM_TOPICS__ROUTED: topics.routed,
    MODESTREAM_TOPICS__CONTROL: topics.control,
    MODESTREAM_TOPICS__LEADER: topics.leader,
    MODESTREAM_TOPICS__NODES: topics.nodes,
    MODESTREAM_TOPICS__MODELS: topics.models,
    MODESTREAM_GROUPS__ROUTER: groups.router,
    MODESTREAM_GROUPS__SHARDER: groups.sharder,
    MODESTREAM_GROUPS__CONTROLLER: groups.controller,
    // Small and fast: a few hundred pairs bootstrap 16 fine clusters into 4 experts.
    MODESTREAM_CLUSTERING__SAMPLE: '500',
    MODESTREAM_CLUSTERING__FINE: '16',
    MODESTREAM_CLUSTERING__EXPERTS: '4',
    // A kill -9'd member is noticed after 6 s instead of 30 s.
    MODESTREAM_KAFKA__SESSION_TIMEOUT_MS: '6000',
    MODESTREAM_KAFKA__HEARTBEAT_INTERVAL_MS: '1000',
    MODESTREAM_LIMITS__MAX_MESSAGE_BYTES: '65536',
    MODESTREAM_HTTP__PORT: '0',
    MODESTREAM_BACKEND: 'wasm',
    // The hashed embedder keeps these tests independent of a pulled model; the tests of the real encoder say so.
    MODESTREAM_EMBEDDER__KIND: 'hashed',
    MODESTREAM_LOG__LEVEL: 'info',
    ...overrides,
  };
  return { brokers, stateDir, topics, groups, env };
}

export interface Processor {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Everything the process wrote so far (stdout + stderr). */
  output(): string;
  /** Resolves once a log line contains `text`. */
  waitForLog(text: string, timeoutMs?: number): Promise<void>;
  kill(signal: NodeJS.Signals): void;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function runCli(args: string[], env: Record<string, string>): Processor {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const waiters: { text: string; resolve: () => void }[] = [];
  const onData = (buf: Buffer) => {
    log += buf.toString();
    if (log.length > 4_000_000) log = log.slice(-2_000_000);
    for (const w of [...waiters]) if (log.includes(w.text)) (waiters.splice(waiters.indexOf(w), 1), w.resolve());
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return {
    child,
    pid: child.pid!,
    output: () => log,
    waitForLog(text, timeoutMs = 60_000) {
      if (log.includes(text)) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no "${text}" in the process log after ${timeoutMs} ms; log tail:\n${log.slice(-3000)}`)), timeoutMs);
        waiters.push({ text, resolve: () => (clearTimeout(timer), resolve()) });
        exited.then(({ code, signal }) => reject(new Error(`process exited (${code ?? signal}) before logging "${text}"; log tail:\n${log.slice(-3000)}`)));
      });
    },
    kill: (signal) => child.kill(signal),
    exited,
  };
}

/** `modestream run` for a deployment; resolves once its stages are consuming. */
export async function startProcessor(deployment: TestDeployment, extraEnv: Record<string, string> = {}): Promise<Processor> {
  const p = runCli(['run'], { ...deployment.env, ...extraEnv });
  await p.waitForLog('modestream running', 120_000);
  return p;
}

/** Runs a CLI command to completion. */
export async function cli(args: string[], env: Record<string, string>, timeoutMs = 120_000): Promise<{ code: number | null; stdout: string; output: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let output = '';
  child.stdout.on('data', (b: Buffer) => ((stdout += b.toString()), (output += b.toString())));
  child.stderr.on('data', (b: Buffer) => (output += b.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  clearTimeout(timer);
  return { code, stdout, output };
}

/** Stops a `modestream run` the way ops do (SIGTERM) and waits for it to exit. */
export async function stopProcessor(processor: Processor | undefined): Promise<void> {
  processor?.kill('SIGTERM');
  await processor?.exited;
}

/** `modestream status --json [flags]` for a deployment, validated; a failed command throws with its output. */
export async function readStatus(deployment: TestDeployment, flags: string[] = ['--no-kafka']): Promise<StatusReport> {
  const result = await cli(['status', '--json', ...flags], deployment.env);
  if (result.code !== 0) throw new Error(`modestream status exited ${result.code}:\n${result.output}`);
  return StatusReport.parse(JSON.parse(result.stdout));
}

/** `modestream produce --from fashion-mnist` into a deployment's input topic. */
export function produceFashionMnist(deployment: TestDeployment, schedule: string, seed: number) {
  return cli(['produce', '--from', 'fashion-mnist', '--schedule', schedule, '--seed', String(seed), '--no-progress'], deployment.env, 300_000);
}
