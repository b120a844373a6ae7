import type { Logger } from 'pino';
import type { Clock } from '../clock/clock.ts';
import type { AlertStore } from '../alerts/alertStore.ts';
import type { AuditTrail } from '../audit/auditTrail.ts';
import type { LedgerStore } from '../ledger/types.ts';
import type { ReportReader } from '../ledger/reportReader.ts';
import type { StoredRecord } from '../ledger/types.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { Registry } from '../registry/registry.ts';
import type { FaceRegistry } from '../registry/faceRegistry.ts';
import type { LiveState } from '../state/liveState.ts';

/** What every check may use, handed in as one object. */
export interface CheckContext {
  registry: Registry;
  ledger: LedgerStore;
  alerts: AlertStore;
  audit: AuditTrail;
  live: LiveState;
  logger: Logger;
  metrics: Metrics;
  /** Wall clock (fake in tests). */
  now: Clock;
  dataDir: string;
  modelsDir?: string;
  /** Month-wide reads on their own thread (monthly decisions); without it they run inline (unit tests). */
  reports?: ReportReader;
  /** Enrolled faces and the face-analysis worker pool (face verification). */
  faces?: FaceRegistry;
}

/**
 * A check: a small lifecycle (style.md, after Zigbee2MQTT's extensions). The runner feeds it
 * every committed ledger record after it is durable (off the MQTT hot path) and ticks it on the
 * wall clock for time-triggered decisions; the check hands alert signals to `ctx.alerts`.
 */
export interface Check {
  readonly name: string;
  /** Rebuild state from the ledger (restart) before live records arrive. */
  start?(): Promise<void> | void;
  onRecords(records: StoredRecord[]): Promise<void> | void;
  /**
   * For a check that finishes records after onRecords returned (on a worker thread): resolves
   * when it has, so that the runner's idle() still means "every committed record is processed".
   */
  drained?(): Promise<void>;
  /**
   * For a check that evaluates records after onRecords returned or replays at start: the last
   * ledger seq whose effects it has applied (/readyz reports how far behind it is).
   */
  processedThrough?(): number;
  /** Called every few seconds with the wall clock (watermarks, deadlines, liveness). */
  tick?(now: number): Promise<void> | void;
  stop?(): Promise<void> | void;
}

export type CheckFactory = (ctx: CheckContext) => Check;
