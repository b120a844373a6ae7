import type { Logger } from 'pino';
import type { AnyLedgerStore, StoredRecord } from '../ledger/types.ts';
import type { SiteShard } from '../region/shards.ts';
import { totalChangesOf } from '../state/sqlDb.ts';
import { StepFeed, type Step } from './feed.ts';
import { fencedTransaction, type AnyCheck, type Prepared } from './check.ts';
import type { CheckProgress } from './progress.ts';

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
  /**
   * Steps begin at most this often (ms) while small commits keep coming: the commits in between
   * join the next step (feed.ts), so a check pays its transaction, its hazard-thread round trip and
   * its decisions per batch of commits instead of per commit. The first records after a quiet
   * spell, and `stepRecords` of them waiting, are taken at once; `idle()` does not wait.
   */
  stepEveryMs: number;
  /** Records waiting that make a step at once, spacing or not. */
  stepRecords: number;
  failed(phase: Phase, err: unknown): void;
  log: Logger;
  /** Run first inside each transaction that commits the check's work; throws to roll it back (region leases). */
  fence?: () => void;
  /** Region mode: the runner's shard: the others' records never reach the check, nor are read back. */
  shard?: SiteShard;
}

export type Phase = 'start' | 'records' | 'tick' | 'stop' | 'skip';

/**
 * One check's own pipeline (issue 10): its cursor, its steps (`feed.ts`: a bounded queue of
 * committed records, read back from the ledger when it overflowed or at start), retries. Every
 * check has one, so a slow check (face verification) delays only itself.
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
  private readonly feed: StepFeed;
  private work: Promise<void> = Promise.resolve();
  private draining = false;
  private stopped = false;
  private attempts = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private retried: Promise<void> = Promise.resolve();
  private retryDone: () => void = () => {};
  /** The check's transactions: on the state database, the fence (if any) proven first in each. */
  private readonly tx: { run<T>(fn: () => T): T };
  private readonly totalChanges: () => number;
  /** When the cursor was last written (monotonic ms). */
  private savedAt = -Infinity;
  /** When the last step began (monotonic ms), and the wake-up of the next one while spacing steps. */
  private steppedAt = -Infinity;
  private spacing: NodeJS.Timeout | undefined;
  /** Someone waits in `idle()`: steps are not spaced. */
  private urgent = 0;

  constructor(
    readonly check: AnyCheck,
    private readonly ledger: AnyLedgerStore,
    private readonly progress: CheckProgress,
    private readonly o: PipelineOptions,
  ) {
    this.feed = new StepFeed(ledger, { kinds: check.kinds, maxQueued: o.maxQueued, readBack: o.readBack, maxBatch: check.maxBatch, ...(o.shard ? { shard: o.shard } : {}) });
    this.tx = { run: (fn) => fencedTransaction(progress.db, o.fence, fn) };
    this.totalChanges = totalChangesOf(progress.db);
  }

  get queuedRecords(): number {
    return this.feed.queued;
  }

  get behind(): boolean {
    return this.feed.readingBack;
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

  /** Committed records, in commit order (see `StepFeed.take`). */
  take(records: StoredRecord[]): void {
    if (this.stopped) return;
    const taken = this.feed.take(records, this.draining);
    if (taken === 'queued') this.kick();
    else if (taken !== undefined) this.seenSeq = Math.max(this.seenSeq, taken);
  }

  /** Resolves when everything committed so far has been through the check (or it stopped). */
  async idle(): Promise<void> {
    this.urgent++;
    try {
      while (!this.stopped && (this.starting || this.draining || this.feed.waiting || this.retryTimer)) {
        this.kick();
        await this.work;
        // Failing: wait for the retry (a step that fails every attempt is skipped, so this ends).
        if (this.retryTimer) await this.retried;
      }
    } finally {
      this.urgent--;
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
    clearTimeout(this.spacing);
    this.spacing = undefined;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.retryDone();
    this.feed.clear();
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
    this.feed.reset(replayFrom, this.cursor);
    this.seenSeq = replayFrom;
  }

  private kick(): void {
    if (this.draining || this.stopped || this.starting || this.retryTimer) return;
    if (!this.feed.waiting) return;
    const wait = this.spaced();
    if (wait > 0) {
      this.spacing ??= setTimeout(() => {
        this.spacing = undefined;
        this.kick();
      }, wait);
      return;
    }
    this.draining = true;
    void this.serial(() => this.drain()).finally(() => {
      this.draining = false;
      if (!this.retryTimer && this.feed.waiting) this.kick();
    });
  }

  /** How long the next step waits for more commits to join it (0: now). */
  private spaced(): number {
    // A step's worth waiting (large commits come at high rates), a check behind, a read-back or a
    // waiter: no spacing. Spacing pays when commits are small (a few devices' messages each).
    if (this.urgent > 0 || this.feed.readingBack || this.feed.steps > 1 || this.feed.queued >= this.o.stepRecords) return 0;
    return Math.max(0, this.steppedAt + this.o.stepEveryMs - performance.now());
  }

  private async drain(): Promise<void> {
    while (!this.stopped) {
      // Spacing steps: end the drain; kick() (in the caller's finally) sets the wake-up.
      if (this.spaced() > 0) return;
      let step: Step | undefined;
      try {
        step = await this.feed.next();
      } catch (err) {
        // A read-back that failed (PostgreSQL unreachable): nothing was handed over; the same read
        // is made again after the back-off instead of at once.
        this.o.failed('records', err);
        this.scheduleRetry();
        return;
      }
      if (step === undefined || this.stopped) return;
      this.steppedAt = performance.now();
      try {
        const rest = await this.run(step);
        if (rest) this.feed.putBack(rest);
        this.attempts = 0;
      } catch (err) {
        this.o.failed('records', err);
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
    if (step.records.length === 0 || step.through <= this.feed.replayThrough) {
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
    const before = this.totalChanges();
    this.tx.run(() => {
      if (records.length > 0) check.onRecords(records, prepared);
      // Only a step that changed something needs its cursor beside it (and pays for the fsync).
      const t = performance.now();
      if (this.totalChanges() !== before || t - this.savedAt >= this.o.saveEveryMs) {
        this.progress.set('cursor', through);
        this.savedAt = t;
      }
    });
    this.cursor = this.seenSeq = through;
    return rest;
  }

  /** A step that failed every attempt: logged with its range and counted, and passed over. */
  private skip(step: Step, err: unknown): void {
    this.attempts = 0;
    this.o.failed('skip', err);
    this.o.log.error({ err, fromSeq: step.records[0]?.seq, through: step.through, records: step.records.length }, 'check skipped records after repeated failures');
    if (step.through > this.feed.replayThrough) {
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
}
