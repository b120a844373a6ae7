/**
 * Worker-thread side of FacePool: one FaceEngine (own ONNX sessions, intra-op threads 1 by
 * default) per worker, one job at a time.
 *
 * Started by FacePool through util/startWorker.ts, which registers tsx inside the worker (on Node 20
 * a worker thread does not inherit the parent's tsx loader hooks, under `npx tsx` or vitest).
 *
 * Protocol (parent → worker): { type: 'analyze', id, jpeg: Uint8Array } | { type: 'close' }
 *           (worker → parent): { type: 'ready' } | { type: 'init_error', message }
 *                              | { type: 'result', id, result: FaceAnalysis } | { type: 'error', id, message }
 */
import os from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { FaceEngine, type FaceEngineOptions } from './faceEngine.ts';

export interface FaceWorkerData {
  modelsDir: string;
  engine: FaceEngineOptions;
  /** Nice value of this thread (Linux): face analysis yields the CPU to ingest under contention. */
  niceness?: number;
}

export type ToWorker = { type: 'analyze'; id: number; jpeg: Uint8Array } | { type: 'close' };

async function main(): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error('faceWorker must run in a worker thread');
  const data = workerData as FaceWorkerData;
  // On Linux a thread's nice value is its own (setpriority on the calling task), and threads it
  // starts inherit it; elsewhere it would renice the whole process, so it is left alone there.
  if (process.platform === 'linux' && data.niceness) {
    try { os.setPriority(0, data.niceness); } catch { /* not permitted: run at normal priority */ }
  }
  let engine: FaceEngine;
  try {
    engine = await FaceEngine.load(data.modelsDir, data.engine);
  } catch (err) {
    port.postMessage({ type: 'init_error', message: err instanceof Error ? err.message : String(err) });
    return;
  }
  port.on('message', (msg: ToWorker) => {
    if (msg.type === 'close') {
      void engine.close().finally(() => port.close());
      return;
    }
    const jpeg = Buffer.from(msg.jpeg.buffer, msg.jpeg.byteOffset, msg.jpeg.byteLength);
    engine.analyze(jpeg).then(
      (result) => {
        // Transfer the embedding's buffer instead of copying it.
        const transfer = result.ok ? [result.embedding.buffer as ArrayBuffer] : [];
        port.postMessage({ type: 'result', id: msg.id, result }, transfer);
      },
      (err: unknown) => port.postMessage({ type: 'error', id: msg.id, message: err instanceof Error ? err.message : String(err) }),
    );
  });
  port.postMessage({ type: 'ready' });
}

void main();
