/**
 * The JVMs of the local Kafka: formatting a node's storage, spawning a node detached (it outlives the
 * command that started it), and finding and signalling it again through its pid file.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { EnvironmentError, ModestreamError } from '../../src/errors.js';
import type { Logger } from '../../src/logger.js';
import { LOG_TAIL_LINES, lastLines, runToCompletion, sleep } from './environment.js';
import type { NodePaths } from './layout.js';
import { scramCredentialArg } from './properties.js';

/**
 * A KRaft cluster id: 16 random bytes in unpadded base64url, as Kafka's Uuid prints them. Ids starting
 * with '-' are redrawn (Kafka's Uuid.randomUuid does the same) because StorageTool would read one as a flag.
 */
export function newClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

/** StorageTool's main calls System.exit, so it runs as its own short JVM. */
export async function formatStorage(o: {
  java: string;
  classpath: string;
  paths: NodePaths;
  clusterId: string;
  /** Added as a SCRAM-SHA-256 credential to the initial metadata. */
  sasl?: { username: string; password: string };
  env: NodeJS.ProcessEnv;
  deadline: number;
  logger: Logger;
}): Promise<void> {
  o.logger.info({ clusterId: o.clusterId, logsDir: o.paths.logsDir, scramUser: o.sasl?.username }, 'formatting Kafka storage');
  const result = await runToCompletion({
    command: o.java,
    // A one-shot tool: the C1-only JIT and serial GC start fastest.
    args: [
      '-Xmx256m',
      '-XX:TieredStopAtLevel=1',
      '-XX:+UseSerialGC',
      `-Dlog4j.configuration=file:${o.paths.log4jFile}`,
      '-cp',
      o.classpath,
      'kafka.tools.StorageTool',
      'format',
      '-t',
      o.clusterId,
      '-c',
      o.paths.propsFile,
      ...(o.sasl ? ['--add-scram', scramCredentialArg(o.sasl)] : []),
    ],
    env: o.env,
    cwd: o.paths.dir,
    timeoutMs: Math.max(1, o.deadline - Date.now()),
  });
  if (result.code !== 0) {
    const output = o.sasl ? result.output.replaceAll(o.sasl.password, '***') : result.output;
    throw new EnvironmentError(`formatting Kafka storage in ${o.paths.logsDir} failed (${result.reason}):\n${lastLines(output, LOG_TAIL_LINES)}`);
  }
}

export function spawnBroker(o: { java: string; classpath: string; heapMb: number; paths: NodePaths; env: NodeJS.ProcessEnv }): ChildProcess {
  const out = openSync(o.paths.logFile, 'a');
  try {
    const child = spawn(
      o.java,
      [
        `-Xms${o.heapMb}m`,
        `-Xmx${o.heapMb}m`,
        // kafka-server-start.sh's JVM settings.
        '-XX:+UseG1GC',
        '-XX:MaxGCPauseMillis=20',
        '-XX:InitiatingHeapOccupancyPercent=35',
        '-XX:+ExplicitGCInvokesConcurrent',
        '-XX:+ExitOnOutOfMemoryError',
        '-Djava.awt.headless=true',
        `-Dlog4j.configuration=file:${o.paths.log4jFile}`,
        '-cp',
        o.classpath,
        'kafka.Kafka',
        o.paths.propsFile,
      ],
      // Detached (own session) so the broker outlives this process and its terminal's Ctrl-C.
      { cwd: o.paths.dir, env: o.env, detached: true, stdio: ['ignore', out, out] },
    );
    child.unref();
    return child;
  } finally {
    closeSync(out); // the child holds its own copy
  }
}

/** The pid from the pid file if that process is this node's broker; a stale pid file is removed. */
export async function livePid(paths: NodePaths): Promise<number | undefined> {
  let text: string;
  try {
    text = await readFile(paths.pidFile, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const pid = Number.parseInt(text.trim(), 10);
  if (Number.isInteger(pid) && pid > 0 && isBrokerProcess(pid, paths)) return pid;
  await rm(paths.pidFile, { force: true });
  return undefined;
}

/**
 * Whether pid is alive and (where /proc exists) is the kafka.Kafka JVM of this node, so a pid reused
 * by an unrelated process after a reboot is not mistaken for the broker. A zombie counts as dead: an
 * orphaned broker that exited may wait for a reaper that some container inits never run.
 */
export function isBrokerProcess(pid: number, paths: NodePaths): boolean {
  if (existsSync('/proc/self/stat')) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // The state letter follows the parenthesised command name, which may itself contain ')'.
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return false;
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      return cmdline.includes('kafka.Kafka') && cmdline.includes(paths.propsFile);
    } catch {
      return false;
    }
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** SIGTERM (Kafka's shutdown hook closes logs cleanly), then SIGKILL after graceMs. */
export async function terminate(pid: number, paths: NodePaths, graceMs: number): Promise<'stopped' | 'killed'> {
  signal(pid, 'SIGTERM');
  if (await waitForExit(pid, paths, graceMs)) return 'stopped';
  await kill(pid, paths);
  return 'killed';
}

/** SIGKILL, as a crash would: no clean shutdown, no leadership handed over. */
export async function kill(pid: number, paths: NodePaths): Promise<void> {
  signal(pid, 'SIGKILL');
  if (!(await waitForExit(pid, paths, 10_000))) throw new ModestreamError(`Kafka broker pid ${pid} survived SIGKILL`);
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

async function waitForExit(pid: number, paths: NodePaths, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isBrokerProcess(pid, paths)) {
    if (Date.now() >= deadline) return false;
    await sleep(100);
  }
  return true;
}
