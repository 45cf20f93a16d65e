/**
 * vitest globalSetup of the integration project: one local Kafka broker for all integration files,
 * started by the same code as `modestream broker start`. With MODESTREAM_TEST_BROKERS set, the tests use
 * that broker instead and nothing is started.
 *
 * Tests read the values with `inject('brokers')` etc. The broker* values are null with an external
 * broker: tests that stop or restart the broker must skip then.
 */
import { mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { startLocalKafka, stopLocalKafka, type LocalKafkaOptions } from '../deploy/kafka/local-kafka.js';
import type { Logger } from '../src/logger.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Bootstrap servers, comma-separated. */
    brokers: string;
    /** The local broker's data dir (pass it to the local-kafka functions), or null for an external broker. */
    brokerDataDir: string | null;
    brokerPort: number | null;
    brokerControllerPort: number | null;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const external = process.env.MODESTREAM_TEST_BROKERS;
  if (external !== undefined && external.trim() !== '') {
    project.provide('brokers', external.trim());
    project.provide('brokerDataDir', null);
    project.provide('brokerPort', null);
    project.provide('brokerControllerPort', null);
    return async () => {};
  }

  const port = testBrokerPort(process.env.MODESTREAM_TEST_BROKER_PORT);
  const options: LocalKafkaOptions = {
    port,
    controllerPort: port + 1,
    // Named by port rather than random: a broker orphaned by a killed test run is found and stopped below.
    dataDir: join(tmpdir(), `modestream-test-kafka-${port}`),
    heapMb: 512,
    // Generous: a cold start (format + JVM) shares 2 cores with vitest's own start-up.
    startTimeoutMs: 180_000,
    logger: consoleLogger('local-kafka'),
  };
  await stopLocalKafka(options);
  await rm(options.dataDir, { recursive: true, force: true });
  await mkdir(options.dataDir, { recursive: true });
  const { bootstrap } = await startLocalKafka(options);

  project.provide('brokers', bootstrap);
  project.provide('brokerDataDir', options.dataDir);
  project.provide('brokerPort', options.port);
  project.provide('brokerControllerPort', options.controllerPort);

  return async () => {
    await stopLocalKafka(options);
    await rm(options.dataDir, { recursive: true, force: true });
  };
}

function testBrokerPort(raw: string | undefined): number {
  if (raw === undefined || raw === '') return 19092;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65534) {
    throw new Error(`MODESTREAM_TEST_BROKER_PORT must be a port number below 65535 (the controller uses port+1), got "${raw}"`);
  }
  return port;
}

/** Start/stop progress on stderr: a cold broker start takes a while and should not look like a hang. */
function consoleLogger(name: string): Logger {
  const write =
    (level: string) =>
    (obj: object | string, msg?: string): void => {
      const text = typeof obj === 'string' ? obj : `${msg ?? ''} ${JSON.stringify(obj)}`;
      console.error(`[${name}] ${level} ${text}`);
    };
  const logger: Logger = {
    debug() {},
    info: write('info'),
    warn: write('warn'),
    error: write('error'),
    child: () => logger,
  };
  return logger;
}
