import type { DeviceKind, Role, SiteBody, TokenScope, WorkerBody } from '../../../schemas/src/api.ts';
import type { AlertEvent, AlertRecord, AlertView } from '../alerts/alertRecord.ts';
import type { AlertQuery } from '../alerts/alertList.ts';
import type { HandlingAction } from '../alerts/alertStore.ts';
import type { AuditEntry } from '../audit/auditTrail.ts';
import type { AlertSignal, RaiseSignal } from '../checks/types.ts';
import type { Device, Site, Token, Worker } from '../registry/registry.ts';
import type { DeadLetter } from '../sinks/sinkState.ts';

/**
 * The state the gateway keeps besides the ledger, as the rest of the gateway uses it: each
 * interface lists the methods called from outside its SQLite class, nothing more. What any
 * implementation (SQLite in `state.db` today; PostgreSQL for region mode, issue 14) must do is
 * what `stateContract.ts` proves of it (style.md "Abstract suites").
 *
 * Calls are synchronous, as every caller uses them today (a check's step runs its alert changes
 * and its cursor inside one synchronous transaction); the contract suite awaits every call
 * outside a transaction, so an implementation answering with promises is held to the same
 * promises there. `transaction` is the one shape an asynchronous engine has to settle first:
 * see state/README.md.
 */

/** The alert lifecycle (contract §5, §6): signals from checks, people's actions, timers. */
export interface Alerts {
  /** Hears every event once the change that caused it is committed (MQTT, live feed, ledger); never after a rollback. */
  onEvent(listener: (e: AlertEvent) => void): () => void;
  /** Hears every event inside the change's transaction: what it writes commits or rolls back with it (the webhook outbox). */
  onEventInTransaction(listener: (e: AlertEvent) => void): () => void;
  apply(signal: AlertSignal): AlertRecord | undefined;
  /**
   * Makes the store agree with a check's facts for one key: `desired` is raised once (an alert of
   * the key opened at the same time, in any state, counts as raised); `exclusive` withdraws the
   * latest alert of the key opened at another time, or any when nothing is desired.
   */
  reconcile(key: string, desired: RaiseSignal | null, o: { exclusive: boolean; reason?: string }): AlertRecord | undefined;
  /** Many changes of one decision in one transaction; events after its commit. */
  atomically<T>(fn: () => T): T;
  /** The alert of the key being handled (open, acked, rectified). */
  active(key: string): AlertRecord | undefined;
  get(id: string): AlertRecord | undefined;
  /** The latest alert of a key in any state, withdrawn ones not. */
  lastOfKey(key: string): AlertRecord | undefined;
  /** A person acts on an alert (contract §6): a `conflict` error for a transition its state does not allow. */
  handle(id: string, action: HandlingAction, by: string, o?: { note?: string; photos?: string[] }): AlertRecord;
  /** A linkage command sent for the alert (contract §7): an entry in its history and the audit trail. */
  linkage(id: string, note: string, data: Record<string, unknown>): void;
  /** Fires the timers that are due (escalation, reminders); returns the alerts that moved up a level. */
  escalateDue(now?: number): AlertRecord[];
  view(a: AlertRecord): AlertView;
  /** Sorted by openedAt then id; `next` is the cursor of the following page. */
  list(q: AlertQuery): { items: AlertRecord[]; next?: string };
  countOpen(siteId: string): number;
}

/** The hash-chained audit trail (全程留痕); `verify` recomputes the chain from its genesis. */
export interface Audit {
  append(type: string, subject: string, data: Record<string, unknown>, at: number): AuditEntry;
  bySubject(subject: string): AuditEntry[];
  /** Entries after `seq` whose type starts with `typePrefix`, oldest first. */
  after(seq: number, typePrefix: string, limit?: number): AuditEntry[];
  head(): { seq: number; hash: string };
  verify(): { ok: true; entries: number; head: string } | { ok: false; brokenAt: number; reason: string };
}

/**
 * Sites, workers, devices and API tokens (contract §2). Secrets are kept only as hashes: device
 * secrets as scrypt, API tokens as SHA-256, wage cards as a keyed hash plus their last 4 digits.
 */
export interface SiteRegistry {
  putSite(siteId: string, body: SiteBody): { site: Site; created: boolean };
  site(siteId: string): Site | undefined;
  listSites(): Site[];
  putWorker(siteId: string, workerId: string, body: WorkerBody): { worker: Worker; created: boolean; sharedWith: string[] };
  worker(siteId: string, workerId: string): Worker | undefined;
  listWorkers(siteId: string): Worker[];
  /** The keyed hash and last 4 digits of a card number (wage payments are matched by it). */
  cardFingerprint(card: string): { hash: string; last4: string };
  /** `secret` only when the device is new: it is shown once and kept nowhere. */
  putDevice(siteId: string, deviceId: string, body: { kind: DeviceKind; intervalS?: number }): Promise<{ device: Device; secret?: string }>;
  rotateSecret(deviceId: string): Promise<string>;
  device(deviceId: string): Device | undefined;
  listDevices(siteId: string): Device[];
  verifyDevice(deviceId: string, secret: string): Promise<Device | null>;
  createToken(t: { role: Role; scope?: TokenScope; expiresAt?: number; label?: string }, fixed?: { id: string; token: string }): { id: string; token: string };
  revokeToken(id: string): boolean;
  hasToken(id: string): boolean;
  /** The token's grant, or null when unknown, revoked or expired. */
  authenticateToken(token: string): Token | null;
}

/** One consumer's durable counters (a check's cursor, a per-site "decided through"), by scope. */
export interface Progress {
  get(scope: string): number | undefined;
  set(scope: string, value: number): void;
  remove(scope: string): void;
  all(): Map<string, number>;
}

/** Each sink's cursor into the ledger and the records it refused as bad data. */
export interface SinkStore {
  /** 0 for a sink that never confirmed a batch. */
  cursor(sink: string): number;
  saveCursor(sink: string, seq: number, at: number): void;
  /** Keeps a refused record once per (sink, seq); returns whether it was new. */
  addDeadLetter(sink: string, seq: number, line: string, error: string, at: number): boolean;
  deadLetterCount(sink: string): number;
  /** Newest first. */
  deadLetters(limit: number): DeadLetter[];
}

/** The state stores over one database, and the transaction that spans them. */
export interface StateStore {
  readonly alerts: Alerts;
  readonly audit: Audit;
  readonly registry: SiteRegistry;
  readonly sinkState: SinkStore;
  /** The progress of one consumer (a check by its name, `alert-ledger`, `linkage`). */
  progress(consumer: string): Progress;
  /**
   * Runs `fn` in one transaction over every store above: all of its changes commit together or
   * none does, and alert events (`Alerts.onEvent`) go out only after the outermost commit. A
   * nested call that throws takes back only its own changes and events.
   */
  transaction<T>(fn: () => T): T;
  /** Closes the storage; the store is not used after it. */
  close(): void;
}
