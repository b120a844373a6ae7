import type { Shard } from '../region/shards.ts';
import type { Reason } from '../errors.ts';

/**
 * The ledger is the system of record: every accepted message, appended once, in arrival order.
 * `seq` is its position; sinks keep a cursor into it, so the ledger is also their spool.
 */
export type RecordKind = 'checkin' | 'reading' | 'status' | 'snapshot' | 'wage_payment' | 'verdict' | 'alert';

export interface LedgerRecord {
  siteId: string;
  /** The device that sent it; for wage payments the string `payroll`. */
  deviceId: string;
  kind: RecordKind;
  /** The message's own id; with the dedupe namespace it identifies a message for exactly-once counting. */
  msgId: string;
  /** Dedupe key: records with an equal key are stored once (contract §1: deviceId + id). */
  dedupeKey: string;
  /** Event time, epoch ms. */
  ts: number;
  /** Arrival time, epoch ms. */
  receivedAt: number;
  /** Normalised payload (JSON-serialisable; photos replaced by their SHA-256). */
  body: Record<string, unknown>;
}

export interface StoredRecord extends LedgerRecord {
  seq: number;
}

/** A content-addressed evidence file (photo, snapshot) made durable before its record commits. */
export interface EvidenceFile {
  sha256: string;
  data: Uint8Array;
}

/**
 * A device's payload as it arrived over MQTT, handed to the ledger undecoded: the writer thread
 * decodes and validates it (ingest/validate.ts) next to the insert, so the main thread only
 * frames, authenticates and authorises (issue 11).
 */
export interface InboundPayload {
  /** `sites/{siteId}/devices/{deviceId}/{channel}`, already authorised: the writer reads the channel from it. */
  topic: string;
  /** The topic's site and device (its records carry them). */
  siteId: string;
  deviceId: string;
  payload: Uint8Array;
  /** Arrival time, epoch ms (also the "now" of the future-timestamp horizon). */
  receivedAt: number;
}

/** Why (part of) a payload was not stored; `error` is set when decoding failed on a bug (reason `internal`). */
export interface PayloadRejection {
  ref: string;
  reason: Reason;
  message: string;
  error?: string;
}

/** What became of one payload: each of its records committed, a duplicate, or rejected. */
export interface PayloadResult {
  /** Its records that were stored, with their seq, in seq order (the objects listeners get). */
  committed: StoredRecord[];
  duplicates: { ref: string; kind: RecordKind }[];
  rejected: PayloadRejection[];
}

export interface AppendResult {
  /** The record's position, or null when an equal dedupeKey was already stored. */
  seq: number | null;
}

/**
 * The ledger as the rest of the gateway uses it: what any implementation (SQLite here; PostgreSQL
 * for region mode next) must do, and what `ledgerContract.ts` proves of it. Its reads are
 * synchronous (SQLite in-process); consumers take `AnyLedgerStore` and await them, and the contract
 * suite awaits every call, so an implementation whose reads are asynchronous is held to the same
 * promises.
 */
export interface LedgerStore extends LedgerOf<'sync'> {}

/**
 * `LedgerStore` with its reads answered by promises: an engine whose reads leave the process
 * (PostgreSQL, `ledger/pg/`) offers this. The writes, listeners and close are the same; the
 * contract suite awaits every read, so both shapes are held to the same promises. `lastSeq` stays
 * synchronous: it is what this instance knows to be committed (its own commits and what it read).
 */
export type AsyncLedgerStore = LedgerOf<'async'>;

/** A read answered at once (the SQLite ledger, in-process) or later (PostgreSQL): consumers await it. */
export type MaybePromise<T> = T | Promise<T>;

/**
 * The ledger as its consumers use it (sinks, checks, live state, the API): both `LedgerStore`
 * (SQLite: reads answered at once) and `AsyncLedgerStore` (PostgreSQL: reads answered by promises)
 * satisfy it, and the type makes every consumer await its reads (issue 14). Awaiting a plain value
 * costs one microtask, so the SQLite path pays nothing that matters; the hot paths (`onCommitted`
 * listeners, queueing) take no reads and stay synchronous.
 */
export type AnyLedgerStore = LedgerOf<'maybe'>;

/** How a ledger answers its reads: at once, by a promise, or either (what consumers must accept). */
type Answered<M extends 'sync' | 'async' | 'maybe', T> = M extends 'sync' ? T : M extends 'async' ? Promise<T> : MaybePromise<T>;

/** The one list of a ledger's members, for the three ways of answering reads above. */
interface LedgerOf<M extends 'sync' | 'async' | 'maybe'> {
  readonly evidenceDir: string;
  /** Highest committed `seq` (on PostgreSQL: this instance's commits and what it read). */
  readonly lastSeq: number;
  /** Records waiting for, or in, a commit. */
  readonly backlog: number;
  /** Resolves only once the record is durable; `seq: null` for a duplicate of an earlier dedupe key. */
  append(record: LedgerRecord, files?: EvidenceFile[]): Promise<AppendResult>;
  appendMany(records: LedgerRecord[], files?: EvidenceFile[]): Promise<AppendResult[]>;
  /** Every committed, non-duplicate record once, in `seq` order, right after its commit. */
  onCommitted(listener: (records: StoredRecord[]) => void): () => void;
  /**
   * Committed records after `seq`, in seq order, at most `limit`: of `kinds` only, and with `shard`
   * (region mode) of that shard's sites only — the others are passed over by the ledger, not read.
   */
  readAfter(seq: number, limit: number, kinds?: RecordKind[], shard?: Shard): Answered<M, StoredRecord[]>;
  scan(kinds: RecordKind[], afterSeq?: number): Answered<M, Iterable<StoredRecord>>;
  bySiteKind(siteId: string, kind: Exclude<RecordKind, 'reading'>, from?: number, to?: number): Answered<M, StoredRecord[]>;
  paymentsOf(siteId: string, period: string): Answered<M, StoredRecord[]>;
  byWorker(siteId: string, kind: 'checkin' | 'verdict', workerId: string, from: number, to: number): Answered<M, StoredRecord[]>;
  hasCheckinPhoto(siteId: string, sha256: string): Answered<M, boolean>;
  /** A device's camera snapshots after the position (ts, seq), by arrival time then seq, at most `limit`. */
  snapshots(siteId: string, deviceId: string, after: { ts: number; seq: number }, limit: number): Answered<M, StoredRecord[]>;
  /** Whether a snapshot of the site has this SHA-256 (snapshots are identified by it, contract §1). */
  hasSnapshot(siteId: string, sha256: string): Answered<M, boolean>;
  countByKind(): Answered<M, Record<string, number>>;
  /** Resolves once nothing is pending or in flight. */
  drained(): Promise<void>;
  /** Commits what is pending, then closes; appends after it are refused. */
  close(): Promise<void>;
}

/**
 * A ledger that decodes device payloads itself, on its writer's thread (ledger.ts). `done` is
 * called once, after the commit of the payload's group, like `appendMany`'s promise; rejections
 * are part of the result, not errors (an error means nothing could be made durable). A callback,
 * not a promise: this runs for every message a device publishes (issue 11).
 */
export interface PayloadLedger {
  submitPayload(p: InboundPayload, done: Done<PayloadResult>): void;
}

/** A Node-style completion: an error, or null and the result. */
export type Done<T> = (err: Error | null, result?: T) => void;
