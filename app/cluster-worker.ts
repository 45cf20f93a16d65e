/**
 * Clustering in a worker thread. k-means on tens of thousands of embeddings takes seconds to minutes of
 * CPU; on the ingest event loop it would starve the stages' heartbeats and stall the stream. The thread
 * activates its own tensor backend, clusters, and posts the model back.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { clusterSample, type ClusterSampleOptions } from '../src/cluster/bootstrap.js';
import type { CentroidModel } from '../src/cluster/model.js';
import type { Backend } from '../src/config.js';
import { errorMessage } from '../src/errors.js';
import { initBackend } from '../src/tensor/backend.js';

export type ClusterJob = { options: Omit<ClusterSampleOptions, 'sample'> & { sample: Float32Array[] }; backend: Backend };
export type ClusterReply = { ok: true; model: CentroidModel } | { ok: false; error: string };

const job = workerData as ClusterJob;
try {
  await initBackend(job.backend);
  const model = await clusterSample(job.options);
  parentPort!.postMessage({ ok: true, model } satisfies ClusterReply);
} catch (err) {
  parentPort!.postMessage({ ok: false, error: errorMessage(err) } satisfies ClusterReply);
}
