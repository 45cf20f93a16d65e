/**
 * Named checks on kafkajs errors, so stages decide retry / rejoin / give up by kind, not by message.
 */
const REBALANCE_TYPES = new Set([
  'REBALANCE_IN_PROGRESS',
  'UNKNOWN_MEMBER_ID',
  'ILLEGAL_GENERATION',
  'NOT_COORDINATOR',
  'COORDINATOR_NOT_AVAILABLE',
  'FENCED_INSTANCE_ID',
]);

interface KafkaJsLikeError {
  name?: string;
  type?: string;
  retriable?: boolean;
  cause?: unknown;
  originalError?: unknown;
}

/** Walks kafkajs's wrappers (KafkaJSNumberOfRetriesExceeded keeps the real error as `cause`/`originalError`). */
function chain(err: unknown): KafkaJsLikeError[] {
  const out: KafkaJsLikeError[] = [];
  let cur: unknown = err;
  for (let depth = 0; cur && typeof cur === 'object' && depth < 5; depth++) {
    const e = cur as KafkaJsLikeError;
    out.push(e);
    cur = e.cause ?? e.originalError;
  }
  return out;
}

/** The group moved on (rebalance, member expired): the partition's work is someone else's now. */
export function isRebalanceError(err: unknown): boolean {
  return chain(err).some((e) => (e.type !== undefined && REBALANCE_TYPES.has(e.type)) || e.name === 'KafkaJSRebalanceInProgress');
}

/** A failure kafkajs itself marks retriable (connection lost, leader moved, timeout). */
export function isRetriableKafkaError(err: unknown): boolean {
  return chain(err).some((e) => e.retriable === true || e.name === 'KafkaJSConnectionError' || e.name === 'KafkaJSRequestTimeoutError');
}

/** The broker refused our SASL credentials (kafkajs does not retry these). */
export function isAuthenticationError(err: unknown): boolean {
  return chain(err).some((e) => e.name === 'KafkaJSSASLAuthenticationError' || e.type === 'SASL_AUTHENTICATION_FAILED');
}

const FENCED_TYPES = new Set(['INVALID_PRODUCER_EPOCH', 'PRODUCER_FENCED', 'INVALID_PRODUCER_ID_MAPPING']);

/** Another producer with our transactional id started (a newer incarnation of this node's router): we are a zombie. */
export function isFencedError(err: unknown): boolean {
  return chain(err).some((e) => e.type !== undefined && FENCED_TYPES.has(e.type));
}
