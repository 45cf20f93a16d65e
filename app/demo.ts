/**
 * The whole story on one machine, for the README's first command: a local broker, a feed of
 * web-crawl-like pairs, routing and sharding, bootstrap of the centers from the stream, a status
 * printout and the status URL. Stays up until Ctrl-C unless `once`.
 */
import { Kafka, logLevel } from 'kafkajs';
import { localKafkaStatus, startLocalKafka, stopLocalKafka } from '../deploy/kafka/local-kafka.js';
import { createSyntheticFeed } from '../bench/synthetic.js';
import type { Config } from '../src/config.js';
import type { Logger } from '../src/logger.js';
import { collectStatus } from './status.js';
import { startApp } from './run.js';

export interface DemoOptions {
  config: Config;
  logger: Logger;
  pairs: number;
  once: boolean;
  out?: (line: string) => void;
}

export async function runDemo({ config, logger, pairs, once, out = (l) => process.stdout.write(`${l}\n`) }: DemoOptions): Promise<void> {
  const broker = { ...config.localBroker, logger };
  const wasRunning = (await localKafkaStatus(broker)).running;
  out(wasRunning ? `local Kafka already running on ${config.kafka.brokers.join(',')}` : 'starting a local Kafka broker (first start fetches its jars with Maven)...');
  const { bootstrap } = await startLocalKafka(broker);
  const demoConfig: Config = { ...config, kafka: { ...config.kafka, brokers: [bootstrap] } };

  const app = await startApp({ config: demoConfig, logger });
  out(`modestream running (backend ${app.backend.name}); status: ${app.httpUrl}/status.json, metrics: ${app.httpUrl}/metrics`);

  const kafka = new Kafka({ brokers: [bootstrap], logLevel: logLevel.ERROR });
  const producer = kafka.producer();
  await producer.connect();
  const feed = createSyntheticFeed(Date.now() % 100_000, `demo-${Date.now().toString(36)}`);
  const before = app.store.totalRecords();
  out(`feeding ${pairs} web-crawl-like pairs (captions + 28x28 images) into ${config.topics.pairs}...`);
  for (let sent = 0; sent < pairs; sent += 1000) {
    await producer.send({ topic: config.topics.pairs, acks: -1, messages: Array.from({ length: Math.min(1000, pairs - sent) }, () => feed.next()) });
  }
  await producer.disconnect();

  const started = Date.now();
  while (app.store.totalRecords() - before < pairs || app.store.unroutedCount() > 0) {
    if (Date.now() - started > 10 * 60_000) throw new Error('the demo feed was not fully stored within 10 minutes');
    await new Promise((r) => setTimeout(r, 500));
  }
  const report = await collectStatus({ config: demoConfig, store: app.store, centroids: app.centroids, models: app.models });
  const c = report.centroids;
  out(`stored ${report.totalRecords} pairs in ${report.experts.length} expert shards (${((Date.now() - started) / 1000).toFixed(1)} s after the feed)`);
  if (c) out(`centroid epoch ${c.epoch}: ${c.fine} fine clusters -> ${c.experts} experts, fine size cv ${c.fineSpread.cv.toFixed(2)}`);
  for (const e of report.experts) out(`  expert ${e.id}: ${e.records} records, ${e.fineClusters} fine clusters`);

  if (!once) {
    out(`\nrunning until Ctrl-C; try: curl ${app.httpUrl}/status.json`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
  }
  await app.stop();
  if (!wasRunning) await stopLocalKafka(broker);
}
