import type { AnyLedgerStore } from '../ledger/types.ts';
import type { AnyCheck, CheckContext, CheckFactory } from './check.ts';
import { CheckRunner, type CheckRunnerState } from './checkRunner.ts';

/** What the rest of the gateway asks of the checks, whether one runner or one per shard. */
export interface Checks {
  readonly running: boolean;
  state(): CheckRunnerState;
  idle(): Promise<void>;
  tick(now: number): Promise<void>;
  started(): Promise<void>;
  get<T extends AnyCheck>(name: string): T | undefined;
  stop(): Promise<void>;
}

/**
 * Region mode: the sites in `shards` shards (shards.ts), a check runner for each, each started
 * where its shard's lease is (region/duties.ts, duty `checks#<shard>`) and stopped when it goes.
 * An instance runs the runners of the shards it holds; the others are built but idle. Their
 * state reads as one: a check's lag is its slowest running shard's.
 */
export class ShardedChecks implements Checks {
  readonly runners: CheckRunner[];

  constructor(ctx: CheckContext, factories: CheckFactory[], o: { shards: number; fence: (shard: number) => () => void }) {
    this.runners = Array.from({ length: o.shards }, (_, index) =>
      new CheckRunner(ctx, factories, { shard: { index, of: o.shards }, fence: o.fence(index) }));
  }

  get running(): boolean {
    return this.runners.some((r) => r.running);
  }

  start(shard: number, ledger: AnyLedgerStore): Promise<void> {
    return this.runners[shard]!.start(ledger);
  }

  stopShard(shard: number): Promise<void> {
    return this.runners[shard]!.stop();
  }

  state(): CheckRunnerState {
    const states = this.runners.filter((r) => r.running).map((r) => r.state());
    if (states.length === 0) return this.runners[0]!.state(); // nothing runs here: no lag, `running: false`
    const checks: CheckRunnerState['checks'] = {};
    for (const s of states) {
      for (const [name, c] of Object.entries(s.checks)) {
        const had = checks[name];
        checks[name] = had
          ? { failures: had.failures + c.failures, processedSeq: Math.min(had.processedSeq, c.processedSeq), lagRecords: Math.max(had.lagRecords, c.lagRecords) }
          : { ...c };
      }
    }
    return {
      running: true,
      starting: states.some((s) => s.starting),
      deliveredSeq: Math.min(...states.map((s) => s.deliveredSeq)),
      lagRecords: Math.max(...states.map((s) => s.lagRecords)),
      queued: states.reduce((n, s) => n + s.queued, 0),
      readingBack: states.some((s) => s.readingBack),
      checks,
    };
  }

  async idle(): Promise<void> {
    await Promise.all(this.runners.map((r) => r.idle()));
  }

  async tick(now: number): Promise<void> {
    await Promise.all(this.runners.map((r) => r.tick(now)));
  }

  async started(): Promise<void> {
    await Promise.all(this.runners.map((r) => r.started()));
  }

  /** The check of the first shard running here (tests and stats reach a check by name). */
  get<T extends AnyCheck>(name: string): T | undefined {
    return (this.runners.find((r) => r.running) ?? this.runners[0]!).get<T>(name);
  }

  async stop(): Promise<void> {
    await Promise.all(this.runners.map((r) => r.stop()));
  }
}
