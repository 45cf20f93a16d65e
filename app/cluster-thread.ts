/** Runs one clustering job in a worker thread (see cluster-worker.ts) and resolves with its model. */
import { Worker } from 'node:worker_threads';
import type { ClusterSampleOptions } from '../src/cluster/bootstrap.js';
import { ClusteringError } from '../src/cluster/errors.js';
import type { CentroidModel } from '../src/cluster/model.js';
import type { Backend } from '../src/config.js';
import type { ClusterJob, ClusterReply } from './cluster-worker.js';

const WORKER_URL = new URL('./cluster-worker.js', import.meta.url);

export function clusterInThread(options: ClusterSampleOptions, backend: Backend): Promise<CentroidModel> {
  return new Promise((resolve, reject) => {
    const job: ClusterJob = { options: { ...options, sample: [...options.sample] }, backend };
    const worker = new Worker(WORKER_URL, { workerData: job });
    let settled = false;
    worker.once('message', (reply: ClusterReply) => {
      settled = true;
      if (reply.ok) resolve(reply.model);
      else reject(new ClusteringError('parameter', reply.error));
    });
    worker.once('error', (err) => {
      settled = true;
      reject(err);
    });
    worker.once('exit', (code) => {
      if (!settled) reject(new Error(`clustering thread exited with code ${code} before answering`));
    });
  });
}
