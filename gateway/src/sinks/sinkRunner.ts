import type { Logger } from 'pino';
import type { Clock } from '../clock/clock.ts';
import type { AnyLedgerStore, MaybePromise, StoredRecord } from '../ledger/types.ts';
import type { Metrics } from '../observability/metrics.ts';
import { SinkError, type Sink } from './sink.ts';
import type { SinkStore } from '../state/types.ts';

export interface SinkRunnerOptions {
  sink: Sink;
  ledger: AnyLedgerStore;
  /** Cursor and dead letters (state.db). */
  state: SinkStore;
  metrics: Metrics;
  logger: Logger;
  /** Calendar clock (lag, dead-letter and cursor times). */
  now: Clock;
  batchSize?: number;
  flushMs?: number;
  /** Retry back-off: full jitter between 0 and min(maxBackoffMs, minBackoffMs·2^attempt). */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Records kept in memory for the sink; past this it reads its backlog from the ledger. */
  maxTail?: number;
  random?: () => number;
}

export interface SinkState {
  name: string;
  cursor: number;
  lagRecords: number;
  lagSeconds: number;
  lastError?: string;
  healthy: boolean;
  deadLetters: number;
}

/**
 * Moves ledger records to one sink. The ledger is the spool: the sink's cursor (in state.db)
 * advances only after the database confirmed a batch, so an outage of any length loses nothing,
 * and since a point rewritten with the same series and time is the same point, a batch resent
 * after a crash duplicates nothing.
 */
export class SinkRunner {
  private readonly o: Required<Omit<SinkRunnerOptions, 'random'>> & { random: () => number };
  private cursor: number;
  private tail: StoredRecord[] = [];
  private tailFrom: number;
  private stopping = false;
  private loop?: Promise<void>;
  private wakeUp?: () => void;
  private lastError?: string;
  private deadLetters = 0;
  /** On a ledger whose reads answer later: the first record after the cursor, as last read (see `peekOldest`). */
  private oldestRead?: StoredRecord;
  private unsubscribe?: () => void;
  private readonly log: Logger;

  constructor(opts: SinkRunnerOptions) {
    this.o = { batchSize: 5000, flushMs: 500, minBackoffMs: 250, maxBackoffMs: 30_000, maxTail: 100_000, random: Math.random, ...opts };
    this.log = opts.logger.child({ sink: opts.sink.name });
    this.cursor = opts.state.cursor(opts.sink.name);
    this.deadLetters = opts.state.deadLetterCount(opts.sink.name);
    this.tailFrom = opts.ledger.lastSeq + 1;
    this.listen();
  }

  /** Commits are kept in memory from now on (what came before is read from the ledger). */
  private listen(): void {
    this.unsubscribe = this.o.ledger.onCommitted((records) => {
      if (this.tail.length + records.length > this.o.maxTail) {
        this.tail = []; // too far behind: read the backlog from the ledger instead of memory
        this.tailFrom = records[records.length - 1]!.seq + 1;
      } else {
        for (const r of records) this.tail.push(r);
      }
      // New records end an idle wait, and a flush wait once a full batch is there. They never cut
      // a retry back-off short: during an outage records keep arriving, and waking on each commit
      // would hammer the database instead of backing off.
      if (this.sleeping === 'idle' || (this.sleeping === 'flush' && this.tail.length >= this.o.batchSize)) this.wake();
    });
  }

  get name(): string {
    return this.o.sink.name;
  }

  start(): void {
    if (this.stopping) {
      // Started again after a stop (region mode: this instance got the sink's lease back): from the
      // cursor as committed now, whoever moved it meanwhile.
      this.stopping = false;
      this.loop = undefined;
      this.tail = [];
      this.cursor = this.o.state.cursor(this.name);
      this.deadLetters = this.o.state.deadLetterCount(this.name);
      this.tailFrom = this.o.ledger.lastSeq + 1;
      this.listen();
    }
    this.loop ??= this.run().catch((err) => this.log.fatal({ err }, 'sink loop crashed'));
  }

  /** Whether this runner moves records now (between start and stop). */
  get running(): boolean {
    return this.loop !== undefined && !this.stopping;
  }

  state(): SinkState {
    const lagRecords = Math.max(0, this.o.ledger.lastSeq - this.cursor);
    const oldest = lagRecords > 0 ? this.peekOldest() : undefined;
    return {
      name: this.name, cursor: this.cursor, lagRecords,
      lagSeconds: oldest ? Math.max(0, (this.o.now() - oldest.receivedAt) / 1000) : 0,
      ...(this.lastError ? { lastError: this.lastError } : {}),
      healthy: !this.lastError, deadLetters: this.deadLetters,
    };
  }

  /** Flushes what is committed (best effort, bounded by `timeoutMs`) and stops. */
  async stop(timeoutMs = 5000): Promise<void> {
    if (!this.running) {
      this.stopping = true;
      this.unsubscribe?.();
      this.unsubscribe = undefined;
      return;
    }
    const deadline = performance.now() + timeoutMs;
    while (!this.lastError && this.cursor < this.o.ledger.lastSeq && performance.now() < deadline) {
      this.wake();
      await new Promise((r) => setTimeout(r, 20));
    }
    this.stopping = true;
    this.wake();
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    await this.loop;
  }

  /** Stops (flushing as `stop` does) and releases the sink's connections. */
  async close(timeoutMs = 5000): Promise<void> {
    await this.stop(timeoutMs);
    await this.o.sink.close();
  }

  private peekOldest(): StoredRecord | undefined {
    if (this.cursor + 1 >= this.tailFrom) return this.tail.find((r) => r.seq > this.cursor);
    const read = this.o.ledger.readAfter(this.cursor, 1);
    if (!(read instanceof Promise)) return read[0];
    // state() is synchronous (/readyz, a scrape): on PostgreSQL it answers from the last read (the
    // loop's, or the previous state()'s) and asks again for the next call.
    read.then((r) => { this.oldestRead = r[0]; }, () => {});
    return this.oldestRead !== undefined && this.oldestRead.seq > this.cursor ? this.oldestRead : undefined;
  }

  /** The next records after the cursor: from memory when the tail holds them (no await on the hot path), else the ledger. */
  private fetch(limit: number): MaybePromise<StoredRecord[]> {
    if (this.cursor + 1 >= this.tailFrom) {
      let drop = 0;
      while (drop < this.tail.length && this.tail[drop]!.seq <= this.cursor) drop++;
      if (drop) this.tail.splice(0, drop);
      return this.tail.slice(0, limit);
    }
    const read = this.o.ledger.readAfter(this.cursor, limit);
    return read instanceof Promise ? read.then((batch) => { this.oldestRead = batch[0]; return batch; }) : read;
  }

  /** What the loop is waiting for, if it waits: new records, company for a short batch, or a retry. */
  private sleeping?: 'idle' | 'flush' | 'backoff';

  private wake(): void {
    const w = this.wakeUp;
    this.wakeUp = undefined;
    this.sleeping = undefined;
    w?.();
  }

  private sleep(ms: number, reason: 'idle' | 'flush' | 'backoff'): Promise<void> {
    // stop() may have come while a write was in flight: then there is nobody left to wake us.
    if (this.stopping) return Promise.resolve();
    return new Promise((resolve) => {
      this.sleeping = reason;
      const t = setTimeout(() => { this.wakeUp = undefined; this.sleeping = undefined; resolve(); }, ms);
      this.wakeUp = () => { clearTimeout(t); resolve(); };
    });
  }

  private async run(): Promise<void> {
    let attempt = 0;
    let batchStarted = 0;
    while (!this.stopping) {
      let batch: StoredRecord[];
      try {
        batch = await this.fetch(this.o.batchSize);
      } catch (e) {
        await this.readFailed(e, attempt++);
        continue;
      }
      if (batch.length === 0) {
        await this.sleep(60_000, 'idle');
        batchStarted = performance.now();
        continue;
      }
      // Batching by size and time: a short batch waits up to flushMs for company.
      if (batch.length < this.o.batchSize && attempt === 0) {
        const waited = performance.now() - batchStarted;
        if (waited < this.o.flushMs) {
          await this.sleep(this.o.flushMs - waited, 'flush');
          if (this.stopping) break;
          try {
            batch = await this.fetch(this.o.batchSize);
          } catch (e) {
            await this.readFailed(e, attempt++);
            continue;
          }
        }
      }
      try {
        await this.writeBatch(batch);
        this.advance(batch[batch.length - 1]!.seq, batch.length);
        attempt = 0;
        batchStarted = performance.now();
        this.lastError = undefined;
      } catch (e) {
        const err = e as Error;
        this.lastError = err.message;
        this.o.metrics.sinkErrors.inc({ sink: this.name, class: e instanceof SinkError ? e.kind : 'unknown' });
        const backoff = this.o.random() * Math.min(this.o.maxBackoffMs, this.o.minBackoffMs * 2 ** attempt);
        if (attempt === 0 || attempt % 10 === 0) this.log.warn({ err: err.message, attempt, backoffMs: Math.round(backoff) }, 'sink write failed; will retry');
        attempt++;
        await this.sleep(backoff, 'backoff');
      }
      this.updateLagMetrics();
    }
    this.updateLagMetrics();
  }

  /**
   * A catch-up read that failed (a ledger on PostgreSQL while it is unreachable): the sink is
   * unhealthy, nothing moves, and the read is made again after the back-off, not at once.
   */
  private async readFailed(e: unknown, attempt: number): Promise<void> {
    this.lastError = `ledger read failed: ${e instanceof Error ? e.message : String(e)}`;
    const backoff = this.o.random() * Math.min(this.o.maxBackoffMs, this.o.minBackoffMs * 2 ** attempt);
    if (attempt === 0 || attempt % 10 === 0) this.log.warn({ err: this.lastError, attempt, backoffMs: Math.round(backoff) }, 'ledger read failed; will retry');
    await this.sleep(backoff, 'backoff');
  }

  private async writeBatch(batch: StoredRecord[]): Promise<void> {
    const progress = { done: 0 };
    try {
      await this.writeSplitting(batch, 0, progress);
    } catch (e) {
      // A 5xx or network error in the middle of a split: the records before it are confirmed or
      // dead-lettered, in order. Keep that progress, so the retry neither rewrites them nor
      // dead-letters a record a second time.
      if (progress.done > 0) this.advance(batch[progress.done - 1]!.seq, progress.done);
      throw e;
    }
  }

  /**
   * Bad data (4xx): halve the batch until the refused records are isolated; they go to dead letters.
   * `progress.done` counts the leading records that are settled (written or dead-lettered).
   */
  private async writeSplitting(records: StoredRecord[], offset: number, progress: { done: number }): Promise<void> {
    if (records.length === 0) return;
    try {
      await this.o.sink.write(records);
      this.o.metrics.sinkWritten.inc({ sink: this.name }, records.length);
    } catch (e) {
      if (!(e instanceof SinkError) || e.kind !== 'bad_data') throw e;
      if (records.length === 1) {
        this.deadLetter(records[0]!, e.message);
      } else {
        const mid = records.length >> 1;
        await this.writeSplitting(records.slice(0, mid), offset, progress);
        await this.writeSplitting(records.slice(mid), offset + mid, progress);
      }
    }
    progress.done = offset + records.length;
  }

  private deadLetter(record: StoredRecord, error: string): void {
    if (!this.o.state.addDeadLetter(this.name, record.seq, this.o.sink.render(record), error, this.o.now())) return;
    this.deadLetters++;
    this.o.metrics.sinkDeadLetters.inc({ sink: this.name });
    this.log.warn({ seq: record.seq, error }, 'record refused by the database; kept as a dead letter');
  }

  private advance(seq: number, n: number): void {
    this.cursor = seq;
    this.o.state.saveCursor(this.name, seq, this.o.now());
    this.log.trace({ cursor: seq, records: n }, 'batch confirmed');
  }

  private updateLagMetrics(): void {
    const s = this.state();
    this.o.metrics.sinkLagRecords.set({ sink: this.name }, s.lagRecords);
    this.o.metrics.sinkLagSeconds.set({ sink: this.name }, s.lagSeconds);
  }
}
