/**
 * Picks the TensorFlow.js backend at start-up, best first (ARCHITECTURE.md section 5):
 * tensorflow-gpu (@tensorflow/tfjs-node-gpu) > webgpu (Dawn through the `webgpu` package) >
 * tensorflow (@tensorflow/tfjs-node) > wasm > cpu. The native packages are optional: they cannot be
 * installed offline, so they are only tried when present.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { Backend } from '../config.js';
import { EnvironmentError, errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';

export interface BackendInfo {
  name: Exclude<Backend, 'auto'>;
  /** The tfjs backend id actually active (`tf.getBackend()`). */
  tfBackend: string;
  /** GPU adapter description where there is one. */
  adapter?: string;
  /** Why better backends were skipped, for logs and status. */
  skipped: string[];
}

const ORDER: Exclude<Backend, 'auto'>[] = ['tensorflow-gpu', 'webgpu', 'tensorflow', 'wasm', 'cpu'];

/** Imports a module whose name TypeScript must not resolve (optional packages may be absent). */
const importOptional = (name: string): Promise<unknown> => import(name);

type Attempt = { ok: true; tfBackend: string; adapter?: string } | { ok: false; reason: string };

async function tryBackend(name: Exclude<Backend, 'auto'>): Promise<Attempt> {
  try {
    switch (name) {
      case 'tensorflow-gpu':
      case 'tensorflow': {
        await importOptional(name === 'tensorflow-gpu' ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node');
        return (await tf.setBackend('tensorflow'))
          ? { ok: true, tfBackend: 'tensorflow' }
          : { ok: false, reason: 'tensorflow backend did not initialise' };
      }
      case 'webgpu': {
        const adapter = await installNodeWebGpu();
        if (!adapter.ok) return adapter;
        await import('@tensorflow/tfjs-backend-webgpu');
        return (await tf.setBackend('webgpu'))
          ? { ok: true, tfBackend: 'webgpu', adapter: adapter.adapter }
          : { ok: false, reason: 'webgpu backend did not initialise' };
      }
      case 'wasm': {
        await import('@tensorflow/tfjs-backend-wasm');
        return (await tf.setBackend('wasm'))
          ? { ok: true, tfBackend: 'wasm' }
          : { ok: false, reason: 'wasm backend did not initialise' };
      }
      case 'cpu':
        return (await tf.setBackend('cpu'))
          ? { ok: true, tfBackend: 'cpu' }
          : { ok: false, reason: 'cpu backend did not initialise' };
    }
  } catch (err) {
    return { ok: false, reason: errorMessage(err).split('\n')[0] ?? 'unknown error' };
  }
}

/**
 * Node 20 has no `navigator`: the WebGPU backend registers itself only when `navigator.gpu` exists at
 * import time, so the Dawn bindings are installed as globals first (docs/offline-gpu-host.md).
 */
async function installNodeWebGpu(): Promise<{ ok: true; adapter: string } | { ok: false; reason: string }> {
  // Without a Vulkan loader Dawn finds no adapter anyway, and says so loudly on stderr.
  if (!hasVulkanLoader()) return { ok: false, reason: 'no Vulkan loader (libvulkan.so.1) on this host' };
  let mod: { create: (flags: string[]) => unknown; globals: Record<string, unknown> };
  try {
    mod = (await importOptional('webgpu')) as typeof mod;
  } catch {
    return { ok: false, reason: 'the optional package "webgpu" is not installed' };
  }
  const gpu = mod.create([]) as { requestAdapter(): Promise<GpuAdapterLike | null> };
  const adapter = await gpu.requestAdapter();
  if (!adapter) return { ok: false, reason: 'no GPU adapter (Vulkan found no driver)' };
  const info = adapter.info ?? {};
  // A software adapter (SwiftShader, lavapipe) is slower than wasm: never use it, except when
  // MODESTREAM_WEBGPU_ALLOW_SOFTWARE=1 asks for it to check the WebGPU code path on a machine without a GPU.
  const software = adapter.isFallbackAdapter || /swiftshader|llvmpipe|lavapipe/i.test(`${info.vendor} ${info.device}`);
  if (software && process.env.MODESTREAM_WEBGPU_ALLOW_SOFTWARE !== '1') {
    return { ok: false, reason: `only a software GPU adapter (${info.vendor ?? '?'} ${info.device ?? ''})` };
  }
  Object.assign(globalThis, mod.globals);
  Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  return { ok: true, adapter: [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ') };
}

function hasVulkanLoader(): boolean {
  if (process.platform !== 'linux') return true;
  const dirs = [...(process.env.LD_LIBRARY_PATH ?? '').split(':'), '/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/lib/x86_64-linux-gnu', '/usr/local/lib'];
  return dirs.some((dir) => dir !== '' && existsSync(join(dir, 'libvulkan.so.1')));
}

interface GpuAdapterLike {
  isFallbackAdapter?: boolean;
  info?: { vendor?: string; architecture?: string; device?: string; description?: string };
}

/**
 * Activates the requested backend, or the best available one for 'auto'. A forced backend that cannot
 * start is an error (silently falling back to a CPU would hide a 30x slowdown).
 */
export async function initBackend(requested: Backend, logger?: Logger): Promise<BackendInfo> {
  const candidates = requested === 'auto' ? ORDER : [requested];
  const skipped: string[] = [];
  for (const name of candidates) {
    const attempt = await tryBackend(name);
    if (attempt.ok) {
      await tf.ready();
      const info: BackendInfo = { name, tfBackend: attempt.tfBackend, skipped };
      if (attempt.adapter) info.adapter = attempt.adapter;
      logger?.info({ backend: name, adapter: info.adapter, skipped }, 'tensor backend ready');
      return info;
    }
    skipped.push(`${name}: ${attempt.reason}`);
  }
  throw new EnvironmentError(`tensor backend "${requested}" is not available: ${skipped.join('; ')}`);
}
