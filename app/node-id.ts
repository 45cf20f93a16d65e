/** This node's id: `node.id`, or one derived from the host and the state dir, stable across restarts. */
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import type { Config } from '../src/config.js';

export function nodeIdOf(config: Pick<Config, 'node' | 'stateDir'>): string {
  if (config.node.id) return config.node.id;
  // Two nodes on one host differ by state dir; the hash keeps the id short and a valid key.
  const dir = createHash('sha256').update(resolve(config.stateDir)).digest('hex').slice(0, 8);
  const host = hostname().replace(/[^a-zA-Z0-9._-]/g, '-').slice(0, 48);
  return `${host}-${dir}`;
}
