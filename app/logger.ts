/** Structured JSON logs on stderr (stdout stays for command output such as `status --json`). */
import { pino } from 'pino';
import type { Config } from '../src/config.js';
import type { Logger } from '../src/logger.js';

export function createLogger(config: Pick<Config, 'log'>, name = 'modestream', bindings: Record<string, unknown> = {}): Logger {
  return pino({ name, level: config.log.level, base: { pid: process.pid, ...bindings } }, pino.destination(2)) as unknown as Logger;
}
