/**
 * The local broker's lifecycle, against the broker that test/global-setup.ts started. Stops and restarts
 * it on the same data dir, and leaves it running (and ready) for the files that follow.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, Partitioners, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  ensureKafkaJars,
  localKafkaStatus,
  startLocalKafka,
  stopLocalKafka,
  type LocalKafkaOptions,
} from '../../deploy/kafka/local-kafka.js';
import { ConfigError, EnvironmentError } from '../../src/errors.js';

const dataDir = inject('brokerDataDir');
const port = inject('brokerPort');
const controllerPort = inject('brokerControllerPort');

describe.skipIf(dataDir === null || port === null || controllerPort === null)('local Kafka broker', () => {
  const broker: LocalKafkaOptions = {
    port: port ?? 0,
    controllerPort: controllerPort ?? 0,
    dataDir: dataDir ?? '',
    heapMb: 512,
    startTimeoutMs: 180_000,
  };
  const bootstrap = inject('brokers');
  let scratch: string;

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'modestream-local-kafka-test-'));
  });

  afterAll(async () => {
    // Later integration files expect the broker, whatever happened here.
    const status = await localKafkaStatus(broker);
    if (!status.running) await startLocalKafka(broker);
    await rm(scratch, { recursive: true, force: true });
  });

  it('reports the running broker as running and ready', async () => {
    const status = await localKafkaStatus(broker);
    expect(status).toMatchObject({ running: true, ready: true, bootstrap, dataDir: broker.dataDir });
    expect(status.pid).toBeGreaterThan(0);
  });

  it('does not start a second broker on the same data dir', async () => {
    const before = await localKafkaStatus(broker);
    const again = await startLocalKafka(broker);
    expect(again).toEqual({ pid: before.pid, alreadyRunning: true, bootstrap });
    const otherPort = startLocalKafka({ ...broker, port: broker.port + 2 });
    await expect(otherPort).rejects.toBeInstanceOf(ConfigError);
    await expect(otherPort).rejects.toThrow(`already runs on port ${broker.port}`);
  });

  it('keeps topics and messages across stop and start on the same data dir', async () => {
    const topic = `local-kafka-persist-${Date.now()}`;
    // Larger than kafkajs's and Kafka's 1 MiB defaults: the broker must be configured for big records.
    const big = Buffer.alloc(3 * 1024 * 1024, 7);
    const sent = [Buffer.from('first'), big, Buffer.from('last')];
    const kafka = client(bootstrap);
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
    await admin.disconnect();
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    await producer.send({ topic, acks: -1, messages: sent.map((value, i) => ({ key: String(i), value })) });
    await producer.disconnect();

    const stopped = await stopLocalKafka(broker);
    expect(stopped.wasRunning).toBe(true);
    expect(existsSync(join(broker.dataDir, 'broker.pid'))).toBe(false);
    expect(await localKafkaStatus(broker)).toMatchObject({ running: false, ready: false });
    expect(await stopLocalKafka(broker)).toEqual({ wasRunning: false });

    const started = await startLocalKafka(broker);
    expect(started.alreadyRunning).toBe(false);
    expect(started.pid).not.toBe(stopped.pid);

    // Right after start: a consumer group must work at once (readiness covers the group coordinator).
    const topics = await withAdmin(kafka, (a) => a.listTopics());
    expect(topics).toContain(topic);
    const received = await consumeAll(kafka, topic, sent.length);
    expect(received.map((m) => m.key)).toEqual(['0', '1', '2']);
    // Compared as digests: deep equality over a 3 MiB Buffer takes vitest tens of seconds.
    expect(received.map((m) => digest(m.value))).toEqual(sent.map(digest));
  });

  it('says what to install when java is missing', async () => {
    const emptyBin = join(scratch, 'empty-bin');
    await mkdir(emptyBin, { recursive: true });
    const noJava = { ...process.env, PATH: emptyBin, JAVA_HOME: '' };
    const attempt = startLocalKafka({ ...broker, dataDir: join(scratch, 'no-java'), port: 0, controllerPort: 0, env: noJava });
    await expect(attempt).rejects.toBeInstanceOf(EnvironmentError);
    await expect(attempt).rejects.toThrow(/Java 17.*docker-compose\.yml.*kafka\.brokers/s);
  });

  it('says what to install when the jars are missing and mvn is too', async () => {
    const emptyBin = join(scratch, 'empty-bin-mvn');
    await mkdir(emptyBin, { recursive: true });
    const attempt = ensureKafkaJars({ libsDir: join(scratch, 'libs'), env: { ...process.env, PATH: emptyBin } });
    await expect(attempt).rejects.toBeInstanceOf(EnvironmentError);
    await expect(attempt).rejects.toThrow(/Maven.*docker-compose\.yml/s);
  });

  it('names the port when another process holds it', async () => {
    const blocker = await listen();
    try {
      const taken = (blocker.address() as { port: number }).port;
      const attempt = startLocalKafka({ ...broker, dataDir: join(scratch, 'taken'), port: taken, controllerPort: 0 });
      await expect(attempt).rejects.toBeInstanceOf(EnvironmentError);
      await expect(attempt).rejects.toThrow(new RegExp(`port ${taken}\\b.*in use`));
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  });

  it('cleans a stale pid file', async () => {
    const dir = join(scratch, 'stale');
    await mkdir(dir, { recursive: true });
    // The pid of an exited process that was never a broker.
    await writeFile(join(dir, 'broker.pid'), `${await exitedPid()}\n`);
    const options = { ...broker, dataDir: dir };
    expect(await localKafkaStatus(options)).toMatchObject({ running: false, ready: false });
    expect(existsSync(join(dir, 'broker.pid'))).toBe(false);
    await writeFile(join(dir, 'broker.pid'), `${process.pid}\n`); // alive, but not a broker
    expect(await stopLocalKafka(options)).toEqual({ wasRunning: false });
    expect(existsSync(join(dir, 'broker.pid'))).toBe(false);
  });
});

function digest(value: Buffer): string {
  return createHash('sha256').update(value).digest('hex');
}

function client(brokers: string): Kafka {
  return new Kafka({ clientId: 'local-kafka-test', brokers: brokers.split(','), logLevel: logLevel.NOTHING });
}

async function withAdmin<T>(kafka: Kafka, use: (admin: ReturnType<Kafka['admin']>) => Promise<T>): Promise<T> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return await use(admin);
  } finally {
    await admin.disconnect();
  }
}

async function consumeAll(kafka: Kafka, topic: string, count: number): Promise<{ key: string; value: Buffer }[]> {
  const consumer = kafka.consumer({ groupId: `${topic}-reader`, sessionTimeout: 6_000, maxBytesPerPartition: 16 * 1024 * 1024 });
  const received: { key: string; value: Buffer }[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await new Promise<void>((done, fail) => {
      setTimeout(() => fail(new Error(`got ${received.length} of ${count} messages within 60 s`)), 60_000).unref();
      consumer
        .run({
          eachMessage: async ({ message }) => {
            received.push({ key: message.key?.toString() ?? '', value: message.value ?? Buffer.alloc(0) });
            if (received.length >= count) done();
          },
        })
        .catch(fail);
    });
  } finally {
    await consumer.disconnect();
  }
  return received;
}

function listen(): Promise<Server> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen({ port: 0, host: '127.0.0.1' }, () => done(server));
  });
}

async function exitedPid(): Promise<number> {
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
  await new Promise((r) => child.once('exit', r));
  return child.pid ?? 999_999;
}
