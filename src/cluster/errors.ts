import { ModestreamError } from '../errors.js';

/** Why a clustering input was refused; callers branch on this instead of parsing messages. */
export type ClusteringErrorReason =
  | 'shape'
  | 'parameter'
  | 'non-finite'
  | 'zero-vector'
  | 'too-few-points'
  | 'too-few-distinct';

/**
 * The data or parameters cannot be clustered as asked. Never retriable: the same input fails the same
 * way (the stream must grow or the configuration change first).
 */
export class ClusteringError extends ModestreamError {
  readonly reason: ClusteringErrorReason;
  constructor(reason: ClusteringErrorReason, message: string, options: { cause?: unknown } = {}) {
    super(message, { ...options, retriable: false });
    this.reason = reason;
  }
}
