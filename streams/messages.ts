/**
 * The Kafka message as the stages see it, detached from kafkajs's batch objects, and the dead-letter
 * form of one: original key and value bytes, original headers, plus the reason and the source
 * coordinates as headers (so `kcat -C -t modestream.pairs.dlq -f '%h %s'` shows why).
 */
import type { IHeaders, KafkaMessage, Message } from 'kafkajs';

export interface InputMessage {
  topic: string;
  partition: number;
  offset: string;
  timestamp: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: IHeaders;
}

export function toInputMessage(topic: string, partition: number, m: KafkaMessage): InputMessage {
  return { topic, partition, offset: m.offset, timestamp: m.timestamp, key: m.key, value: m.value, headers: m.headers ?? {} };
}

export const DLQ_HEADERS = {
  reason: 'modestream.error.reason',
  detail: 'modestream.error.detail',
  topic: 'modestream.source.topic',
  partition: 'modestream.source.partition',
  offset: 'modestream.source.offset',
  timestamp: 'modestream.source.timestamp',
  failedAt: 'modestream.failed.at',
} as const;

export function deadLetter(message: InputMessage, reason: string, detail: string, now = Date.now()): Message {
  return {
    key: message.key,
    value: message.value,
    headers: {
      ...message.headers,
      [DLQ_HEADERS.reason]: reason,
      [DLQ_HEADERS.detail]: detail,
      [DLQ_HEADERS.topic]: message.topic,
      [DLQ_HEADERS.partition]: String(message.partition),
      [DLQ_HEADERS.offset]: message.offset,
      [DLQ_HEADERS.timestamp]: message.timestamp,
      [DLQ_HEADERS.failedAt]: new Date(now).toISOString(),
    },
  };
}
