/** What the local Kafka needs from the machine: java, the broker jars (fetched once with Maven), free ports. */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants as fsConstants, existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, open, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EnvironmentError } from '../../src/errors.js';
import { silentLogger, type Logger } from '../../src/logger.js';
import { HOST } from './layout.js';

export interface JarOptions {
  /** Where the broker jars live; default <package root>/deploy/kafka/target/libs. */
  libsDir?: string;
  /** Environment for java/mvn lookups and the child processes (tests hide java or mvn through PATH). */
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
}

const MVN_TIMEOUT_MS = 10 * 60_000;
export const LOG_TAIL_LINES = 20;
/** Written into libsDir after a complete copy; holds the pom's hash so a changed pom re-copies. */
const JARS_MARKER = '.modestream-complete';

export const ALTERNATIVES =
  'Alternatives: run Kafka with Docker (docker compose -f deploy/docker-compose.yml up -d), ' +
  'or point kafka.brokers (MODESTREAM_KAFKA__BROKERS) at an existing cluster.';

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

/** Mirrors Kafka's own scripts: $JAVA_HOME/bin/java when set, else java on PATH. */
export function javaExecutable(env: NodeJS.ProcessEnv): string {
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
export function portIsFree(port: number): Promise<boolean> {
  return new Promise((done) => {
    const server = createServer();
    server.once('error', () => done(false));
    server.listen({ port, host: HOST }, () => server.close(() => done(true)));
  });
}

export interface RunResult {
  code: number | null;
  reason: string;
  output: string;
}

/** Runs a command to completion, capturing stdout and stderr together (for error messages). */
export function runToCompletion(o: { command: string; args: string[]; env: NodeJS.ProcessEnv; cwd: string; timeoutMs: number }): Promise<RunResult> {
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

export async function tailFile(file: string, lines = LOG_TAIL_LINES): Promise<string> {
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

export function lastLines(text: string, n: number): string {
  return text.trimEnd().split('\n').slice(-n).join('\n');
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
