import type Database from 'better-sqlite3';
import type { MaybePromise, RecordKind, StoredRecord } from './types.ts';

/**
 * The reads the month reports are computed from: the ledger itself, a reader on another thread
 * (reportReader.ts), or PostgreSQL — answered at once or by a promise, so the reports await them.
 */
export interface LedgerReads {
  bySiteKind(siteId: string, kind: Exclude<RecordKind, 'reading'>, from?: number, to?: number): MaybePromise<StoredRecord[]>;
  paymentsOf(siteId: string, period: string): MaybePromise<StoredRecord[]>;
  /** One worker's check-ins or verdicts at a site with event time in [from, to), by event time. */
  byWorker(siteId: string, kind: 'checkin' | 'verdict', workerId: string, from: number, to: number): MaybePromise<StoredRecord[]>;
}

export interface Row {
  seq: number; dedupe_key: string; site_id: string; device_id: string; kind: RecordKind;
  msg_id: string; ts: number; received_at: number; body: string;
}

export const toStored = (r: Row): StoredRecord => ({
  seq: r.seq, dedupeKey: r.dedupe_key, siteId: r.site_id, deviceId: r.device_id, kind: r.kind,
  msgId: r.msg_id, ts: r.ts, receivedAt: r.received_at, body: JSON.parse(r.body),
});

/**
 * The indexed report reads on one read-only connection (the main thread's, or the report
 * reader's on its own thread). The expressions match the expression indexes of schema.ts
 * exactly, so SQLite uses them.
 */
export class LedgerQueries implements LedgerReads {
  private readonly siteKind: Database.Statement;
  private readonly payments: Database.Statement;
  private readonly photo: Database.Statement;
  private readonly worker: Record<'checkin' | 'verdict', Database.Statement>;
  private readonly snapshotPage: Database.Statement;
  private readonly snapshotHash: Database.Statement;

  constructor(db: Database.Database) {
    this.siteKind = db.prepare('SELECT * FROM records WHERE site_id = ? AND kind = ? AND ts >= ? AND ts < ? ORDER BY ts, seq');
    this.payments = db.prepare("SELECT * FROM records WHERE site_id = ? AND kind = 'wage_payment' AND json_extract(body, '$.period') = ? ORDER BY ts, seq");
    const byWorker = (kind: string) => db.prepare(`SELECT * FROM records WHERE site_id = ? AND kind = '${kind}' AND json_extract(body, '$.workerId') = ? AND ts >= ? AND ts < ? ORDER BY ts, seq`);
    this.worker = { checkin: byWorker('checkin'), verdict: byWorker('verdict') };
    this.photo = db.prepare("SELECT 1 FROM records WHERE site_id = ? AND kind = 'checkin' AND json_extract(body, '$.photoSha256') = ? LIMIT 1");
    this.snapshotPage = db.prepare("SELECT * FROM records WHERE site_id = ? AND device_id = ? AND kind = 'snapshot' AND (ts > ? OR (ts = ? AND seq > ?)) ORDER BY ts, seq LIMIT ?");
    this.snapshotHash = db.prepare("SELECT 1 FROM records WHERE site_id = ? AND kind = 'snapshot' AND msg_id = ? LIMIT 1");
  }

  snapshots(siteId: string, deviceId: string, after: { ts: number; seq: number }, limit: number): StoredRecord[] {
    return (this.snapshotPage.all(siteId, deviceId, after.ts, after.ts, after.seq, limit) as Row[]).map(toStored);
  }

  hasSnapshot(siteId: string, sha256: string): boolean {
    return this.snapshotHash.get(siteId, sha256) !== undefined;
  }

  bySiteKind(siteId: string, kind: Exclude<RecordKind, 'reading'>, from = 0, to = Number.MAX_SAFE_INTEGER): StoredRecord[] {
    return (this.siteKind.all(siteId, kind, from, to) as Row[]).map(toStored);
  }

  paymentsOf(siteId: string, period: string): StoredRecord[] {
    return (this.payments.all(siteId, period) as Row[]).map(toStored);
  }

  hasCheckinPhoto(siteId: string, sha256: string): boolean {
    return this.photo.get(siteId, sha256) !== undefined;
  }

  byWorker(siteId: string, kind: 'checkin' | 'verdict', workerId: string, from: number, to: number): StoredRecord[] {
    return (this.worker[kind].all(siteId, workerId, from, to) as Row[]).map(toStored);
  }
}

