/**
 * A real 3-node KRaft cluster from `modestream broker start --nodes 3` (deploy/kafka), with a SCRAM user:
 * replication defaults, `modestream run` / `produce` / `status` over SASL with right and wrong passwords,
 * a broker killed with SIGKILL while clients keep producing with acks=all, its restart by the idempotent
 * `broker start`, and `broker stop`. Its own cluster on ports 19330-19342, away from the global broker.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigResourceTypes, Kafka, Partitioners, logLevel, type Admin } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killLocalKafkaNode, localKafkaStatus, stopLocalKafka, type LocalKafkaOptions, type LocalKafkaStatus } from '../../deploy/kafka/local-kafka.js';
import { openStateEnv } from '../../state/env.js';
import { waitForTopicLeaders } from '../../streams/kafka.js';
import { createShardStore } from '../../state/shards.js';
import { makePairs } from '../support/fixtures.js';
import { cli, startProcessor, stopProcessor, testDeployment, type Processor } from '../support/processor.js';
import { waitFor } from '../support/waits.js';

const PORT = 19330;
const CONTROLLER_PORT = 19340;
const USER = 'alice';
const PASSWORD = 'cluster-s3cret';
const WRONG = 'not-the-password';

describe('local Kafka cluster: 3 KRaft nodes with SASL/SCRAM', () => {
  let dataDir: string;
  let broker: LocalKafkaOptions;
  /** `modestream broker ...` flags and env for this cluster. */
  let brokerArgs: string[];
  const brokerEnv = { MODESTREAM_LOCAL_BROKER__SASL__USERNAME: USER, MODESTREAM_LOCAL_BROKER__SASL__PASSWORD: PASSWORD };
  let bootstrap: string;
  let saslBootstrap: string;
  let kafka: Kafka;
  let admin: Admin;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'modestream-broker-cluster-'));
    broker = { port: PORT, controllerPort: CONTROLLER_PORT, dataDir, nodes: 3, heapMb: 384, startTimeoutMs: 180_000, sasl: { username: USER, password: PASSWORD }, tls: true };
    brokerArgs = ['--nodes', '3', '--tls', '--port', String(PORT), '--controller-port', String(CONTROLLER_PORT), '--data-dir', dataDir, '--set', 'localBroker.heapMb=384', '--set', 'localBroker.startTimeoutMs=180000'];
    const started = await cli(['broker', 'start', ...brokerArgs], brokerEnv, 240_000);
    expect(started.code, started.output).toBe(0);
    bootstrap = started.stdout.trim().split('\n').at(-1)!;
    expect(bootstrap).toBe('127.0.0.1:19330,127.0.0.1:19331,127.0.0.1:19332');
    expect(started.stdout).toContain('sasl (SCRAM-SHA-256): 127.0.0.1:19333,127.0.0.1:19334,127.0.0.1:19335');
    saslBootstrap = '127.0.0.1:19333,127.0.0.1:19334,127.0.0.1:19335';
    expect(started.stdout).toContain(`tls (CA ${join(dataDir, 'tls', 'ca.pem')}): 127.0.0.1:19336,127.0.0.1:19337,127.0.0.1:19338`);
    kafka = new Kafka({ clientId: 'broker-cluster-test', brokers: bootstrap.split(','), logLevel: logLevel.NOTHING });
    admin = kafka.admin();
    await admin.connect();
  }, 300_000);

  afterAll(async () => {
    await admin?.disconnect();
    if (broker) await stopLocalKafka(broker);
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  async function status(): Promise<LocalKafkaStatus> {
    const result = await cli(['broker', 'status', '--json', ...brokerArgs], brokerEnv);
    return JSON.parse(result.stdout) as LocalKafkaStatus;
  }

  it('`broker status --json` lists three running, ready brokers', async () => {
    const s = await status();
    expect(s.bootstrap).toBe(bootstrap);
    expect(s.saslBootstrap).toBe(saslBootstrap);
    expect(s.tlsBootstrap).toBe('127.0.0.1:19336,127.0.0.1:19337,127.0.0.1:19338');
    expect(s.caFile).toBe(join(dataDir, 'tls', 'ca.pem'));
    expect(s.brokers.map(({ id, port, saslPort, tlsPort, controllerPort, running, ready }) => ({ id, port, saslPort, tlsPort, controllerPort, running, ready }))).toEqual([
      { id: 1, port: 19330, saslPort: 19333, tlsPort: 19336, controllerPort: 19340, running: true, ready: true },
      { id: 2, port: 19331, saslPort: 19334, tlsPort: 19337, controllerPort: 19341, running: true, ready: true },
      { id: 3, port: 19332, saslPort: 19335, tlsPort: 19338, controllerPort: 19342, running: true, ready: true },
    ]);
    expect(new Set(s.brokers.map((b) => b.pid)).size).toBe(3);
    const { brokers } = await admin.describeCluster();
    expect(brokers.map((b) => b.nodeId).sort()).toEqual([1, 2, 3]);
  });

  it('replicates new topics 3 times with min ISR 2 by default', async () => {
    const topic = `cluster-defaults-${Date.now()}`;
    await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: false });
    await waitForTopicLeaders(admin, [topic]);
    const metadata = await settled(() => admin.fetchTopicMetadata({ topics: [topic] }));
    for (const p of metadata.topics[0]!.partitions) expect(p.replicas).toHaveLength(3);
    const configs = await settled(() =>
      admin.describeConfigs({ includeSynonyms: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['min.insync.replicas'] }] }),
    );
    expect(configs.resources[0]!.configEntries.find((e) => e.configName === 'min.insync.replicas')?.configValue).toBe('2');
  });

  describe('SASL/SCRAM', () => {
    it('`modestream produce` and `run` with the right password: pairs are consumed and stored', async () => {
      const deployment = testDeployment(saslBootstrap, { ...sasl(PASSWORD), MODESTREAM_TOPICS__REPLICATION_FACTOR: '3' });
      const pairs = makePairs(200, { seed: 7, prefix: 'sasl' });
      const file = join(dataDir, 'pairs.jsonl');
      await writeFile(file, pairs.map((p) => p.value.toString()).join('\n') + '\n');
      let processor: Processor | undefined;
      try {
        processor = await startProcessor(deployment);
        const produced = await cli(['produce', file, '--no-progress'], deployment.env);
        expect(produced.code, produced.output).toBe(0);
        expect(produced.stdout).toContain(`produced ${pairs.length} messages`);
        await waitFor('the router group committed every pair', async () => (await committed(admin, deployment.groups.router, deployment.topics.pairs)) === pairs.length, { timeoutMs: 120_000 });
        await stopProcessor(processor);
        processor = undefined;
        const env = openStateEnv({ dir: deployment.stateDir, readOnly: true });
        try {
          expect(createShardStore({ env, reservoirSize: 0 }).totalRecords()).toBe(pairs.length);
        } finally {
          await env.close();
        }
        // status over SASL, with Kafka figures (exit 0), then with a wrong password (refused).
        const ok = await cli(['status', '--json'], deployment.env);
        expect(ok.code, ok.output).toBe(0);
        expect(JSON.parse(ok.stdout).kafkaError).toBeUndefined();
        const refused = await cli(['status', '--json'], { ...deployment.env, ...sasl(WRONG) });
        expectRefused(refused);
      } finally {
        await stopProcessor(processor);
        await rm(deployment.stateDir, { recursive: true, force: true });
      }
    });

    it('a wrong password: `run` and `produce` exit non-zero with one clear line, and nothing is consumed', async () => {
      const deployment = testDeployment(saslBootstrap, sasl(WRONG));
      // Something to consume, written over PLAINTEXT: a process that got in would route it.
      await admin.createTopics({ topics: [{ topic: deployment.topics.pairs, numPartitions: 2 }], waitForLeaders: false });
    await waitForTopicLeaders(admin, [deployment.topics.pairs]);
      const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
      await producer.connect();
      await producer.send({ topic: deployment.topics.pairs, acks: -1, messages: makePairs(50, { seed: 8 }).map(({ key, value }) => ({ key, value })) });
      await producer.disconnect();
      try {
        const run = await cli(['run'], deployment.env, 60_000);
        expectRefused(run);
        const file = join(dataDir, 'one.jsonl');
        await writeFile(file, `${makePairs(1, { seed: 9 })[0]!.value.toString()}\n`);
        const high = async () => (await admin.fetchTopicOffsets(deployment.topics.pairs)).reduce((sum, p) => sum + Number(p.high), 0);
        const before = await high();
        expectRefused(await cli(['produce', file, '--no-progress'], deployment.env, 60_000));
        expect(await high()).toBe(before);

        expect(await committed(admin, deployment.groups.router, deployment.topics.pairs)).toBe(0);
        const topics = await admin.listTopics();
        expect(topics).not.toContain(deployment.topics.routed);
      } finally {
        await rm(deployment.stateDir, { recursive: true, force: true });
      }
    });
  });

  it('TLS: `modestream produce` trusts the CA of kafka.ssl.caFile; without it the self-signed chain is refused', async () => {
    const status = await localKafkaStatus(broker);
    const deployment = testDeployment(status.tlsBootstrap!, { MODESTREAM_KAFKA__SSL__CA_FILE: status.caFile! });
    try {
      const file = join(dataDir, 'tls-pairs.jsonl');
      const pairs = makePairs(20, { seed: 10 });
      await writeFile(file, pairs.map((p) => `${p.value.toString()}\n`).join(''));
      const produced = await cli(['produce', file, '--no-progress'], deployment.env);
      expect(produced.code, produced.output).toBe(0);
      expect(produced.stdout).toContain(`produced ${pairs.length} messages`);
      const offsets = await admin.fetchTopicOffsets(deployment.topics.pairs);
      expect(offsets.reduce((sum, p) => sum + Number(p.high), 0)).toBeGreaterThanOrEqual(pairs.length);

      const untrusting = new Kafka({ brokers: status.tlsBootstrap!.split(','), ssl: true, logLevel: logLevel.NOTHING, retry: { retries: 0 } }).admin();
      await expect(untrusting.connect()).rejects.toThrow(/self-signed certificate/);
    } finally {
      await rm(deployment.stateDir, { recursive: true, force: true });
    }
  });

  it('survives a SIGKILLed partition leader; `broker start` restarts only that node, which rejoins the ISR', async () => {
    const topic = `cluster-failover-${Date.now()}`;
    await admin.createTopics({ topics: [{ topic, numPartitions: 6, replicationFactor: 3 }], waitForLeaders: false });
    await waitForTopicLeaders(admin, [topic]);
    const leaders = (await settled(() => admin.fetchTopicMetadata({ topics: [topic] }))).topics[0]!.partitions.map((p) => p.leader);
    const victim = [1, 2, 3].sort((a, b) => leaders.filter((l) => l === b).length - leaders.filter((l) => l === a).length)[0]!;
    const before = await localKafkaStatus(broker);

    const killed = await killLocalKafkaNode(broker, victim);
    expect(killed).toBe(before.brokers.find((b) => b.id === victim)!.pid);
    const during = await status();
    expect(during.brokers.find((b) => b.id === victim)).toMatchObject({ running: false, ready: false });

    // acks=all with min ISR 2: two live replicas of three still take writes.
    // Until the controller fences the dead broker (broker.session.timeout.ms, 9 s) its partitions keep it as
    // leader: clients retry for up to a minute, as the stages do (streams/kafka.ts).
    const retry = { initialRetryTime: 300, maxRetryTime: 2_000, retries: 30 };
    const client = new Kafka({ clientId: 'broker-cluster-failover', brokers: bootstrap.split(','), logLevel: logLevel.NOTHING, retry });
    const producer = client.producer({ createPartitioner: Partitioners.DefaultPartitioner, retry });
    await producer.connect();
    const sent = Array.from({ length: 60 }, (_, i) => ({ key: `k${i}`, value: `v${i}` }));
    await producer.send({ topic, acks: -1, messages: sent });
    await producer.disconnect();
    const received = await consume(client, topic, sent.length);
    expect(received.sort()).toEqual(sent.map((m) => m.value).sort());

    const restarted = await cli(['broker', 'start', ...brokerArgs], brokerEnv, 240_000);
    expect(restarted.code, restarted.output).toBe(0);
    for (const b of before.brokers) {
      if (b.id === victim) expect(restarted.stdout).toMatch(new RegExp(`node ${b.id}: started \\(pid \\d+\\)`));
      else expect(restarted.stdout).toContain(`node ${b.id}: already running (pid ${b.pid})`);
    }
    expect(restarted.stdout.trim().split('\n').at(-1)).toBe(bootstrap);
    await waitFor(`node ${victim} back in the ISR of every partition`, async () => {
      const partitions = (await admin.fetchTopicMetadata({ topics: [topic] })).topics[0]!.partitions;
      return partitions.every((p) => p.isr.includes(victim));
    }, { timeoutMs: 90_000, intervalMs: 500 });
    const after = await status();
    expect(after.brokers.every((b) => b.running && b.ready)).toBe(true);
  });

  it('`broker stop` stops every node', async () => {
    const before = await localKafkaStatus(broker);
    await admin.disconnect();
    // No --nodes: stop follows the data dir's own node count.
    const stopped = await cli(['broker', 'stop', '--data-dir', dataDir], {}, 120_000);
    expect(stopped.code, stopped.output).toBe(0);
    for (const b of before.brokers) expect(stopped.stdout).toContain(`node ${b.id}: stopped (pid ${b.pid})`);
    const result = await cli(['broker', 'status', '--json', ...brokerArgs], brokerEnv);
    expect(result.code).toBe(3);
    const after = JSON.parse(result.stdout) as LocalKafkaStatus;
    expect(after.brokers.map((b) => [b.running, b.pid])).toEqual([[false, undefined], [false, undefined], [false, undefined]]);
    for (const b of before.brokers) expect(alive(b.pid!)).toBe(false);

    // The data dir keeps its node count: one node on it is refused before any JVM starts.
    const single = await cli(['broker', 'start', '--data-dir', dataDir, '--port', String(PORT)], brokerEnv);
    expect(single.code, single.output).toBe(2);
    expect(single.output).toContain(`the Kafka data dir ${dataDir} holds a 3-node cluster, not 1: use --nodes 3`);
  });
});

/**
 * A new topic reaches each broker's metadata cache a moment after createTopics returns (kafkajs waits on
 * one broker); a request meanwhile may meet "does not host this topic-partition".
 */
async function settled<T>(request: () => Promise<T>): Promise<T> {
  let result: T | undefined;
  await waitFor('the new topic on every broker', async () => ((result = await request()), true), { timeoutMs: 30_000 });
  return result!;
}

function sasl(password: string): Record<string, string> {
  return { MODESTREAM_KAFKA__SASL__MECHANISM: 'scram-sha-256', MODESTREAM_KAFKA__SASL__USERNAME: USER, MODESTREAM_KAFKA__SASL__PASSWORD: password };
}

/** Exit code 2 and one `modestream:` line naming brokers, mechanism and user, never the password. */
function expectRefused(result: { code: number | null; output: string }): void {
  expect(result.code, result.output).toBe(2);
  const lines = result.output.split('\n').filter((l) => l.startsWith('modestream: '));
  expect(lines, result.output).toHaveLength(1);
  expect(lines[0]).toContain('Kafka at 127.0.0.1:19333,127.0.0.1:19334,127.0.0.1:19335 refused SASL SCRAM-SHA-256 for user "alice"');
  expect(result.output).not.toContain(WRONG);
}

async function committed(admin: Admin, groupId: string, topic: string): Promise<number> {
  const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
  return (offsets?.partitions ?? []).reduce((sum, p) => sum + Math.max(0, Number(p.offset)), 0);
}

async function consume(kafka: Kafka, topic: string, count: number): Promise<string[]> {
  const consumer = kafka.consumer({ groupId: `${topic}-reader`, sessionTimeout: 6_000, heartbeatInterval: 1_000, retry: { initialRetryTime: 300, maxRetryTime: 2_000, retries: 30 } });
  const values: string[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => void values.push(message.value!.toString()) });
    await waitFor(`${count} messages from ${topic}`, () => values.length >= count, { timeoutMs: 90_000 });
  } finally {
    await consumer.disconnect();
  }
  return values;
}

/** A zombie counts as gone: the brokers were spawned detached by CLI processes that have exited. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}
