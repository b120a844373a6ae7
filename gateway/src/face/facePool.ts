/**
 * Bounded worker_threads pool for face analysis.
 *
 * - `workers` threads (default os.availableParallelism()), each with its own FaceEngine and ONNX
 *   sessions using intraOpNumThreads 1 (models/NOTES.md pitfall 9: ORT uses every core per session
 *   by default, which oversubscribes the CPU when several sessions run in parallel).
 * - Each worker runs one job at a time. Extra jobs wait in an unbounded FIFO queue: work is never
 *   dropped, callers simply wait. Back-pressure is the caller's business (see stats().queueDepth).
 * - A worker that crashes fails only its in-flight job and is replaced.
 *
 * Workers run TypeScript through util/startWorker.ts (worker threads do not inherit tsx's loader).
 *
 * sharp and onnxruntime-node are loaded in the main thread before any worker starts: sharp's docs
 * require it (otherwise libvips can be unloaded when a worker exits and crash the process).
 */
import os from 'node:os';
import type { Worker } from 'node:worker_threads';
import { startWorker } from '../util/startWorker.ts';
import sharp from 'sharp';
import * as ort from 'onnxruntime-node';
import {
  DEFAULT_MODELS_DIR,
  enrolmentFor,
  verdictFor,
  type EnrolOptions,
  type EnrolResult,
  type FaceAnalysis,
  type FaceAnalyzer,
  type FaceEngineOptions,
  type VerifyOptions,
  type VerifyResult,
} from './faceEngine.ts';
import type { FaceWorkerData, ToWorker } from './faceWorker.ts';

// Keep the native libraries referenced from the main thread (see header).
void sharp.versions;
void ort.env;

export interface FacePoolOptions {
  modelsDir?: string;
  /** number of worker threads; default os.availableParallelism() */
  workers?: number;
  /** ORT intra-op threads per session inside each worker; default 1 */
  threadsPerWorker?: number;
  maxDecodeSide?: number;
  detect?: FaceEngineOptions['detect'];
  refine?: FaceEngineOptions['refine'];
  /**
   * Nice value of the worker threads on Linux (default 10): verification lags rather than the
   * broker and the ledger writer when the cores are busy; 0 keeps normal priority.
   */
  niceness?: number;
  /**
   * Called once per finished job with the caller-visible latency (queue wait + processing) in ms;
   * `detail` splits it. Must not throw.
   */
  onLatency?(ms: number, detail: { queuedMs: number; runMs: number; ok: boolean }): void;
}

export interface FacePoolStats {
  /** jobs waiting for a free worker */
  queueDepth: number;
  /** workers currently processing a job */
  busy: number;
  /** live workers */
  workers: number;
}

interface Job {
  id: number;
  jpeg: Uint8Array;
  enqueuedAt: number;
  startedAt: number;
  resolve(r: FaceAnalysis): void;
  reject(e: Error): void;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  job: Job | null;
  /** Watchdog of the current start or job: a worker that never answers is replaced. */
  timer?: NodeJS.Timeout;
}

/** A worker that has not loaded its models, or not answered one photo, in this time is replaced. */
const START_TIMEOUT_MS = 60_000;
const JOB_TIMEOUT_MS = 60_000;

type FromWorker =
  | { type: 'ready' }
  | { type: 'init_error'; message: string }
  | { type: 'result'; id: number; result: FaceAnalysis }
  | { type: 'error'; id: number; message: string };

const WORKER_URL = new URL('./faceWorker.ts', import.meta.url);
const MAX_CONSECUTIVE_SPAWN_FAILURES = 3;

export class FacePool implements FaceAnalyzer {
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private nextId = 1;
  private closed = false;
  private spawnFailures = 0;
  private readonly size: number;
  private readonly data: FaceWorkerData;

  private constructor(private readonly opts: FacePoolOptions) {
    this.size = Math.max(1, opts.workers ?? os.availableParallelism());
    this.data = {
      modelsDir: opts.modelsDir ?? DEFAULT_MODELS_DIR,
      engine: { threads: opts.threadsPerWorker ?? 1, maxDecodeSide: opts.maxDecodeSide, detect: opts.detect, refine: opts.refine },
      niceness: opts.niceness ?? 10,
    };
  }

  /** Starts the workers and resolves once every one has loaded its models. */
  static async create(opts: FacePoolOptions = {}): Promise<FacePool> {
    const pool = new FacePool(opts);
    const starts: Promise<void>[] = [];
    for (let i = 0; i < pool.size; i++) starts.push(pool.spawn());
    try {
      await Promise.all(starts);
    } catch (err) {
      await pool.close();
      throw err;
    }
    return pool;
  }

  private spawn(): Promise<void> {
    return new Promise((resolve, reject) => {
      const worker = startWorker(WORKER_URL, this.data, { name: 'face' });
      const slot: Slot = { worker, ready: false, job: null };
      this.slots.push(slot);
      let settled = false;
      slot.timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        reject(new Error(`face worker did not load its models within ${START_TIMEOUT_MS / 1000} s`));
        void worker.terminate(); // its exit counts as a failed start and is replaced
      }, START_TIMEOUT_MS);
      slot.timer.unref();
      worker.on('message', (msg: FromWorker) => {
        switch (msg.type) {
          case 'ready':
            clearTimeout(slot.timer);
            slot.ready = true;
            this.spawnFailures = 0;
            settled = true;
            resolve();
            this.pump();
            break;
          case 'init_error':
            settled = true;
            reject(new Error(`face worker failed to load models: ${msg.message}`));
            void worker.terminate();
            break;
          case 'result':
          case 'error':
            this.finish(slot, msg);
            break;
        }
      });
      worker.on('error', (err) => {
        if (!settled) {
          settled = true;
          reject(err);
        }
        this.onWorkerDeath(slot, err);
      });
      worker.on('exit', (code) => {
        if (!settled) {
          settled = true;
          reject(new Error(`face worker exited during start (code ${code})`));
        }
        this.onWorkerDeath(slot, new Error(`face worker exited (code ${code})`));
      });
    });
  }

  private onWorkerDeath(slot: Slot, err: Error): void {
    clearTimeout(slot.timer);
    const idx = this.slots.indexOf(slot);
    if (idx < 0) return; // already handled (error + exit both fire)
    this.slots.splice(idx, 1);
    const job = slot.job;
    slot.job = null;
    if (job) job.reject(new Error(`face analysis failed: ${err.message}`));
    if (this.closed) return;
    if (!slot.ready) this.spawnFailures++;
    if (this.spawnFailures >= MAX_CONSECUTIVE_SPAWN_FAILURES) {
      // Workers cannot even start: fail waiting callers instead of leaving them hanging forever.
      if (this.slots.length === 0) this.failQueued(new Error(`face workers keep failing to start: ${err.message}`));
      return;
    }
    this.spawn().catch(() => undefined);
  }

  private failQueued(err: Error): void {
    for (const job of this.queue.splice(0)) job.reject(err);
  }

  private finish(slot: Slot, msg: Extract<FromWorker, { type: 'result' | 'error' }>): void {
    clearTimeout(slot.timer);
    const job = slot.job;
    slot.job = null;
    if (job && job.id === msg.id) {
      const now = performance.now();
      const ok = msg.type === 'result';
      try {
        this.opts.onLatency?.(now - job.enqueuedAt, { queuedMs: job.startedAt - job.enqueuedAt, runMs: now - job.startedAt, ok });
      } catch {
        /* observer errors must not break the pool */
      }
      if (msg.type === 'result') job.resolve(msg.result);
      else job.reject(new Error(`face analysis failed: ${msg.message}`));
    }
    this.pump();
  }

  private pump(): void {
    for (const slot of this.slots) {
      if (this.queue.length === 0) return;
      if (!slot.ready || slot.job) continue;
      const job = this.queue.shift()!;
      slot.job = job;
      job.startedAt = performance.now();
      const msg: ToWorker = { type: 'analyze', id: job.id, jpeg: job.jpeg };
      const worker = slot.worker;
      // A stuck analysis (native code that never returns) fails its job and replaces the worker.
      slot.timer = setTimeout(() => void worker.terminate(), JOB_TIMEOUT_MS);
      slot.timer.unref();
      // job.jpeg is the pool's own copy (see analyze), so its buffer can be transferred.
      slot.worker.postMessage(msg, [job.jpeg.buffer as ArrayBuffer]);
    }
  }

  /** Queues a photo for analysis; resolves when a worker has processed it. */
  analyze(jpeg: Buffer): Promise<FaceAnalysis> {
    if (this.closed) return Promise.reject(new Error('face pool is closed'));
    // Own exact-size copy: the caller's buffer stays usable (it is the photo evidence), and a Buffer
    // that is a view into a larger allocation (Node's pool slab, a whole request body) does not
    // drag that allocation across the thread boundary.
    const copy = new Uint8Array(jpeg);
    return new Promise((resolve, reject) => {
      const now = performance.now();
      this.queue.push({ id: this.nextId++, jpeg: copy, enqueuedAt: now, startedAt: now, resolve, reject });
      this.pump();
    });
  }

  async verify(photo: Buffer, enrolledEmbedding: ArrayLike<number>, opts?: VerifyOptions): Promise<VerifyResult> {
    return verdictFor(await this.analyze(photo), enrolledEmbedding, opts);
  }

  async enrol(photo: Buffer, opts?: EnrolOptions): Promise<EnrolResult> {
    return enrolmentFor(await this.analyze(photo), opts);
  }

  stats(): FacePoolStats {
    let busy = 0;
    for (const s of this.slots) if (s.job) busy++;
    return { queueDepth: this.queue.length, busy, workers: this.slots.length };
  }

  /**
   * Rejects queued jobs, lets in-flight jobs finish (terminating a worker in the middle of a sharp
   * operation can crash the process), then stops the workers.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.failQueued(new Error('face pool is closed'));
    const deadline = performance.now() + 5_000;
    while (this.slots.some((s) => s.job) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    const slots = this.slots.splice(0);
    for (const s of slots) {
      s.job?.reject(new Error('face pool closed before the analysis finished'));
      s.job = null;
    }
    await Promise.all(
      slots.map(
        (s) =>
          new Promise<void>((resolve) => {
            const t = setTimeout(() => void s.worker.terminate().finally(resolve), 2_000);
            s.worker.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
            if (s.ready) s.worker.postMessage({ type: 'close' } satisfies ToWorker);
            else void s.worker.terminate();
          }),
      ),
    );
  }
}
