import type Database from 'better-sqlite3';
import type { Logger } from 'pino';
import type { LedgerStore, RecordKind, StoredRecord } from '../ledger/types.ts';
import { Transactions } from '../state/transactions.ts';
import type { AnyCheck, Prepared } from './check.ts';
import type { CheckProgress } from './progress.ts';

/** A step of records: `through` is the last ledger seq it covers (records of other kinds included). */
interface Step {
  records: StoredRecord[];
  through: number;
}

export interface PipelineOptions {
  maxQueued: number;
  readBack: number;
  /** First delay before a failed step is tried again (doubles per attempt, at most 30 s). */
  retryMs: number;
  /** Attempts of one step before it is skipped (logged and counted: its effects are lost). */
  maxAttempts: number;
  /**
   * A step that changed nothing commits nothing (no fsync): its cursor is written with the next
   * step that does, or after this long (ms). A crash redoes those steps, which changed nothing.
   */
  saveEveryMs: number;
  failed(phase: Phase, err: unknown): void;
  log: Logger;
}

export type Phase = 'start' | 'records' | 'tick' | 'stop' | 'skip';

/**
 * One check's own feed (issue 10): its cursor, a bounded queue of committed records, and the
 * read-back from the ledger when the queue overflowed or at start. Every check has one, so a slow
 * check (face verification) delays only itself.
 *
 * A step is `prepare` (async) then `onRecords` + the cursor in one state transaction, so after a
 * crash the records after the cursor are simply handed over again (the hazard check's proven
 * `applied_seq`, generalised). Work is serial per check: steps, ticks and decisions never overlap.
 */
export class CheckPipeline {
  /** Last seq whose effects are committed (persisted as the `cursor` scope of check_progress). */
  cursor = 0;
  /** Last seq handed to the check (a replay included) or passed over as another kind. */
  seenSeq = 0;
  starting = true;
  private queue: Step[] = [];
  private queued = 0;
  /** Highest seq queued or read back: the ledger holds everything after it that is not queued. */
  private tailSeq = 0;
  /** Records at or below this seq are a replay: prepare only. */
  private replayThrough = 0;
  private readingBack = true;
  private work: Promise<void> = Promise.resolve();
  private draining = false;
  private stopped = false;
  private attempts = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private retried: Promise<void> = Promise.resolve();
  private retryDone: () => void = () => {};
  private readonly kinds: Set<string> | undefined;
  private readonly tx: Transactions;
  private readonly totalChanges: Database.Statement;
  /** When the cursor was last written (monotonic ms). */
  private savedAt = -Infinity;

  constructor(
    readonly check: AnyCheck,
    private readonly ledger: LedgerStore,
    private readonly progress: CheckProgress,
    private readonly o: PipelineOptions,
  ) {
    this.kinds = check.kinds ? new Set(check.kinds) : undefined;
    this.tx = Transactions.of(progress.db);
    this.totalChanges = progress.db.prepare('SELECT total_changes()').pluck();
  }

  get queuedRecords(): number {
    return this.queued;
  }

  get behind(): boolean {
    return this.readingBack;
  }

  /** Restores the check and reads back from its cursor (or its snapshot's seq). */
  start(): Promise<void> {
    return this.serial(async () => {
      const saved = this.progress.get('cursor');
      this.cursor = saved ?? this.check.firstCursor?.(this.ledger.lastSeq) ?? 0;
      if (saved === undefined) this.tx.run(() => this.progress.set('cursor', this.cursor));
      this.savedAt = performance.now();
      try {
        await this.restore();
      } catch (err) {
        this.o.failed('start', err);
        this.scheduleRetry();
      } finally {
        this.starting = false;
      }
    }).then(() => this.kick());
  }

  /** Committed records, in commit order: queued while there is room, else read back later. */
  take(records: StoredRecord[]): void {
    if (this.stopped || this.readingBack || records.length === 0) return;
    const through = records[records.length - 1]!.seq;
    if (through <= this.tailSeq) return;
    const mine = records.filter((r) => r.seq > this.tailSeq && (!this.kinds || this.kinds.has(r.kind)));
    if (mine.length === 0) {
      // Nothing for this check: the last waiting step covers these seqs too.
      this.tailSeq = through;
      const last = this.queue[this.queue.length - 1];
      if (last) last.through = through;
      else if (!this.draining) this.seenSeq = Math.max(this.seenSeq, through);
      else this.queue.push({ records: mine, through });
      return;
    }
    if (this.queued + mine.length > this.o.maxQueued) {
      this.readingBack = true; // these and what follows are read back from the ledger after tailSeq
      return;
    }
    this.tailSeq = through;
    this.queue.push({ records: mine, through });
    this.queued += mine.length;
    this.kick();
  }

  /** Resolves when everything committed so far has been through the check (or it stopped). */
  async idle(): Promise<void> {
    while (!this.stopped && (this.starting || this.draining || this.queue.length > 0 || this.readingBack || this.retryTimer)) {
      this.kick();
      await this.work;
      // Failing: wait for the retry (a step that fails every attempt is skipped, so this ends).
      if (this.retryTimer) await this.retried;
    }
  }

  /** Runs `fn` in the check's serial order (ticks and decisions between steps). */
  serial(fn: () => Promise<void> | void): Promise<void> {
    const run = this.work.then(fn);
    this.work = run.catch((err: unknown) => this.o.log.error({ err }, 'check work failed'));
    return this.work;
  }

  /** Inside the check's serial order: its state is committed through `cursor`, nothing in hand. */
  timeStep(now: number): Promise<void> {
    return this.serial(async () => {
      if (this.stopped || this.starting) return;
      try {
        if (this.check.tick) this.tx.run(() => this.check.tick!(now));
        await this.check.decide?.(now);
      } catch (err) {
        this.o.failed('tick', err);
      }
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.retryDone();
    this.queue = [];
    this.queued = 0;
    // A start still running may be waiting for the stop (a replay that ends where it is): tell the
    // check first. Otherwise the step in hand finishes (and commits) before the check stops.
    const stopCheck = async () => {
      try {
        await this.check.stop?.();
      } catch (err) {
        this.o.failed('stop', err);
      }
    };
    if (this.starting) {
      const stopped = stopCheck();
      await this.work;
      await stopped;
    } else {
      await this.work;
      this.tx.run(() => this.progress.set('cursor', this.cursor));
      await stopCheck();
    }
  }

  private async restore(): Promise<void> {
    const from = await this.check.start?.(this.cursor);
    const replayFrom = typeof from === 'number' ? Math.min(from, this.cursor) : this.cursor;
    this.queue = [];
    this.queued = 0;
    this.tailSeq = this.seenSeq = replayFrom;
    this.replayThrough = this.cursor;
    this.readingBack = true;
  }

  private kick(): void {
    if (this.draining || this.stopped || this.starting || this.retryTimer) return;
    if (this.queue.length === 0 && !this.readingBack) return;
    this.draining = true;
    void this.serial(() => this.drain()).finally(() => {
      this.draining = false;
      if (!this.retryTimer && (this.queue.length > 0 || this.readingBack)) this.kick();
    });
  }

  private async drain(): Promise<void> {
    while (!this.stopped) {
      const step = this.next();
      if (step === undefined) return;
      try {
        const rest = await this.run(step);
        if (rest) {
          this.queue.unshift(rest);
          this.queued += rest.records.length;
        }
        this.attempts = 0;
      } catch (err) {
        this.o.failed('records', err);
        this.queue.unshift(step);
        this.queued += step.records.length;
        if (++this.attempts >= this.o.maxAttempts) {
          this.skip(step, err);
          continue;
        }
        this.scheduleRetry();
        return;
      }
      // Let I/O and the other checks in between steps (a long read-back must not hold the loop).
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  /** One step; returns what the check left of it (see `Prepared.through`). */
  private async run(step: Step): Promise<Step | undefined> {
    const { check } = this;
    if (step.records.length === 0 || step.through <= this.replayThrough) {
      // Other kinds only (the cursor moves with the next real step), or a replay: state only.
      if (step.records.length > 0) await check.prepare?.(step.records, true);
      this.seenSeq = step.through;
      return undefined;
    }
    let records = step.records;
    let through = step.through;
    let rest: Step | undefined;
    const prepared: Prepared | void = await check.prepare?.(records, false);
    const took = prepared?.through;
    if (took !== undefined && took < through) {
      rest = { records: records.filter((r) => r.seq > took), through };
      records = records.filter((r) => r.seq <= took);
      through = took;
    }
    const before = this.totalChanges.get();
    this.tx.run(() => {
      if (records.length > 0) check.onRecords(records, prepared);
      // Only a step that changed something needs its cursor beside it (and pays for the fsync).
      const t = performance.now();
      if (this.totalChanges.get() !== before || t - this.savedAt >= this.o.saveEveryMs) {
        this.progress.set('cursor', through);
        this.savedAt = t;
      }
    });
    this.cursor = this.seenSeq = through;
    return rest;
  }

  /** A step that failed every attempt: logged with its range and counted, and passed over. */
  private skip(step: Step, err: unknown): void {
    this.queue.shift();
    this.queued -= step.records.length;
    this.attempts = 0;
    this.o.failed('skip', err);
    this.o.log.error({ err, fromSeq: step.records[0]?.seq, through: step.through, records: step.records.length }, 'check skipped records after repeated failures');
    if (step.through > this.replayThrough) {
      this.tx.run(() => this.progress.set('cursor', step.through));
      this.cursor = step.through;
    }
    this.seenSeq = step.through;
  }

  /** After a failure: wait, restore the check from its committed state, and go on from there. */
  private scheduleRetry(): void {
    const delay = Math.min(30_000, this.o.retryMs * 2 ** Math.max(0, this.attempts - 1));
    let done!: () => void;
    this.retried = new Promise((resolve) => { done = resolve; });
    this.retryDone = done;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.serial(async () => {
        if (this.stopped) return;
        try {
          await this.restore();
        } catch (err) {
          this.o.failed('start', err);
          this.attempts++;
          this.scheduleRetry();
        }
      }).then(() => {
        this.kick();
        done(); // this retry's waiters (a failed restore has set up the next one)
      });
    }, delay);
    this.retryTimer.unref();
  }

  /** The next step: the queue first, else (at start, after an overflow) the ledger. */
  private next(): Step | undefined {
    let step = this.queue.shift();
    if (step !== undefined) {
      this.queued -= step.records.length;
    } else {
      if (!this.readingBack) return undefined;
      step = this.readBack();
      if (step === undefined) return undefined;
    }
    const max = this.check.maxBatch;
    if (max !== undefined && step.records.length > max) {
      const rest = step.records.slice(max);
      this.queue.unshift({ records: rest, through: step.through });
      this.queued += rest.length;
      step = { records: step.records.slice(0, max), through: step.records[max - 1]!.seq };
    }
    // A replay never shares a step with live records.
    if (step.through > this.replayThrough && (step.records[0]?.seq ?? Infinity) <= this.replayThrough) {
      const rest = step.records.filter((r) => r.seq > this.replayThrough);
      this.queue.unshift({ records: rest, through: step.through });
      this.queued += rest.length;
      step = { records: step.records.filter((r) => r.seq <= this.replayThrough), through: this.replayThrough };
    }
    return step;
  }

  private readBack(): Step | undefined {
    const lastSeq = this.ledger.lastSeq;
    const kinds = this.check.kinds as RecordKind[] | undefined;
    const chunk = this.ledger.readAfter(this.tailSeq, this.o.readBack, kinds).filter((r) => r.seq <= lastSeq);
    let through: number;
    if (chunk.length >= this.o.readBack) {
      through = chunk[chunk.length - 1]!.seq;
    } else {
      // Caught up: everything committed so far has been read; live records are queued again.
      through = lastSeq;
      this.readingBack = false;
    }
    if (through <= this.tailSeq) return undefined;
    this.tailSeq = through;
    return { records: chunk, through };
  }
}
