/**
 * Typed errors. Every failure says whether retrying can help, so callers decide retry / skip / stop
 * from the type instead of parsing messages. `cause` keeps the original error for logs.
 */
export class ModestreamError extends Error {
  readonly retriable: boolean;
  constructor(message: string, options: { cause?: unknown; retriable?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.retriable = options.retriable ?? false;
  }
}

/** Bad configuration or command-line input. The CLI prints the message alone and exits with code 2. */
export class ConfigError extends ModestreamError {}

/** The broker refused our credentials: a configuration problem, never retried (exit code 2, one line). */
export class AuthenticationError extends ConfigError {}

/** A component the command needs (Java, Maven, a model file, a GPU...) is missing or unusable. */
export class EnvironmentError extends ModestreamError {}

/** Stored state (LMDB record, checkpoint, snapshot file) is missing or corrupt. */
export class StateError extends ModestreamError {}

/** A transient outside failure (broker unreachable, timeout): retrying later may succeed. */
export class TransientError extends ModestreamError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { ...options, retriable: true });
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
