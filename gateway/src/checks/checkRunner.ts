import type { Logger } from 'pino';
import type { Ledger } from '../ledger/ledger.ts';
import type { StoredRecord } from '../ledger/types.ts';
import type { Check, CheckContext, CheckFactory } from './check.ts';

/**
 * Runs the checks beside the ingest path: records reach them after the ledger commit, in commit
 * order, one batch at a time (a slow check delays alerts, never acknowledgements). Failures are
 * logged and counted per check, never thrown back into ingest.
 */
export class CheckRunner {
  readonly checks: Check[];
  private queue: StoredRecord[][] = [];
  private draining: Promise<void> | null = null;
  private timer?: NodeJS.Timeout;
  private readonly log: Logger;
  private unsubscribe?: () => void;
  private stopped = false;

  constructor(private readonly ctx: CheckContext, factories: CheckFactory[], private readonly tickMs = 5000) {
    this.checks = factories.map((f) => f(ctx));
    this.log = ctx.logger.child({ component: 'checks' });
  }

  get<T extends Check>(name: string): T | undefined {
    return this.checks.find((c) => c.name === name) as T | undefined;
  }

  async start(ledger: Ledger): Promise<void> {
    // Subscribe first so nothing committed during the rebuild is missed; it waits in the queue.
    let rebuilding = true;
    this.unsubscribe = ledger.onCommitted((records) => {
      this.queue.push(records);
      if (!rebuilding) this.kick();
    });
    for (const c of this.checks) await c.start?.();
    rebuilding = false;
    this.kick();
    this.timer = setInterval(() => void this.tick(this.ctx.now()), this.tickMs);
    this.timer.unref();
  }

  /** Resolves once every record committed so far has been seen by every check. */
  async idle(): Promise<void> {
    for (;;) {
      while (this.draining || this.queue.length) {
        this.kick();
        await this.draining;
      }
      // Checks that finish records after onRecords returned (on a worker thread) say when they are done.
      await Promise.all(this.checks.map((c) => c.drained?.()));
      if (!this.draining && !this.queue.length) return;
    }
  }

  async tick(now: number): Promise<void> {
    await this.idle();
    for (const c of this.checks) {
      try {
        await c.tick?.(now);
      } catch (err) {
        this.log.error({ err, check: c.name }, 'check tick failed');
      }
    }
  }

  private kick(): void {
    if (this.draining || this.stopped) return;
    this.draining = this.drain().finally(() => { this.draining = null; if (this.queue.length) this.kick(); });
  }

  private async drain(): Promise<void> {
    while (this.queue.length) {
      const batch = this.queue.shift()!;
      for (const c of this.checks) {
        try {
          await c.onRecords(batch);
        } catch (err) {
          this.log.error({ err, check: c.name }, 'check failed on records');
        }
      }
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.unsubscribe?.();
    await this.idle();
    this.stopped = true;
    for (const c of this.checks) await c.stop?.();
  }
}
