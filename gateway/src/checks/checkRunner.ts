import type { Logger } from 'pino';
import type { LedgerStore } from '../ledger/types.ts';
import type { StoredRecord } from '../ledger/types.ts';
import type { Check, CheckContext, CheckFactory } from './check.ts';

export interface CheckRunnerOptions {
  /** Wall-clock period of `tick` (ms). */
  tickMs?: number;
  /**
   * Committed records held in memory for the checks. Beyond it the runner stops holding them and
   * reads them back from the ledger when the checks get there (the ledger is the spool: nothing is
   * lost, memory stays bounded whatever the backlog).
   */
  maxQueued?: number;
  /** Records read back from the ledger per step while catching up. */
  readBack?: number;
}

export interface CheckRunnerState {
  /** The checks' start (restore, replay) is still running; records wait for it. */
  starting: boolean;
  /** Last ledger seq handed to every check. */
  deliveredSeq: number;
  /** Committed records not yet handed to the checks. */
  lagRecords: number;
  /** Records held in memory, and whether the rest are read back from the ledger. */
  queued: number;
  readingBack: boolean;
  /** Per check: failures so far, and how far it is when it says (e.g. hazard, evaluating on a worker and replaying at start). */
  checks: Record<string, { failures: number; processedSeq?: number; lagRecords?: number }>;
}

/**
 * Runs the checks beside the ingest path: records reach them after the ledger commit, in commit
 * order, one batch at a time (a slow check delays alerts, never acknowledgements, sinks or the
 * start). Failures are logged and counted per check, never thrown back into ingest.
 *
 * Back-pressure without loss (issue 15): a check may make `onRecords` wait (the hazard check does
 * while its worker is behind); the runner then holds at most `maxQueued` records and leaves the
 * rest in the ledger, reading them back in order when the checks catch up. `stop()` does not drain
 * the backlog: it lets the batch in hand finish and stops the checks, which resume from their own
 * cursors (snapshot + replay, saved progress) at the next start.
 */
export class CheckRunner {
  readonly checks: Check[];
  private queue: StoredRecord[][] = [];
  private queued = 0;
  /** Highest seq queued or read back: the ledger holds everything after it that is not queued. */
  private tailSeq = 0;
  private deliveredSeq = 0;
  /** Committed records were left in the ledger: read them back once the queue is empty. */
  private readingBack = false;
  private draining: Promise<void> | null = null;
  private starting: Promise<void> | null = null;
  private timer?: NodeJS.Timeout;
  private readonly log: Logger;
  private readonly tickMs: number;
  private readonly maxQueued: number;
  private readonly readBackChunk: number;
  private ledger?: LedgerStore;
  private unsubscribe?: () => void;
  private stopped = false;
  private readonly failures = new Map<string, number>();

  constructor(private readonly ctx: CheckContext, factories: CheckFactory[], options: CheckRunnerOptions | number = {}) {
    const o = typeof options === 'number' ? { tickMs: options } : options;
    this.tickMs = o.tickMs ?? 5000;
    this.maxQueued = o.maxQueued ?? 50_000;
    this.readBackChunk = o.readBack ?? 5000;
    this.checks = factories.map((f) => f(ctx));
    this.log = ctx.logger.child({ component: 'checks' });
  }

  get<T extends Check>(name: string): T | undefined {
    return this.checks.find((c) => c.name === name) as T | undefined;
  }

  /**
   * Starts the checks (restore, replay) and then feeds them. Callers need not wait for it: records
   * committed meanwhile wait in the queue or the ledger (style.md: ingest and sinks never wait for
   * a check's replay). `idle()` waits for it.
   */
  start(ledger: LedgerStore): Promise<void> {
    this.ledger = ledger;
    this.tailSeq = this.deliveredSeq = ledger.lastSeq;
    // Subscribe first so nothing committed during the start is missed.
    this.unsubscribe = ledger.onCommitted((records) => this.take(records));
    this.starting = (async () => {
      for (const c of this.checks) {
        if (this.stopped) return;
        try {
          await c.start?.();
        } catch (err) {
          this.failed(c, 'start', err);
        }
      }
    })().finally(() => {
      this.starting = null;
      this.kick();
    });
    this.timer = setInterval(() => void this.tick(this.ctx.now()), this.tickMs);
    this.timer.unref();
    return this.starting;
  }

  /** Resolves when the checks' start (restore, replay) has ended. */
  async started(): Promise<void> {
    await this.starting;
  }

  state(): CheckRunnerState {
    const lastSeq = this.ledger?.lastSeq ?? 0;
    const checks = Object.fromEntries(this.checks.map((c) => {
      const seq = c.processedThrough?.();
      const failures = this.failures.get(c.name) ?? 0;
      return [c.name, seq === undefined ? { failures } : { failures, processedSeq: seq, lagRecords: Math.max(0, lastSeq - seq) }];
    }));
    // The runner hands records on from where the ledger stood at start; a check still replaying
    // what came before (hazard) is behind by its own count: the larger one is how far behind.
    const behind = Math.max(0, lastSeq - this.deliveredSeq, ...Object.values(checks).map((c) => c.lagRecords ?? 0));
    return {
      starting: this.starting !== null,
      deliveredSeq: this.deliveredSeq,
      lagRecords: behind,
      queued: this.queued,
      readingBack: this.readingBack,
      checks,
    };
  }

  /** Resolves once every record committed so far has been seen by every check (or the runner stopped). */
  async idle(): Promise<void> {
    for (;;) {
      await this.starting;
      while (!this.stopped && (this.draining || this.queue.length || this.readingBack)) {
        this.kick();
        await this.draining;
      }
      // Checks that finish records after onRecords returned (on a worker thread) say when they are done.
      await Promise.all(this.checks.map((c) => c.drained?.()));
      if (this.stopped || (!this.starting && !this.draining && !this.queue.length && !this.readingBack)) return;
    }
  }

  async tick(now: number): Promise<void> {
    await this.idle();
    if (this.stopped) return;
    for (const c of this.checks) {
      try {
        await c.tick?.(now);
      } catch (err) {
        this.failed(c, 'tick', err);
      }
    }
  }

  /** Logged and counted per check and phase (sitegate_check_failures_total); never thrown into ingest. */
  private failed(c: Check, phase: 'start' | 'records' | 'tick' | 'stop', err: unknown): void {
    this.failures.set(c.name, (this.failures.get(c.name) ?? 0) + 1);
    this.ctx.metrics.checkFailures.inc({ check: c.name, phase });
    this.log.error({ err, check: c.name, phase }, 'check failed');
  }

  /** Committed records: queued while there is room, else left in the ledger to be read back. */
  private take(records: StoredRecord[]): void {
    if (this.stopped || records.length === 0) return;
    if (records[records.length - 1]!.seq <= this.tailSeq) return; // read back already
    if (this.readingBack || this.queued + records.length > this.maxQueued) {
      this.readingBack = true;
      return;
    }
    const fresh = records[0]!.seq > this.tailSeq ? records : records.filter((r) => r.seq > this.tailSeq);
    this.queue.push(fresh);
    this.queued += fresh.length;
    this.tailSeq = fresh[fresh.length - 1]!.seq;
    this.kick();
  }

  /** The next batch: from the queue, else (after an overflow) from the ledger up to what is committed. */
  private next(): StoredRecord[] | undefined {
    const batch = this.queue.shift();
    if (batch !== undefined) {
      this.queued -= batch.length;
      return batch;
    }
    if (!this.readingBack || !this.ledger) return undefined;
    const lastSeq = this.ledger.lastSeq;
    const chunk = this.ledger.readAfter(this.tailSeq, this.readBackChunk).filter((r) => r.seq <= lastSeq);
    if (chunk.length > 0) this.tailSeq = chunk[chunk.length - 1]!.seq;
    // Caught up: everything committed so far has been read; live records are queued again.
    if (this.tailSeq >= lastSeq) this.readingBack = false;
    return chunk.length > 0 ? chunk : undefined;
  }

  private kick(): void {
    if (this.draining || this.stopped || this.starting) return;
    this.draining = this.drain().finally(() => {
      this.draining = null;
      if (this.queue.length || this.readingBack) this.kick();
    });
  }

  private async drain(): Promise<void> {
    for (let batch = this.next(); batch !== undefined && !this.stopped; batch = this.stopped ? undefined : this.next()) {
      for (const c of this.checks) {
        try {
          await c.onRecords(batch);
        } catch (err) {
          this.failed(c, 'records', err);
        }
      }
      this.deliveredSeq = batch[batch.length - 1]!.seq;
    }
  }

  /**
   * Stops without draining the backlog: the batch in hand finishes, the checks stop where they are
   * (each resumes from its cursor at the next start), so a stop takes as long as one batch.
   */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.unsubscribe?.();
    this.stopped = true;
    this.queue = [];
    this.queued = 0;
    for (const c of this.checks) {
      try {
        await c.stop?.();
      } catch (err) {
        this.failed(c, 'stop', err);
      }
    }
    await this.starting;
    await this.draining;
  }
}
