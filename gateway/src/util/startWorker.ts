import { Worker, type WorkerOptions } from 'node:worker_threads';

/** Starts a worker thread running the TypeScript module at `entry` (see tsWorkerBoot.mjs). */
export function startWorker(entry: URL, data: object = {}, opts: WorkerOptions = {}): Worker {
  return new Worker(new URL('./tsWorkerBoot.mjs', import.meta.url), {
    ...opts,
    workerData: { ...data, __entry: entry.href },
  });
}
