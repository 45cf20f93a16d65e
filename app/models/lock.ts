/**
 * One pull per model at a time: two would write the same `<name>.partial` directory. The lock file
 * holds the owner's pid so that a lock left by a killed process is taken over instead of blocking forever.
 */
import { open, readFile, rm } from 'node:fs/promises';
import { StateError } from '../../src/errors.js';

export async function acquireLock(path: string, what: string): Promise<() => Promise<void>> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(path, 'wx');
      await handle.writeFile(`${process.pid}\n`);
      await handle.close();
      return () => rm(path, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number((await readFile(path, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
        throw new StateError(`${what} is being pulled by process ${pid} (lock ${path}); wait for it or remove the lock if that process is gone`);
      }
      await rm(path, { force: true });
    }
  }
  throw new StateError(`cannot take the lock ${path}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
