/**
 * A paced producer of synthetic pairs, run as its own process by the pipeline benchmark so that its CPU
 * and memory are not counted as the pipeline's. Usage:
 *   node dist/bench/feed.js --brokers 127.0.0.1:9092 --topic T --rate 5000 --seconds 300
 */
import { parseArgs } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import { createSyntheticFeed } from './synthetic.js';

const { values } = parseArgs({
  options: { brokers: { type: 'string' }, topic: { type: 'string' }, rate: { type: 'string', default: '5000' }, seconds: { type: 'string', default: '300' }, prefix: { type: 'string', default: 'soak' } },
});
if (!values.brokers || !values.topic) throw new Error('--brokers and --topic are required');
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const kafka = new Kafka({ brokers: values.brokers.split(','), logLevel: logLevel.ERROR });
const producer = kafka.producer();
await producer.connect();
const feed = createSyntheticFeed(99, values.prefix);
const started = performance.now();
const perTick = Math.max(1, Math.round(rate / 20));
let sent = 0;
while (performance.now() - started < seconds * 1000) {
  const messages = Array.from({ length: perTick }, () => feed.next());
  await producer.send({ topic: values.topic, messages, acks: -1 });
  sent += messages.length;
  // Keep to the schedule (sent/rate), not to per-batch sleeps.
  const wait = started + (sent / rate) * 1000 - performance.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
}
await producer.disconnect();
process.stdout.write(`${JSON.stringify({ sent, seconds: (performance.now() - started) / 1000 })}\n`);
