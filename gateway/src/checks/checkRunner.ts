import type { Logger } from 'pino';
import type { AnyLedgerStore } from '../ledger/types.ts';
import type { AnyCheck, CheckContext, CheckFactory } from './check.ts';
import { CheckPipeline, type Phase } from './pipeline.ts';
import { CheckProgress } from './progress.ts';
import { siteShard, type Shard } from '../region/shards.ts';

export interface CheckRunnerOptions {
  /** Wall-clock period of `tick` (ms). */
  tickMs?: number;
  /**
   * Committed records held in memory per check. Beyond it the check's pipeline stops holding them
   * and reads them back from the ledger when the check gets there (the ledger is the spool: nothing
   * is lost, memory stays bounded whatever the backlog).
   */
  maxQueued?: number;
  /** Records read back from the ledger per step while catching up. */
  readBack?: number;
  /** First delay before a failed step is tried again (doubling, at most 30 s; default 1 s). */
  retryMs?: number;
  /** Attempts of one step before it is skipped, logged and counted (default 5). */
  maxAttempts?: number;
  /** Longest a check's cursor goes unwritten while its steps change nothing (default 1 s; see pipeline.ts). */
  saveEveryMs?: number;
  /** Least time between two steps of a check while small commits keep coming (default 10 ms), unless `stepRecords` (default 100) wait; see pipeline.ts. */
  stepEveryMs?: number;
  stepRecords?: number;
  /**
   * Region mode: one shard of the sites (region/shards.ts). The checks see only its sites' records,
   * restore and decide only for them, and keep their cursors under `<check>#<shard>`.
   */
  shard?: Shard;
  /**
   * Region mode: run inside every transaction that commits a check's work (its step, tick, cursor),
   * throwing when this instance no longer holds the checks' lease; the transaction then rolls back.
   */
  fence?: () => void;
}

export interface CheckRunnerState {
  /** The checks run on this instance (region mode: false where another instance holds their lease). */
  running: boolean;
  /** A check's start (restore) is still running. */
  starting: boolean;
  /** Last ledger seq every check has seen. */
  deliveredSeq: number;
  /** Committed records the slowest check has not yet been through. */
  lagRecords: number;
  /** Records held in memory, and whether some check reads the rest back from the ledger. */
  queued: number;
  readingBack: boolean;
  /** Per check: failures so far, its committed cursor and how far behind the ledger it is. */
  checks: Record<string, { failures: number; processedSeq: number; lagRecords: number }>;
}

/**
 * Runs the checks beside the ingest path (issue 10): each check has its own pipeline
 * (`pipeline.ts`) with a cursor in `check_progress`, moved in the same state.db transaction as the
 * alert changes of the records it covers. So every check restarts the same way — from its cursor,
 * the records after it handed over again — and raises exactly once without a bookkeeping of its
 * own; a slow check delays only its own alerts, never acknowledgements, sinks, a stop or the
 * other checks. Failures are retried (the check restored from its committed state first), counted
 * per check and phase (`sitegate_check_failures_total`), and never thrown into ingest.
 *
 * `stop()` does not drain: the step in hand finishes, and each check resumes from its cursor at the
 * next start.
 */
export class CheckRunner {
  checks: AnyCheck[] = [];
  private pipelines: CheckPipeline[] = [];
  private readonly options: CheckRunnerOptions;
  private timer?: NodeJS.Timeout;
  private readonly log: Logger;
  private readonly tickMs: number;
  private ledger?: AnyLedgerStore;
  private unsubscribe?: () => void;
  private starting: Promise<void> | null = null;
  private stopped = false;
  private readonly failures = new Map<string, number>();

  private readonly ctx: CheckContext;

  constructor(ctx: CheckContext, private readonly factories: CheckFactory[], options: CheckRunnerOptions | number = {}) {
    const o = typeof options === 'number' ? { tickMs: options } : options;
    this.options = o;
    if (o.shard) {
      const shard = siteShard(o.shard);
      ctx = { ...ctx, owns: shard.owns, shard };
    }
    this.ctx = o.fence ? { ...ctx, fence: o.fence } : ctx;
    this.tickMs = o.tickMs ?? 5000;
    this.log = ctx.logger.child({ component: 'checks' });
    this.build();
  }

  /** Every check and its pipeline new, as at a process start: each restores from its committed state. */
  private build(): void {
    const o = this.options;
    this.checks = this.factories.map((f) => f(this.ctx));
    const consumer = (name: string) => (o.shard ? `${name}#${o.shard.index}` : name);
    this.pipelines = this.checks.map((c) => new CheckPipeline(c, this.ctx.ledger, new CheckProgress(this.ctx.registry.db, consumer(c.name)), {
      maxQueued: o.maxQueued ?? 50_000,
      readBack: o.readBack ?? 5000,
      retryMs: o.retryMs ?? 1000,
      maxAttempts: o.maxAttempts ?? 5,
      saveEveryMs: o.saveEveryMs ?? 1000,
      stepEveryMs: o.stepEveryMs ?? 10,
      stepRecords: o.stepRecords ?? 100,
      failed: (phase, err) => this.failed(c, phase, err),
      log: this.log.child({ check: c.name }),
      ...(this.ctx.fence ? { fence: this.ctx.fence } : {}),
      ...(this.ctx.shard ? { shard: this.ctx.shard } : {}),
    }));
  }

  get<T extends AnyCheck>(name: string): T | undefined {
    return this.checks.find((c) => c.name === name) as T | undefined;
  }

  /**
   * Starts every check (restore, then the replay from its cursor) in the background: ingest and
   * sinks never wait for it (style.md). `started()` and `idle()` wait for it.
   */
  start(ledger: AnyLedgerStore): Promise<void> {
    // Started again after a stop (region mode: the checks' lease came back): fresh checks, as after a restart.
    if (this.stopped) this.build();
    this.stopped = false;
    this.ledger = ledger;
    // Subscribe first so nothing committed during the start is missed.
    this.unsubscribe = ledger.onCommitted((records) => {
      for (const p of this.pipelines) p.take(records);
    });
    this.starting = Promise.all(this.pipelines.map((p) => p.start())).then(() => undefined).finally(() => {
      this.starting = null;
    });
    this.timer = setInterval(() => void this.tick(this.ctx.now()), this.tickMs);
    this.timer.unref();
    return this.starting;
  }

  /** Resolves when every check's start (restore) has ended. */
  async started(): Promise<void> {
    await this.starting;
  }

  state(): CheckRunnerState {
    // Not running here: nothing of the ledger is this instance's to catch up with.
    const lastSeq = this.running ? this.ledger?.lastSeq ?? 0 : 0;
    const checks = Object.fromEntries(this.pipelines.map((p) => [p.check.name, {
      failures: this.failures.get(p.check.name) ?? 0,
      processedSeq: p.cursor,
      lagRecords: Math.max(0, lastSeq - p.seenSeq),
    }]));
    const seen = Math.min(lastSeq, ...this.pipelines.map((p) => p.seenSeq));
    return {
      running: this.running,
      starting: this.pipelines.some((p) => p.starting),
      deliveredSeq: seen,
      lagRecords: Math.max(0, lastSeq - seen),
      queued: this.pipelines.reduce((n, p) => n + p.queuedRecords, 0),
      readingBack: this.pipelines.some((p) => p.behind),
      checks,
    };
  }

  /**
   * Resolves once every record committed so far has been through every check, records the checks
   * appended meanwhile (face verdicts) included (or the runner stopped).
   */
  async idle(): Promise<void> {
    await this.starting;
    if (!this.running) return; // nothing runs here to wait for
    for (;;) {
      const before = this.ledger?.lastSeq ?? 0;
      await Promise.all(this.pipelines.map((p) => p.idle()));
      if (this.stopped) return;
      await this.ctx.ledger.drained();
      if ((this.ledger?.lastSeq ?? 0) === before) return;
    }
  }

  /** Time-triggered decisions: each check after the records committed so far have been through it. */
  async tick(now: number): Promise<void> {
    await this.starting;
    if (!this.running) return;
    await Promise.all(this.pipelines.map(async (p) => {
      await p.idle();
      await p.timeStep(now);
    }));
  }

  /** Logged and counted per check and phase (sitegate_check_failures_total); never thrown into ingest. */
  private failed(c: AnyCheck, phase: Phase, err: unknown): void {
    this.failures.set(c.name, (this.failures.get(c.name) ?? 0) + 1);
    this.ctx.metrics.checkFailures.inc({ check: c.name, phase });
    if (phase !== 'skip') this.log.error({ err, check: c.name, phase }, 'check failed');
  }

  /** Whether the checks run here (between start and stop). */
  get running(): boolean {
    return this.ledger !== undefined && !this.stopped;
  }

  /** Stops without draining the backlogs: each check resumes from its cursor at the next start. */
  async stop(): Promise<void> {
    if (!this.running) { // never started here (region mode: another instance runs the checks), or stopped
      this.stopped = true;
      return;
    }
    clearInterval(this.timer);
    this.unsubscribe?.();
    this.stopped = true;
    await Promise.all(this.pipelines.map((p) => p.stop()));
  }
}
