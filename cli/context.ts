/**
 * Turns the command line into a validated Config and a logger: defaults < config file < MODESTREAM_*
 * environment < flags. This is the only place that reads the config file and the environment.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { assignmentsLayer, envLayer, parseAssignment, resolveConfig, type Config, type ConfigLayer } from '../src/config.js';
import { ConfigError } from '../src/errors.js';
export { createLogger } from '../app/logger.js';

export interface GlobalOptions {
  config?: string;
  set?: string[];
  brokers?: string;
  stateDir?: string;
  logLevel?: string;
}

const DEFAULT_CONFIG_FILE = 'modestream.config.json';

/** Flags every command shares, as config paths. */
function flagLayer(global: GlobalOptions, commandFlags: Record<string, unknown>): ConfigLayer {
  const assignments: Record<string, unknown> = { ...commandFlags };
  if (global.brokers !== undefined) assignments['kafka.brokers'] = global.brokers;
  if (global.stateDir !== undefined) assignments['stateDir'] = global.stateDir;
  if (global.logLevel !== undefined) assignments['log.level'] = global.logLevel;
  for (const text of global.set ?? []) {
    const [path, value] = parseAssignment(text);
    assignments[path] = value;
  }
  return assignmentsLayer('flag', assignments);
}

function fileLayer(path: string | undefined, env: NodeJS.ProcessEnv): ConfigLayer[] {
  const explicit = path ?? env.MODESTREAM_CONFIG;
  const file = explicit ?? (existsSync(DEFAULT_CONFIG_FILE) ? DEFAULT_CONFIG_FILE : undefined);
  if (!file) return [];
  const full = resolve(file);
  let text: string;
  try {
    text = readFileSync(full, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${full}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
  let values: unknown;
  try {
    values = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`config file ${full} is not valid JSON: ${(err as Error).message}`);
  }
  if (values === null || typeof values !== 'object' || Array.isArray(values)) {
    throw new ConfigError(`config file ${full} must hold a JSON object`);
  }
  return [{ origin: `config file ${file}`, values: values as Record<string, unknown> }];
}

export interface LoadOptions {
  /** Command-specific defaults under every other layer (one-shot commands log warnings only unless asked). */
  defaults?: Record<string, unknown>;
  env?: NodeJS.ProcessEnv;
}

export function loadConfig(global: GlobalOptions, commandFlags: Record<string, unknown> = {}, { defaults, env = process.env }: LoadOptions = {}): Config {
  const base: ConfigLayer[] = defaults ? [{ origin: 'command defaults', values: defaults }] : [];
  return resolveConfig([...base, ...fileLayer(global.config, env), envLayer(env), flagLayer(global, commandFlags)]);
}

/** One-shot commands print their own results; their logs stay quiet unless log.level says otherwise. */
export const QUIET = { defaults: { log: { level: 'warn' } } };
