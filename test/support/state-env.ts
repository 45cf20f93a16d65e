/** Fresh LMDB environments in temp dirs for in-process store tests, closed and removed after each test. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { openStateEnv, type StateEnv } from '../../state/env.js';

export function freshStateEnvs(prefix: string): () => StateEnv {
  const dirs: string[] = [];
  const envs: StateEnv[] = [];
  afterEach(async () => {
    for (const env of envs.splice(0)) await env.close();
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  return () => {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    dirs.push(dir);
    const env = openStateEnv({ dir });
    envs.push(env);
    return env;
  };
}
