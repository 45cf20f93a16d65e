/**
 * The local Kafka's TLS material, made once with Java's keytool (no openssl needed): a self-signed CA and
 * one PKCS12 keystore for every node (all on 127.0.0.1), its certificate signed by that CA for
 * IP:127.0.0.1 and DNS:localhost. Clients trust <dataDir>/tls/ca.pem (kafka.ssl.caFile).
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { EnvironmentError } from '../../src/errors.js';
import type { Logger } from '../../src/logger.js';
import { LOG_TAIL_LINES, lastLines, runToCompletion } from './environment.js';

export interface TlsFiles {
  dir: string;
  /** The CA certificate (PEM) clients trust. */
  caFile: string;
  /** The nodes' PKCS12 keystore (key, certificate, CA chain). */
  keystore: string;
  keystorePassword: string;
}

const VALIDITY_DAYS = '3650';

export function tlsPaths(dataDir: string): { dir: string; caFile: string; keystore: string; passwordFile: string } {
  const dir = join(dataDir, 'tls');
  return { dir, caFile: join(dir, 'ca.pem'), keystore: join(dir, 'broker.p12'), passwordFile: join(dir, 'keystore-password') };
}

/** The TLS files of a data dir, made on first use. */
export async function ensureTlsFiles(o: { dataDir: string; java: string; env: NodeJS.ProcessEnv; logger: Logger }): Promise<TlsFiles> {
  const paths = tlsPaths(o.dataDir);
  if (existsSync(paths.keystore) && existsSync(paths.caFile) && existsSync(paths.passwordFile)) {
    return { dir: paths.dir, caFile: paths.caFile, keystore: paths.keystore, keystorePassword: (await readFile(paths.passwordFile, 'utf8')).trim() };
  }
  o.logger.info({ dir: paths.dir }, 'making a CA and a keystore for the TLS listener (keytool, once)');
  // Made in a scratch dir and renamed into place: an interrupted run leaves no half-made keystore.
  const scratch = `${paths.dir}.tmp-${process.pid}`;
  await rm(scratch, { recursive: true, force: true });
  await mkdir(scratch, { recursive: true, mode: 0o700 });
  const password = randomBytes(18).toString('base64url');
  const keytool = join(dirname(o.java), 'keytool');
  const run = async (...args: string[]) => {
    const result = await runToCompletion({ command: keytool, args, env: o.env, cwd: scratch, timeoutMs: 120_000 });
    if (result.code !== 0) {
      throw new EnvironmentError(`keytool ${args[0]} failed (${result.reason}) making the local Kafka's TLS files:\n${lastLines(result.output.replaceAll(password, '***'), LOG_TAIL_LINES)}`);
    }
  };
  const ca = ['-keystore', 'ca.p12', '-storetype', 'PKCS12', '-storepass', password];
  const broker = ['-keystore', 'broker.p12', '-storetype', 'PKCS12', '-storepass', password];
  try {
    await run('-genkeypair', '-alias', 'ca', '-dname', 'CN=modestream local Kafka CA', '-ext', 'bc:c', '-keyalg', 'RSA', '-keysize', '2048', '-validity', VALIDITY_DAYS, ...ca);
    await run('-exportcert', '-rfc', '-alias', 'ca', '-file', 'ca.pem', ...ca);
    await run('-genkeypair', '-alias', 'broker', '-dname', 'CN=127.0.0.1', '-keyalg', 'RSA', '-keysize', '2048', '-validity', VALIDITY_DAYS, ...broker);
    await run('-certreq', '-alias', 'broker', '-file', 'broker.csr', ...broker);
    await run(
      '-gencert', '-alias', 'ca', '-infile', 'broker.csr', '-outfile', 'broker.pem', '-rfc', '-validity', VALIDITY_DAYS,
      '-ext', 'SAN=IP:127.0.0.1,DNS:localhost', '-ext', 'KU=digitalSignature,keyEncipherment', '-ext', 'EKU=serverAuth', ...ca,
    );
    await run('-importcert', '-noprompt', '-alias', 'ca', '-file', 'ca.pem', ...broker);
    await run('-importcert', '-alias', 'broker', '-file', 'broker.pem', ...broker);
    await rm(join(scratch, 'broker.csr'));
    // The broker reads the password from server.properties anyway; kept beside the keystore, owner-only.
    await writeFile(join(scratch, 'keystore-password'), `${password}\n`, { mode: 0o600 });
    for (const key of ['ca.p12', 'broker.p12']) await chmod(join(scratch, key), 0o600);
    await rm(paths.dir, { recursive: true, force: true });
    await rename(scratch, paths.dir);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  return { dir: paths.dir, caFile: paths.caFile, keystore: paths.keystore, keystorePassword: password };
}
