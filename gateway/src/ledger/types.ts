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

export interface AppendResult {
  /** The record's position, or null when an equal dedupeKey was already stored. */
  seq: number | null;
}
