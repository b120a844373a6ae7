/**
 * Worker-thread side of FacePool: one FaceEngine (own ONNX sessions, intra-op threads 1 by
 * default) per worker, one job at a time.
 *
 * Started by FacePool through util/startWorker.ts, which registers tsx inside the worker (on Node 20
 * a worker thread does not inherit the parent's tsx loader hooks, under `npx tsx` or vitest).
 *
 * Protocol: util/workerRpc.ts, one request `{ jpeg }` → a FaceAnalysis (its embedding transferred).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { serveRpc, Transfer } from '../util/workerRpc.ts';
import { FaceEngine, type FaceAnalysis, type FaceEngineOptions } from './faceEngine.ts';

export interface FaceWorkerData {
  modelsDir: string;
  engine: FaceEngineOptions;
  /** Nice value of this thread (Linux): face analysis yields the CPU to ingest under contention. */
  niceness?: number;
  /** Linux: SCHED_IDLE for this thread too (FacePoolOptions.idlePolicy). */
  idlePolicy?: boolean;
}

/**
 * This thread (and the threads it starts: libvips') under SCHED_IDLE. Node has no call for it, so
 * `chrt` sets it on this thread's own id, read from /proc/thread-self. Lowering one's own
 * priority needs no privilege; false when it could not be done (no chrt): nice still applies.
 */
function idleThisThread(): boolean {
  try {
    const tid = fs.readlinkSync('/proc/thread-self').split('/').pop()!;
    return spawnSync('chrt', ['--idle', '--pid', '0', tid], { stdio: 'ignore', timeout: 5000 }).status === 0;
  } catch {
    return false;
  }
}

export interface AnalyzeRequest { jpeg: Uint8Array }

let engine: FaceEngine;

void serveRpc<AnalyzeRequest, FaceAnalysis, FaceWorkerData>({
  async init(data) {
    // On Linux a thread's nice value is its own (setpriority on the calling task), and threads it
    // starts inherit it; elsewhere it would renice the whole process, so it is left alone there.
    if (process.platform === 'linux' && data.niceness) {
      try { os.setPriority(0, data.niceness); } catch { /* not permitted: run at normal priority */ }
    }
    if (process.platform === 'linux' && data.idlePolicy) idleThisThread();
    engine = await FaceEngine.load(data.modelsDir, data.engine);
  },
  async handle({ jpeg }) {
    const result = await engine.analyze(Buffer.from(jpeg.buffer, jpeg.byteOffset, jpeg.byteLength));
    // Transfer the embedding's buffer instead of copying it.
    return new Transfer(result, result.ok ? [result.embedding.buffer as ArrayBuffer] : []);
  },
  close: () => engine.close(),
});
