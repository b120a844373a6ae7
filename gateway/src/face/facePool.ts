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
 * Workers speak util/workerRpc.ts (ready, request ids, timeouts, death reported once).
 *
 * sharp and onnxruntime-node are loaded in the main thread before any worker starts: sharp's docs
 * require it (otherwise libvips can be unloaded when a worker exits and crash the process).
 */
import os from 'node:os';
import { RpcWorker } from '../util/workerRpc.ts';
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
import type { AnalyzeRequest, FaceWorkerData } from './faceWorker.ts';

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
   * Linux: run the worker threads under SCHED_IDLE as well (default true): a device's message or
   * an alarm that wakes up takes the core from face analysis at once, where at nice 10 it may wait
   * for the analysis' time slice. The public month replayed at 13,100–13,800 events/s this way
   * against 11,600–12,800 at nice 10 alone (5 and 5 runs, 2 vCPUs); analysis still gets every core
   * nothing else wants. Set with `chrt` (util-linux); where that fails, nice alone applies.
   */
  idlePolicy?: boolean;
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
  rpc: RpcWorker<AnalyzeRequest, FaceAnalysis>;
  job: Job | null;
}

/** A worker that has not loaded its models, or not answered one photo, in this time is replaced. */
const START_TIMEOUT_MS = 60_000;
const JOB_TIMEOUT_MS = 60_000;

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
      idlePolicy: opts.idlePolicy ?? true,
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

  /** One more worker: it must load its models within START_TIMEOUT_MS and answer each photo within JOB_TIMEOUT_MS, or it is replaced. */
  private async spawn(): Promise<void> {
    let rpc: RpcWorker<AnalyzeRequest, FaceAnalysis>;
    try {
      rpc = await RpcWorker.start<AnalyzeRequest, FaceAnalysis>(WORKER_URL, {
        name: 'face', data: this.data, startTimeoutMs: START_TIMEOUT_MS, callTimeoutMs: JOB_TIMEOUT_MS,
      });
    } catch (err) {
      this.onStartFailure(err as Error);
      throw err;
    }
    if (this.closed) {
      await rpc.close();
      return;
    }
    const slot: Slot = { rpc, job: null };
    this.slots.push(slot);
    this.spawnFailures = 0;
    rpc.onDeath((err) => this.onWorkerDeath(slot, err));
    this.pump();
  }

  private onStartFailure(err: Error): void {
    if (this.closed) return;
    this.spawnFailures++;
    if (this.spawnFailures >= MAX_CONSECUTIVE_SPAWN_FAILURES) {
      // Workers cannot even start: fail waiting callers instead of leaving them hanging forever.
      if (this.slots.length === 0) this.failQueued(new Error(`face workers keep failing to start: ${err.message}`));
      return;
    }
    this.spawn().catch(() => undefined);
  }

  private onWorkerDeath(slot: Slot, err: Error): void {
    const idx = this.slots.indexOf(slot);
    if (idx < 0) return;
    this.slots.splice(idx, 1);
    const job = slot.job;
    slot.job = null;
    if (job) job.reject(new Error(`face analysis failed: ${err.message}`));
    if (this.closed) return;
    this.spawn().catch(() => undefined);
  }

  private failQueued(err: Error): void {
    for (const job of this.queue.splice(0)) job.reject(err);
  }

  private finish(slot: Slot, job: Job, outcome: { result: FaceAnalysis } | { error: Error }): void {
    if (slot.job === job) slot.job = null;
    const now = performance.now();
    const ok = 'result' in outcome;
    try {
      this.opts.onLatency?.(now - job.enqueuedAt, { queuedMs: job.startedAt - job.enqueuedAt, runMs: now - job.startedAt, ok });
    } catch {
      /* observer errors must not break the pool */
    }
    if ('result' in outcome) job.resolve(outcome.result);
    else job.reject(new Error(`face analysis failed: ${outcome.error.message}`));
    this.pump();
  }

  private pump(): void {
    for (const slot of this.slots) {
      if (this.queue.length === 0) return;
      if (slot.job || !slot.rpc.alive) continue;
      const job = this.queue.shift()!;
      slot.job = job;
      job.startedAt = performance.now();
      // job.jpeg is the pool's own copy (see analyze), so its buffer can be transferred. A stuck
      // analysis (native code that never returns) times out, fails its job and replaces the worker.
      slot.rpc.call({ jpeg: job.jpeg }, [job.jpeg.buffer as ArrayBuffer]).then(
        (result) => this.finish(slot, job, { result }),
        (error: Error) => { if (slot.rpc.alive) this.finish(slot, job, { error }); },
      );
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
    await Promise.all(slots.map((s) => s.rpc.close()));
  }
}
