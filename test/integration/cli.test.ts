/**
 * The CLI as users meet it: --help everywhere, one-line errors with exit code 2 for bad flags, env and
 * config files, and `produce` feeding a topic from a file and from stdin.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, describe, expect, inject, test } from 'vitest';
import { Role } from '../../src/config.js';
import { makePairs } from '../support/fixtures.js';
import { CLI, ROOT, cli, testDeployment } from '../support/processor.js';
import { waitFor } from '../support/waits.js';

const brokers = inject('brokers');
const tmp = mkdtempSync(join(tmpdir(), 'modestream-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('modestream CLI', () => {
  test.each([[], ['broker'], ['broker', 'start'], ['run'], ['produce'], ['status'], ['bootstrap']])('%j --help exits 0 with usage', async (...args) => {
    const { code, stdout } = await cli([...args, '--help'], {});
    expect(code).toBe(0);
    expect(stdout).toMatch(/^Usage: modestream/);
  });

  test('run --help names every role there is', async () => {
    const { stdout } = await cli(['run', '--help'], {});
    expect(stdout.replace(/\s+/g, ' ')).toContain(`comma-separated: ${Role.options.join(',')}`);
    expect(Role.options).toContain('trainer');
  });

  test.each<{ args: string[]; env: Record<string, string>; mentions: string }>([
    { args: ['status', '--set', 'clustering.fine=abc'], env: {}, mentions: 'clustering.fine' },
    { args: ['--brokers', 'nohost', 'status'], env: {}, mentions: 'kafka.brokers' },
    { args: ['status'], env: { MODESTREAM_TOPICS__PAIRS: 'bad topic!' }, mentions: 'MODESTREAM_TOPICS__PAIRS' },
    { args: ['status'], env: { MODESTREAM_KAFKA__SESION_TIMEOUT_MS: '5' }, mentions: 'sesionTimeoutMs' },
    { args: ['run', '--roles', 'router,cook'], env: {}, mentions: 'roles.1' },
    { args: ['broker', 'start', '--port', 'x'], env: {}, mentions: '--port' },
    { args: ['nonsense'], env: {}, mentions: "unknown command 'nonsense'" },
  ])('bad input $args $env exits 2 naming $mentions', async ({ args, env, mentions }) => {
    const { code, output } = await cli(args, env);
    expect(code).toBe(2);
    expect(output).toContain(mentions);
    expect(output).not.toMatch(/\n\s+at /); // no stack trace
  });

  test('a config file with a wrong value or unknown key exits 2 naming the key and the file', async () => {
    const file = join(tmp, 'bad.json');
    writeFileSync(file, JSON.stringify({ clustering: { experts: 0 }, kafka: { brokerz: ['a:1'] } }));
    const { code, output } = await cli(['--config', file, 'status'], {});
    expect(code).toBe(2);
    expect(output).toContain('clustering.experts');
    expect(output).toContain('brokerz');
    expect(output).toContain('bad.json');
    writeFileSync(file, '{ not json');
    const second = await cli(['--config', file, 'status'], {});
    expect(second.code).toBe(2);
    expect(second.output).toContain('not valid JSON');
  });

  test('run with the default embedder and no pulled model refuses with the command to run, exit 2', async () => {
    const deployment = testDeployment(brokers, { MODESTREAM_MODELS_DIR: join(tmp, 'no-models') });
    const { MODESTREAM_EMBEDDER__KIND: _hashed, ...env } = deployment.env;
    const { code, output } = await cli(['run'], env);
    expect(code).toBe(2);
    expect(output).toContain('modestream models pull minilm-l6');
    expect(output).not.toMatch(/\n\s+at /);
  });

  test('status on a state dir that does not exist says so and exits 1', async () => {
    const { code, output } = await cli(['status', '--state-dir', join(tmp, 'nothing-here')], {});
    expect(code).toBe(1);
    expect(output).toContain('no modestream state');
  });

  test('produce sends every line of a file and of stdin, keyed by the pair id', async () => {
    const deployment = testDeployment(brokers);
    const fromFile = makePairs(300, { prefix: 'file' });
    const fromStdin = makePairs(200, { prefix: 'stdin' });
    const file = join(tmp, 'pairs.jsonl');
    writeFileSync(file, `${fromFile.map((p) => p.value.toString()).join('\n')}\n\nnot json\n`);
    const fileRun = await cli(['produce', file, '--rate', '2000'], deployment.env);
    expect(fileRun.code, fileRun.output).toBe(0);
    expect(fileRun.stdout).toContain('produced 301 messages');

    const child = spawn(process.execPath, [CLI, 'produce', '-'], { cwd: ROOT, env: { ...process.env, ...deployment.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdin.end(fromStdin.map((p) => p.value.toString()).join('\r\n'));
    const code = await new Promise((r) => child.once('exit', r));
    expect(code).toBe(0);

    const kafka = new Kafka({ brokers: brokers.split(','), logLevel: logLevel.NOTHING });
    const consumer = kafka.consumer({ groupId: `cli-test-${Date.now()}` });
    const seen = new Map<string, string | null>();
    await consumer.connect();
    await consumer.subscribe({ topics: [deployment.topics.pairs], fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => void seen.set(message.value!.toString(), message.key?.toString() ?? null) });
    try {
      await waitFor('all produced messages', () => seen.size === 501, { timeoutMs: 30_000 });
    } finally {
      await consumer.disconnect();
    }
    for (const p of [...fromFile, ...fromStdin]) expect(seen.get(p.value.toString())).toBe(p.id);
    expect(seen.get('not json')).toBeNull();
    rmSync(deployment.stateDir, { recursive: true, force: true });
  });
});
