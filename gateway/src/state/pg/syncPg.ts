import { MessageChannel, receiveMessageOnPort, type MessagePort, type Worker } from 'node:worker_threads';
import { startWorker } from '../../util/startWorker.ts';
import type { Query, Reply } from './syncPgWorker.ts';

/**
 * A PostgreSQL connection that answers synchronously, as better-sqlite3 does: the state layer's
 * transactions are synchronous (a check's step applies its alert changes and its cursor in one
 * transaction, state/README.md), so region mode keeps that shape and blocks on the database the
 * way the embedded default blocks on SQLite's fsync.
 *
 * The connection lives on its own thread (syncPgWorker.ts); `query` posts the statement and waits
 * on a shared word with `Atomics.wait` until the answer is on the reply port. The calling thread
 * runs nothing else meanwhile — which is the point (no other code can slip into an open
 * transaction) and the cost (a round trip, ~0.1–0.3 ms on a LAN, blocks the event loop; the
 * ingest hot path never calls it).
 *
 * A query that gets no answer within `timeoutMs` fails the connection: the thread is ended
 * (PostgreSQL rolls back whatever was open) and every later call throws, so the owner opens a new
 * one rather than guessing in which state the old one was left.
 */
export class PgError extends Error {
  constructor(message: string, readonly code?: string, readonly detail?: string) {
    super(message);
    this.name = 'PgError';
  }
}

export interface SyncPgOptions {
  url: string;
  /** Longest wait for one answer before the connection is given up. Default 10 s. */
  timeoutMs?: number;
  /** Longest wait for the thread to start and connect. Default 30 s. */
  connectTimeoutMs?: number;
  /** Shown in pg_stat_activity (e.g. `sitegate-state:gw2`). */
  applicationName?: string;
}

export class SyncPg {
  private readonly worker: Worker;
  private readonly replies: MessagePort;
  private readonly flag: Int32Array;
  private readonly timeoutMs: number;
  private broken: Error | undefined;
  private closed = false;

  constructor(o: SyncPgOptions) {
    this.timeoutMs = o.timeoutMs ?? 10_000;
    const signal = new SharedArrayBuffer(4);
    this.flag = new Int32Array(signal);
    const { port1, port2 } = new MessageChannel();
    this.replies = port1;
    this.worker = startWorker(new URL('./syncPgWorker.ts', import.meta.url),
      { url: o.url, signal, replies: port2, applicationName: o.applicationName ?? 'sitegate-state' },
      { transferList: [port2] });
    this.worker.unref();
    this.worker.on('error', (err) => { this.broken ??= err; });
    this.await('connect', o.connectTimeoutMs ?? 30_000); // throws when PostgreSQL refuses or is not there
  }

  get open(): boolean {
    return !this.closed && !this.broken;
  }

  /** Runs one statement (`$1`… parameters) and returns its rows and row count. */
  query<R = Record<string, unknown>>(sql: string, params: unknown[] = []): { rows: R[]; rowCount: number } {
    if (this.closed) throw new Error('the PostgreSQL connection is closed');
    if (this.broken) throw new PgError(`the PostgreSQL connection failed earlier: ${this.broken.message}`);
    Atomics.store(this.flag, 0, 0);
    this.worker.postMessage({ sql, params } satisfies Query);
    const reply = this.await(sql);
    return { rows: reply.rows as R[], rowCount: reply.rowCount };
  }

  close(): void {
    if (this.closed) return;
    if (!this.broken) {
      Atomics.store(this.flag, 0, 0);
      this.worker.postMessage('close');
      try { this.await('close'); } catch { /* ending anyway */ }
    }
    this.closed = true;
    void this.worker.terminate();
  }

  private await(what: string, timeoutMs = this.timeoutMs): Extract<Reply, { ok: true }> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const left = deadline - performance.now();
      if (left <= 0 || Atomics.wait(this.flag, 0, 0, left) === 'timed-out') {
        // Whatever the thread was doing is abandoned with it; PostgreSQL rolls the session back.
        this.broken = new PgError(`PostgreSQL did not answer within ${timeoutMs} ms (${what.slice(0, 80)})`);
        void this.worker.terminate();
        throw this.broken;
      }
      const m = receiveMessageOnPort(this.replies);
      if (!m) continue; // woken before the message landed: wait again (the flag is still 1, so it returns at once)
      const reply = m.message as Reply;
      if (reply.ok) return reply;
      const err = new PgError(reply.message, reply.code, reply.detail);
      if (what === 'connect') this.broken = err;
      throw err;
    }
  }
}
