import type { Logger } from 'pino';
import type { Clock } from '../clock/clock.ts';
import type { AnyLedgerStore, RecordKind } from '../ledger/types.ts';
import type { LedgerReads } from '../ledger/ledgerQueries.ts';
import type { ReportReader } from '../ledger/reportReader.ts';
import type { StoredRecord } from '../ledger/types.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { Registry } from '../registry/registry.ts';
import type { FaceRegistry } from '../registry/faceRegistry.ts';
import type { LiveState } from '../state/liveState.ts';
import type { SiteShard } from '../region/shards.ts';
import type { SqlDb } from '../state/sqlDb.ts';
import { Transactions } from '../state/transactions.ts';
import type { Alerts, Audit } from '../state/types.ts';

/** What every check may use, handed in as one object. */
export interface CheckContext {
  registry: Registry;
  ledger: AnyLedgerStore;
  alerts: Alerts;
  audit: Audit;
  live: LiveState;
  logger: Logger;
  metrics: Metrics;
  /** Wall clock (fake in tests). */
  now: Clock;
  dataDir: string;
  modelsDir?: string;
  /** Month-wide reads on their own thread (monthly decisions); without it they run inline (unit tests). */
  reports?: ReportReader;
  /**
   * The ledger reads a check makes inside its synchronous step (keystaff's day cache): the SQLite
   * ledger answers them itself; a ledger whose reads answer later (PostgreSQL) comes with these
   * (ledger/pg/pgSyncReads.ts). Default: `ledger`.
   */
  stepReads?: LedgerReads;
  /**
   * Region mode with shards (region/shards.ts): whether a site is this runner's. A check restores
   * and decides for these sites only; records of the others never reach it. Default: every site.
   */
  owns?: (siteId: string) => boolean;
  /** Region mode with shards: which one this runner is (its `owns` is the one above). */
  shard?: SiteShard;
  /**
   * Region mode: proves inside a transaction that this instance still holds the checks' lease
   * (region/duties.ts); throws, rolling the transaction back, when it does not. Every transaction
   * a check opens goes through `checkTransaction`, which runs it first.
   */
  fence?: () => void;
  /** Enrolled faces and the face-analysis worker pool (face verification). */
  faces?: FaceRegistry;
}

/** What `prepare` may say besides its own result. */
export interface Prepared {
  /**
   * It took the batch only up to this seq (a hazard settings change: what came before is applied
   * and snapshotted under the old limits first); the rest comes again in the next step.
   */
  through?: number;
}

/**
 * A check (style.md, after Zigbee2MQTT's extensions): a small lifecycle the runner
 * (`checkRunner.ts`) drives. The runner owns the check's progress: one ledger cursor per check,
 * moved in the same state.db transaction as the alert changes and state the check makes for the
 * records it covers, replayed from on restart. A check therefore only says what records mean:
 *
 *   prepare(batch)      async work outside any transaction (a worker thread, the face pool, derived
 *                       ledger records appended idempotently by dedupe key);
 *   onRecords(batch, p) synchronous: alert reconciles and the check's own state rows, committed
 *                       with the cursor — a crash before the commit replays the batch, after it never;
 *   tick(now)           synchronous time-triggered decisions, one transaction;
 *   decide(now)         asynchronous ones (month-wide reads on the report thread) that commit their
 *                       own idempotent reconciles.
 */
export interface Check<P extends Prepared | void = void> {
  readonly name: string;
  /** Record kinds it reads (default: all); the cursor passes over the others. */
  readonly kinds?: readonly RecordKind[];
  /** Most records handed over in one step (default: whatever is waiting, up to the runner's read-back chunk). */
  readonly maxBatch?: number;
  /** Where to begin without a saved cursor (a check new to a gateway with history); default 0, all of it. */
  firstCursor?(lastSeq: number): number;
  /**
   * Restores what it keeps in memory (at the first start, and again before a retry after a failure).
   * A check restoring a snapshot older than `cursor` returns the snapshot's seq: the runner then
   * hands it the records in between through `prepare(…, true)` only (their effects are committed).
   */
  start?(cursor: number): Promise<number | void> | number | void;
  /** Asynchronous part of a step. `replay`: records at or below the cursor, to rebuild state only. */
  prepare?(records: StoredRecord[], replay: boolean): Promise<P> | P;
  /** Synchronous part of a step, in one state transaction with the cursor. */
  onRecords(records: StoredRecord[], prepared: P | undefined): void;
  /** Time-triggered decisions on the injected wall clock, in one state transaction. */
  tick?(now: number): void;
  /** Time-triggered decisions that wait on something (the report thread); run after `tick`. */
  decide?(now: number): Promise<void>;
  /** The runner has stopped feeding it; release threads, save snapshots. */
  stop?(): Promise<void> | void;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyCheck = Check<any>;
export type CheckFactory = (ctx: CheckContext) => AnyCheck;

/**
 * A transaction of a check's own (a snapshot, a monthly decision, rows saved at stop), on the state
 * database like the runner's steps, with the region fence proven first: an instance that lost the
 * checks' lease commits nothing more, whatever it was in the middle of.
 */
export function checkTransaction<T>(ctx: Pick<CheckContext, 'registry' | 'fence'>, fn: () => T): T {
  return fencedTransaction(ctx.registry.db, ctx.fence, fn);
}

/** A transaction on the state database with `fence` (if any) proven first in it (the runner's steps use it too). */
export function fencedTransaction<T>(db: SqlDb, fence: (() => void) | undefined, fn: () => T): T {
  return Transactions.of(db).run(fence ? () => { fence(); return fn(); } : fn);
}
