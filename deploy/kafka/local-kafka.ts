/**
 * The local Apache Kafka broker: one node in KRaft combined mode on loopback, run from the jars that
 * deploy/kafka/pom.xml pulls from Maven Central. Used by `modestream broker start|stop|status` and by the
 * integration tests' global setup, so both exercise the same code.
 *
 * Everything lives in the data dir: server.properties, log4j.properties, logs/ (Kafka's log.dirs, formatted
 * once), broker.log (the JVM's stdout+stderr) and broker.pid. The broker runs detached, so it outlives the
 * command that started it; the pid file is how a later command finds it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { accessSync, constants as fsConstants, existsSync, openSync, closeSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, open, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel } from 'kafkajs';
import { ConfigError, EnvironmentError, ModestreamError, TransientError, errorMessage } from '../../src/errors.js';
import { silentLogger, type Logger } from '../../src/logger.js';
import type { LocalBrokerSettings } from '../../src/config.js';

export interface LocalKafkaOptions extends LocalBrokerSettings {
  logger?: Logger;
  /** Where the broker jars live; default <package root>/deploy/kafka/target/libs. */
  libsDir?: string;
  /** Environment for java/mvn lookups and the child processes (tests hide java or mvn through PATH). */
  env?: NodeJS.ProcessEnv;
  /** How long `stop` waits after SIGTERM before SIGKILL. */
  stopTimeoutMs?: number;
}

export interface StartResult {
  pid: number;
  alreadyRunning: boolean;
  bootstrap: string;
}

export interface StopResult {
  wasRunning: boolean;
  pid?: number;
}

export interface LocalKafkaStatus {
  running: boolean;
  ready: boolean;
  pid?: number;
  bootstrap: string;
  dataDir: string;
}

type JarOptions = Pick<LocalKafkaOptions, 'libsDir' | 'env' | 'logger'>;

const HOST = '127.0.0.1';
const MiB = 1024 * 1024;
/** Shared by server.properties and the readiness probe, which checks every __consumer_offsets partition. */
const OFFSETS_PARTITIONS = 4;
const DEFAULT_STOP_TIMEOUT_MS = 30_000;
const MVN_TIMEOUT_MS = 10 * 60_000;
const LOG_TAIL_LINES = 20;
const READY_POLL_MS = 300;
/** Written into libsDir after a complete copy; holds the pom's hash so a changed pom re-copies. */
const JARS_MARKER = '.modestream-complete';

const ALTERNATIVES =
  'Alternatives: run Kafka with Docker (docker compose -f deploy/docker-compose.yml up -d), ' +
  'or point kafka.brokers (MODESTREAM_KAFKA__BROKERS) at an existing cluster.';

// ---------------------------------------------------------------------------------------------------
// Public API

/**
 * Makes sure the broker jars are in libsDir, copying them with Maven when missing or incomplete.
 * Completeness is a marker holding the pom's hash, written only after a successful copy, because an
 * interrupted copy leaves a plausible-looking but partial directory.
 */
export async function ensureKafkaJars(o: JarOptions = {}): Promise<string> {
  const root = packageRoot();
  const pom = join(root, 'deploy', 'kafka', 'pom.xml');
  const libsDir = resolve(o.libsDir ?? join(root, 'deploy', 'kafka', 'target', 'libs'));
  const pomHash = createHash('sha256').update(readFileSync(pom)).digest('hex');
  const marker = join(libsDir, JARS_MARKER);
  if (existsSync(marker) && readFileSync(marker, 'utf8').trim() === pomHash) return libsDir;

  const env = o.env ?? process.env;
  const mvn = findExecutable('mvn', env);
  if (mvn === undefined) {
    throw new EnvironmentError(
      `Maven (mvn) is not on PATH; the local Kafka broker needs it once to fetch the Kafka jars into ${libsDir}. ` +
        `Install Maven 3.8+ and Java 17+ (Debian/Ubuntu: apt-get install maven openjdk-17-jre-headless). ${ALTERNATIVES}`,
    );
  }
  const logger = o.logger ?? silentLogger;
  logger.info({ libsDir }, 'fetching the Kafka broker jars with Maven (once)');
  await mkdir(dirname(libsDir), { recursive: true });
  // Copy into a scratch dir, then rename jar by jar: a broker already running from libsDir keeps its open
  // files, and a concurrent reader never sees a half-written jar.
  const scratch = await mkdtemp(`${libsDir}.tmp-`);
  try {
    const result = await runToCompletion({
      command: mvn,
      args: ['-q', '-B', '-f', pom, 'dependency:copy-dependencies', `-DoutputDirectory=${scratch}`, '-DincludeScope=runtime'],
      env,
      cwd: dirname(pom),
      timeoutMs: MVN_TIMEOUT_MS,
    });
    if (result.code !== 0) {
      throw new EnvironmentError(
        `mvn could not fetch the Kafka jars (${result.reason}). Is Maven Central reachable?\n${lastLines(result.output, LOG_TAIL_LINES)}`,
        { retriable: true },
      );
    }
    await mkdir(libsDir, { recursive: true });
    for (const jar of await readdir(scratch)) await rename(join(scratch, jar), join(libsDir, jar));
    await writeFile(marker, `${pomHash}\n`);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  logger.info({ libsDir }, 'Kafka broker jars ready');
  return libsDir;
}

/**
 * Starts the broker unless this data dir's broker is already running, and returns once kafkajs clients
 * can both reach the cluster and use consumer groups.
 */
export async function startLocalKafka(o: LocalKafkaOptions): Promise<StartResult> {
  const logger = o.logger ?? silentLogger;
  const paths = brokerPaths(o.dataDir);
  const bootstrap = bootstrapOf(o);

  const existing = await livePid(paths);
  if (existing !== undefined) {
    const runningPort = await configuredPort(paths);
    if (runningPort !== undefined && runningPort !== o.port) {
      throw new ConfigError(
        `the broker of ${paths.dataDir} (pid ${existing}) already runs on port ${runningPort}, not ${o.port}; ` +
          'stop it first to change ports',
      );
    }
    // Possibly still starting (another command launched it a moment ago): wait for it like a fresh start.
    await waitUntilReady({
      bootstrap,
      deadline: Date.now() + o.startTimeoutMs,
      exitReason: () => (isBrokerProcess(existing, paths) ? undefined : 'the process is gone'),
      logFile: paths.logFile,
    });
    logger.info({ pid: existing, bootstrap }, 'local Kafka already running');
    return { pid: existing, alreadyRunning: true, bootstrap };
  }

  for (const [setting, port] of [['port', o.port], ['controllerPort', o.controllerPort]] as const) {
    if (!(await portIsFree(port))) {
      throw new EnvironmentError(
        `port ${port} on ${HOST} (localBroker.${setting}) is already in use by another process, not by the broker ` +
          `of ${paths.dataDir}. Stop that process (perhaps a broker left over from an earlier run; ` +
          `\`ss -ltnp 'sport = :${port}'\` shows it) or choose another localBroker.${setting}.`,
      );
    }
  }

  const env = o.env ?? process.env;
  const java = javaExecutable(env);
  const libsDir = await ensureKafkaJars(o);
  const deadline = Date.now() + o.startTimeoutMs;

  await mkdir(paths.logsDir, { recursive: true });
  await writeFile(paths.propsFile, kafkaServerProperties({ port: o.port, controllerPort: o.controllerPort, logsDir: paths.logsDir }));
  await writeFile(paths.log4jFile, kafkaLog4jProperties());
  const classpath = join(libsDir, '*');

  if (!existsSync(join(paths.logsDir, 'meta.properties'))) {
    await formatStorage({ java, classpath, paths, env, deadline, logger });
  }

  // Keep the previous run's log for post-mortems; the tail we report on failure is this run's alone.
  if (existsSync(paths.logFile)) await rename(paths.logFile, `${paths.logFile}.1`);
  const child = spawnBroker({ java, classpath, heapMb: o.heapMb, paths, env });
  let exit: string | undefined;
  child.once('exit', (code, signal) => (exit = signal === null ? `exit code ${code}` : `killed by ${signal}`));
  child.once('error', (err) => (exit = `could not run ${java}: ${err.message}`));
  const pid = child.pid;
  if (pid === undefined) {
    await new Promise((r) => setImmediate(r)); // the 'error' event carries the reason
    throw new EnvironmentError(`could not start the Kafka broker: ${exit ?? 'no pid'}`);
  }
  await writeFile(paths.pidFile, `${pid}\n`);
  logger.info({ pid, bootstrap, dataDir: paths.dataDir }, 'local Kafka starting');

  try {
    await waitUntilReady({ bootstrap, deadline, exitReason: () => exit, logFile: paths.logFile });
  } catch (err) {
    // A half-started JVM would hold the ports and the pid file; a retry must find a clean slate.
    await terminate(pid, paths, 5_000);
    await rm(paths.pidFile, { force: true });
    throw err;
  }
  logger.info({ pid, bootstrap }, 'local Kafka ready');
  return { pid, alreadyRunning: false, bootstrap };
}

/** SIGTERM (Kafka's shutdown hook closes logs cleanly), then SIGKILL after stopTimeoutMs. Idempotent. */
export async function stopLocalKafka(o: LocalKafkaOptions): Promise<StopResult> {
  const logger = o.logger ?? silentLogger;
  const paths = brokerPaths(o.dataDir);
  const pid = await livePid(paths);
  if (pid === undefined) return { wasRunning: false };
  logger.info({ pid }, 'stopping local Kafka');
  const how = await terminate(pid, paths, o.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS);
  await rm(paths.pidFile, { force: true });
  if (how === 'killed') logger.warn({ pid }, 'local Kafka did not stop after SIGTERM; killed it');
  else logger.info({ pid }, 'local Kafka stopped');
  return { wasRunning: true, pid };
}

export async function localKafkaStatus(o: LocalKafkaOptions): Promise<LocalKafkaStatus> {
  const paths = brokerPaths(o.dataDir);
  const bootstrap = bootstrapOf(o);
  const pid = await livePid(paths);
  if (pid === undefined) return { running: false, ready: false, bootstrap, dataDir: paths.dataDir };
  const ready = await probeBroker(bootstrap, 5_000).then(
    () => true,
    () => false,
  );
  return { running: true, ready, pid, bootstrap, dataDir: paths.dataDir };
}

// ---------------------------------------------------------------------------------------------------
// Configuration (pure builders)

export function kafkaServerProperties(o: { port: number; controllerPort: number; logsDir: string }): string {
  const controller = `${HOST}:${o.controllerPort}`;
  const lines = [
    '# Written by modestream (deploy/kafka/local-kafka.ts) at every start; edits are overwritten.',
    '# Single node, KRaft combined mode: this process is both the broker and the metadata quorum.',
    'node.id=1',
    'process.roles=broker,controller',
    `controller.quorum.voters=1@${controller}`,
    'controller.listener.names=CONTROLLER',
    '# Loopback only: a development broker without authentication must not be reachable from the network.',
    `listeners=PLAINTEXT://${HOST}:${o.port},CONTROLLER://${controller}`,
    `advertised.listeners=PLAINTEXT://${HOST}:${o.port}`,
    'inter.broker.listener.name=PLAINTEXT',
    'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    `log.dirs=${escapeProperty(o.logsDir)}`,
    '',
    '# The defaults (3) cannot be met by one node: without these the group coordinator never becomes available.',
    'offsets.topic.replication.factor=1',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    '# Fewer internal partitions (default 50) make the first consumer group start in seconds on 2 cores.',
    `offsets.topic.num.partitions=${OFFSETS_PARTITIONS}`,
    `transaction.state.log.num.partitions=${OFFSETS_PARTITIONS}`,
    '# No 3 s wait for more members before the first rebalance: there is one consumer per group in tests.',
    'group.initial.rebalance.delay.ms=0',
    '# Tests use short sessions so a group recovers quickly from a kill -9 (broker default minimum: 6 s).',
    'group.min.session.timeout.ms=1000',
    '# Topics are created explicitly with their intended partition counts; a typo must fail, not create one.',
    'auto.create.topics.enable=false',
    `# Room for large records (image-caption pairs with inline images). Consumers' maxBytesPerPartition must match.`,
    `message.max.bytes=${16 * MiB}`,
    `replica.fetch.max.bytes=${16 * MiB}`,
    '',
    '# Sized for a small machine: the defaults (3 network, 8 I/O threads) only add contention on 2 cores.',
    'num.network.threads=2',
    'num.io.threads=4',
    '# The log cleaner (compacted control topic) allocates this buffer up front; 128 MiB is a quarter of a 512 MiB heap.',
    `log.cleaner.dedupe.buffer.size=${32 * MiB}`,
  ];
  return `${lines.join('\n')}\n`;
}

/** Console logging at INFO (the JVM's stdout goes to broker.log), minus the per-request chatter. */
export function kafkaLog4jProperties(): string {
  return [
    'log4j.rootLogger=INFO, stdout',
    'log4j.appender.stdout=org.apache.log4j.ConsoleAppender',
    'log4j.appender.stdout.layout=org.apache.log4j.PatternLayout',
    'log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n',
    'log4j.logger.kafka.request.logger=WARN',
    'log4j.logger.state.change.logger=WARN',
    // Config dumps of the broker's internal clients, hundreds of lines at each start.
    'log4j.logger.org.apache.kafka.clients=WARN',
    '',
  ].join('\n');
}

/** Java properties treat backslash as an escape (Windows paths). */
function escapeProperty(value: string): string {
  return value.replace(/\\/g, '\\\\');
}

/**
 * A KRaft cluster id: 16 random bytes in unpadded base64url, as Kafka's Uuid prints them. Ids starting
 * with '-' are redrawn (Kafka's Uuid.randomUuid does the same) because StorageTool would read one as a flag.
 */
function newClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

// ---------------------------------------------------------------------------------------------------
// Processes

interface BrokerPaths {
  dataDir: string;
  logsDir: string;
  propsFile: string;
  log4jFile: string;
  pidFile: string;
  logFile: string;
}

function brokerPaths(dataDir: string): BrokerPaths {
  const dir = resolve(dataDir);
  return {
    dataDir: dir,
    logsDir: join(dir, 'logs'),
    propsFile: join(dir, 'server.properties'),
    log4jFile: join(dir, 'log4j.properties'),
    pidFile: join(dir, 'broker.pid'),
    logFile: join(dir, 'broker.log'),
  };
}

function bootstrapOf(o: { port: number }): string {
  return `${HOST}:${o.port}`;
}

/** The client port in the data dir's server.properties, i.e. the one the running broker was started with. */
async function configuredPort(paths: BrokerPaths): Promise<number | undefined> {
  const text = await readFile(paths.propsFile, 'utf8').catch(() => '');
  const match = /^listeners=PLAINTEXT:\/\/[^,\n]*:(\d+)/m.exec(text);
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

/** StorageTool's main calls System.exit, so it runs as its own short JVM. */
async function formatStorage(o: {
  java: string;
  classpath: string;
  paths: BrokerPaths;
  env: NodeJS.ProcessEnv;
  deadline: number;
  logger: Logger;
}): Promise<void> {
  const clusterId = newClusterId();
  o.logger.info({ clusterId, logsDir: o.paths.logsDir }, 'formatting Kafka storage');
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
      clusterId,
      '-c',
      o.paths.propsFile,
    ],
    env: o.env,
    cwd: o.paths.dataDir,
    timeoutMs: Math.max(1, o.deadline - Date.now()),
  });
  if (result.code !== 0) {
    throw new EnvironmentError(
      `formatting Kafka storage in ${o.paths.logsDir} failed (${result.reason}):\n${lastLines(result.output, LOG_TAIL_LINES)}`,
    );
  }
}

function spawnBroker(o: { java: string; classpath: string; heapMb: number; paths: BrokerPaths; env: NodeJS.ProcessEnv }): ChildProcess {
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
      { cwd: o.paths.dataDir, env: o.env, detached: true, stdio: ['ignore', out, out] },
    );
    child.unref();
    return child;
  } finally {
    closeSync(out); // the child holds its own copy
  }
}

/** The pid from the pid file if that process is this data dir's broker; a stale pid file is removed. */
async function livePid(paths: BrokerPaths): Promise<number | undefined> {
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
 * Whether pid is alive and (where /proc exists) is the kafka.Kafka JVM of this data dir, so a pid reused
 * by an unrelated process after a reboot is not mistaken for the broker. A zombie counts as dead: an
 * orphaned broker that exited may wait for a reaper that some container inits never run.
 */
function isBrokerProcess(pid: number, paths: BrokerPaths): boolean {
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

async function terminate(pid: number, paths: BrokerPaths, graceMs: number): Promise<'stopped' | 'killed'> {
  signal(pid, 'SIGTERM');
  if (await waitForExit(pid, paths, graceMs)) return 'stopped';
  signal(pid, 'SIGKILL');
  if (await waitForExit(pid, paths, 10_000)) return 'killed';
  throw new ModestreamError(`Kafka broker pid ${pid} survived SIGKILL`);
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

async function waitForExit(pid: number, paths: BrokerPaths, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isBrokerProcess(pid, paths)) {
    if (Date.now() >= deadline) return false;
    await sleep(100);
  }
  return true;
}

interface RunResult {
  code: number | null;
  reason: string;
  output: string;
}

/** Runs a command to completion, capturing stdout and stderr together (for error messages). */
function runToCompletion(o: { command: string; args: string[]; env: NodeJS.ProcessEnv; cwd: string; timeoutMs: number }): Promise<RunResult> {
  return new Promise((done) => {
    const child = spawn(o.command, o.args, { cwd: o.cwd, env: o.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.stderr.on('data', (c: Buffer) => chunks.push(c));
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs);
    const output = () => Buffer.concat(chunks).toString('utf8');
    child.once('error', (err) => {
      clearTimeout(timer);
      done({ code: null, reason: err.message, output: output() });
    });
    child.once('close', (code, sig) => {
      clearTimeout(timer);
      const reason = sig === null ? `exit code ${code}` : `killed by ${sig}${sig === 'SIGKILL' ? ` after ${o.timeoutMs} ms` : ''}`;
      done({ code, reason, output: output() });
    });
  });
}

// ---------------------------------------------------------------------------------------------------
// Environment

/** Mirrors Kafka's own scripts: $JAVA_HOME/bin/java when set, else java on PATH. */
function javaExecutable(env: NodeJS.ProcessEnv): string {
  const home = env.JAVA_HOME;
  if (home !== undefined && home !== '' && isExecutable(join(home, 'bin', 'java'))) return join(home, 'bin', 'java');
  const java = findExecutable('java', env);
  if (java !== undefined) return java;
  throw new EnvironmentError(
    'Java is not installed (no java on PATH, JAVA_HOME unset); the local Kafka broker needs Java 17+ ' +
      `(Debian/Ubuntu: apt-get install openjdk-17-jre-headless maven). ${ALTERNATIVES}`,
  );
}

function findExecutable(name: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, fsConstants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/** The directory of the package.json named "modestream": the module runs from deploy/ and from dist/deploy/. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        if ((JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown }).name === 'modestream') return dir;
      } catch {
        // an unreadable package.json is not ours; keep walking
      }
    }
    const parent = dirname(dir);
    if (parent === dir) throw new EnvironmentError(`cannot find the modestream package root above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

/** Whether 127.0.0.1:port can be bound now; more reliable than connecting, which misses unlistened binds. */
function portIsFree(port: number): Promise<boolean> {
  return new Promise((done) => {
    const server = createServer();
    server.once('error', () => done(false));
    server.listen({ port, host: HOST }, () => server.close(() => done(true)));
  });
}

// ---------------------------------------------------------------------------------------------------
// Readiness

/**
 * Group ids whose coordinator partitions cover all of __consumer_offsets. Kafka maps a group to
 * partition abs(javaStringHashCode(groupId)) % offsets.topic.num.partitions; probing one group per
 * partition means no consumer started after readiness meets a coordinator that is still loading.
 */
function probeGroupIds(): string[] {
  const byPartition = new Map<number, string>();
  for (let i = 0; byPartition.size < OFFSETS_PARTITIONS; i++) {
    const id = `modestream-readiness-${i}`;
    const p = javaAbs(javaStringHash(id)) % OFFSETS_PARTITIONS;
    if (!byPartition.has(p)) byPartition.set(p, id);
  }
  return [...byPartition.values()];
}

function javaStringHash(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(31, h) + s.charCodeAt(i)) | 0;
  return h;
}

/** Kafka's Utils.abs: Integer.MIN_VALUE maps to 0 rather than staying negative. */
function javaAbs(n: number): number {
  return n === -2147483648 ? 0 : Math.abs(n);
}

/** One attempt: metadata works and every group coordinator partition answers. Throws otherwise. */
async function probeBroker(bootstrap: string, requestTimeoutMs: number): Promise<void> {
  const kafka = new Kafka({
    clientId: 'modestream-broker-probe',
    brokers: [bootstrap],
    // Refused connections are expected while polling; kafkajs would log each one as an error.
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1_000,
    requestTimeout: requestTimeoutMs,
    retry: { retries: 0 },
  });
  const admin = kafka.admin({ retry: { retries: 0 } });
  try {
    await admin.connect();
    await admin.describeCluster();
    // Looking up a coordinator also creates __consumer_offsets on first use.
    await admin.describeGroups(probeGroupIds());
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

async function waitUntilReady(o: {
  bootstrap: string;
  deadline: number;
  /** Why the broker process is gone, or undefined while it lives. */
  exitReason: () => string | undefined;
  logFile: string;
}): Promise<void> {
  let lastError: unknown;
  for (;;) {
    const exited = o.exitReason();
    if (exited !== undefined) {
      throw new EnvironmentError(
        `the Kafka broker stopped during start-up (${exited}). Last lines of ${o.logFile}:\n${await tailFile(o.logFile)}`,
      );
    }
    try {
      await probeBroker(o.bootstrap, 5_000);
      return;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= o.deadline) {
      throw new TransientError(
        `the Kafka broker at ${o.bootstrap} was not ready in time (last probe: ${errorMessage(lastError)}); ` +
          `raise localBroker.startTimeoutMs on a slow machine. Last lines of ${o.logFile}:\n${await tailFile(o.logFile)}`,
        { cause: lastError },
      );
    }
    await sleep(READY_POLL_MS);
  }
}

// ---------------------------------------------------------------------------------------------------
// Small helpers

async function tailFile(file: string, lines = LOG_TAIL_LINES): Promise<string> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch {
    return '(no log)';
  }
  try {
    const { size } = await handle.stat();
    const length = Math.min(size, 64 * 1024);
    const buf = Buffer.alloc(length);
    await handle.read(buf, 0, length, size - length);
    return lastLines(buf.toString('utf8'), lines);
  } finally {
    await handle.close();
  }
}

function lastLines(text: string, n: number): string {
  return text.trimEnd().split('\n').slice(-n).join('\n');
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
