import { parentPort, workerData, type Transferable, type Worker, type WorkerOptions } from 'node:worker_threads';
import { startWorker } from './startWorker.ts';

/**
 * Request/response over a worker thread: the one protocol every worker of the gateway speaks
 * (ledger writer, hazard engine, face analysis). The worker says it is ready (or why it could not
 * start); each request carries an id and gets exactly one answer, in the order the worker handles
 * them; a call that outlives `callTimeoutMs` or a worker that errors or exits rejects every call
 * in flight, terminates the thread and is reported once through `onDeath`, so the owner can
 * restart it or fail stop. The worker side is `serveRpc`.
 */
type ToWorker<Req> = { rpc: number; req: Req } | { rpcClose: true };
type FromWorker<Res> =
  | { rpcReady: true }
  | { rpcInitError: string }
  | { rpc: number; res: Res }
  | { rpc: number; err: string }
  | { rpcClosed: true };

export interface RpcWorkerOptions {
  /** Thread name (shown in errors and profiles). */
  name: string;
  /** workerData for the worker (its `serveRpc` init reads it). */
  data?: object;
  workerOptions?: WorkerOptions;
  /** The worker must be ready within this time (default 60 s). */
  startTimeoutMs?: number;
  /** A call unanswered this long kills the worker (a stuck native call); default: no limit. */
  callTimeoutMs?: number;
}

interface Call<Res> {
  resolve(r: Res): void;
  reject(e: Error): void;
  timer?: NodeJS.Timeout;
}

export class RpcWorker<Req, Res> {
  private readonly calls = new Map<number, Call<Res>>();
  private nextId = 1;
  private dead: Error | null = null;
  private closing = false;
  private readonly deathListeners: ((err: Error) => void)[] = [];

  private constructor(readonly worker: Worker, private readonly o: RpcWorkerOptions) {
    worker.on('message', (m: FromWorker<Res>) => {
      if ('rpc' in m) this.answer(m);
    });
    worker.on('error', (e) => this.die(e));
    worker.on('exit', (code) => this.die(new Error(`${o.name} worker exited with code ${code}`)));
  }

  /** Starts the worker at `entry` (a TypeScript module calling `serveRpc`) and waits until it is ready. */
  static start<Req, Res>(entry: URL, o: RpcWorkerOptions): Promise<RpcWorker<Req, Res>> {
    const worker = startWorker(entry, o.data ?? {}, { name: o.name, ...o.workerOptions });
    return new Promise((resolve, reject) => {
      const timeoutMs = o.startTimeoutMs ?? 60_000;
      const timer = setTimeout(() => fail(new Error(`${o.name} worker was not ready within ${timeoutMs / 1000} s`)), timeoutMs);
      timer.unref();
      const cleanup = () => { clearTimeout(timer); worker.off('message', onMessage); worker.off('error', fail); worker.off('exit', onExit); };
      function fail(e: Error) {
        cleanup();
        reject(e);
        void worker.terminate();
      }
      const onExit = (code: number) => fail(new Error(`${o.name} worker exited with code ${code} before it was ready`));
      const onMessage = (m: FromWorker<Res>) => {
        if ('rpcReady' in m) { cleanup(); resolve(new RpcWorker<Req, Res>(worker, o)); }
        if ('rpcInitError' in m) fail(new Error(`${o.name} worker could not start: ${m.rpcInitError}`));
      };
      worker.on('message', onMessage);
      worker.on('error', fail);
      worker.on('exit', onExit);
    });
  }

  /** Calls in flight. */
  get inFlight(): number {
    return this.calls.size;
  }

  get alive(): boolean {
    return !this.dead;
  }

  call(req: Req, transfer: readonly Transferable[] = []): Promise<Res> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise<Res>((resolve, reject) => {
      const call: Call<Res> = { resolve, reject };
      if (this.o.callTimeoutMs !== undefined) {
        call.timer = setTimeout(() => this.die(new Error(`${this.o.name} worker did not answer within ${this.o.callTimeoutMs! / 1000} s`)), this.o.callTimeoutMs);
        call.timer.unref();
      }
      this.calls.set(id, call);
      this.worker.postMessage({ rpc: id, req } satisfies ToWorker<Req>, transfer);
    });
  }

  /** Once, when the worker errors, exits or times out (not after `close`). */
  onDeath(listener: (err: Error) => void): void {
    this.deathListeners.push(listener);
  }

  /** Lets the worker finish what it was given and close its resources, then stops it (terminated after `graceMs`). */
  async close(graceMs = 2_000): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.dead) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => void this.worker.terminate().finally(resolve), graceMs);
      this.worker.once('exit', () => { clearTimeout(t); resolve(); });
      this.worker.postMessage({ rpcClose: true } satisfies ToWorker<Req>);
    });
  }

  /** Stops the thread at once; calls in flight are rejected. */
  async terminate(): Promise<void> {
    this.closing = true;
    this.die(new Error(`${this.o.name} worker terminated`));
    await this.worker.terminate();
  }

  private answer(m: { rpc: number; res: Res } | { rpc: number; err: string }): void {
    const call = this.calls.get(m.rpc);
    if (!call) return;
    this.calls.delete(m.rpc);
    clearTimeout(call.timer);
    if ('err' in m) call.reject(new Error(m.err));
    else call.resolve(m.res);
  }

  private die(err: Error): void {
    if (this.dead) return;
    this.dead = err;
    for (const call of this.calls.values()) { clearTimeout(call.timer); call.reject(err); }
    this.calls.clear();
    void this.worker.terminate();
    if (!this.closing) for (const l of this.deathListeners) l(err);
  }
}

/** A handler's answer with buffers to transfer instead of copy. */
export class Transfer<Res> {
  constructor(readonly value: Res, readonly list: readonly Transferable[]) {}
}

/**
 * The worker side: `init` (models, database handles) runs first and its failure is reported to
 * `RpcWorker.start`; then each request goes to `handle`, one at a time in arrival order unless
 * the handler is async, and `close` runs before the thread exits on `RpcWorker.close`.
 */
export async function serveRpc<Req, Res, Data = unknown>(o: {
  init?(data: Data): void | Promise<void>;
  handle(req: Req): Res | Transfer<Res> | Promise<Res | Transfer<Res>>;
  close?(): void | Promise<void>;
}): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error('serveRpc runs in a worker thread');
  try {
    await o.init?.(workerData as Data);
  } catch (e) {
    port.postMessage({ rpcInitError: e instanceof Error ? e.message : String(e) } satisfies FromWorker<Res>);
    return;
  }
  port.on('message', (m: ToWorker<Req>) => {
    if ('rpcClose' in m) {
      void Promise.resolve().then(() => o.close?.()).catch(() => undefined).finally(() => port.close());
      return;
    }
    const reply = (r: Res | Transfer<Res>) => r instanceof Transfer
      ? port.postMessage({ rpc: m.rpc, res: r.value } satisfies FromWorker<Res>, r.list)
      : port.postMessage({ rpc: m.rpc, res: r } satisfies FromWorker<Res>);
    const fail = (e: unknown) => port.postMessage({ rpc: m.rpc, err: e instanceof Error ? (e.stack ?? e.message) : String(e) } satisfies FromWorker<Res>);
    try {
      const r = o.handle(m.req);
      if (r instanceof Promise) r.then(reply, fail);
      else reply(r);
    } catch (e) {
      fail(e);
    }
  });
  port.postMessage({ rpcReady: true } satisfies FromWorker<Res>);
}
