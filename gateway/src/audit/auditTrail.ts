import crypto from 'node:crypto';
import type { SqlDb, SqlStatement } from '../state/sqlDb.ts';
import { statementCache } from '../util/statements.ts';
import type { Audit } from '../state/types.ts';

/**
 * The tamper-evident history (全程留痕): an append-only log in which every entry carries the
 * SHA-256 of the previous entry's hash and its own canonical content, so changing, removing or
 * reordering any entry breaks every hash after it. `verify()` recomputes the chain end to end.
 *
 *   hash_n = SHA-256( hash_{n-1} ‖ "\n" ‖ canonicalJSON({seq, at, type, subject, data}) )
 *   hash_0 = SHA-256("sitegate audit trail v1")
 */
export interface AuditEntry {
  seq: number;
  at: number;
  type: string;
  subject: string;
  data: Record<string, unknown>;
  prevHash: string;
  hash: string;
}

export const GENESIS = crypto.createHash('sha256').update('sitegate audit trail v1').digest('hex');

/** JSON with object keys sorted at every level: the same content always hashes the same. */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o).filter((k) => o[k] !== undefined).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
}

export function entryHash(prevHash: string, e: Pick<AuditEntry, 'seq' | 'at' | 'type' | 'subject' | 'data'>): string {
  return crypto.createHash('sha256').update(`${prevHash}\n${canonicalJson({ seq: e.seq, at: e.at, type: e.type, subject: e.subject, data: e.data })}`).digest('hex');
}

export class AuditTrail implements Audit {
  /** Statements compiled once (alert-heavy loads call these per signal). */
  private readonly sql: (text: string) => SqlStatement;

  private readonly db: SqlDb;
  private readonly lastStmt: SqlStatement;
  private readonly insert: SqlStatement;

  constructor(db: SqlDb) {
    this.db = db;
    this.sql = statementCache(db);
    this.lastStmt = db.prepare('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1');
    this.insert = db.prepare('INSERT INTO audit_log (seq, at, type, subject, data, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)');
  }

  /**
   * The chain's head, read from the database every time rather than cached: an append inside a
   * transaction that later rolls back must not leave a remembered hash the table no longer has.
   */
  private get last(): { seq: number; hash: string } {
    return (this.lastStmt.get() as { seq: number; hash: string } | undefined) ?? { seq: 0, hash: GENESIS };
  }

  /** Reads the head and appends the next link in one transaction (a savepoint inside the caller's): no other writer between. */
  append(type: string, subject: string, data: Record<string, unknown>, at: number): AuditEntry {
    return this.db.transaction(() => {
      const last = this.last;
      const seq = last.seq + 1;
      const prevHash = last.hash;
      const hash = entryHash(prevHash, { seq, at, type, subject, data });
      this.insert.run(seq, at, type, subject, canonicalJson(data), prevHash, hash);
      return { seq, at, type, subject, data, prevHash, hash };
    })();
  }

  bySubject(subject: string): AuditEntry[] {
    return (this.sql('SELECT * FROM audit_log WHERE subject = ? ORDER BY seq').all(subject) as Record<string, unknown>[]).map(toEntry);
  }

  byType(type: string, limit = 1000): AuditEntry[] {
    return (this.sql('SELECT * FROM audit_log WHERE type = ? ORDER BY seq DESC LIMIT ?').all(type, limit) as Record<string, unknown>[]).map(toEntry);
  }

  /** Entries after `seq` whose type starts with `typePrefix`, oldest first. */
  after(seq: number, typePrefix: string, limit = 1000): AuditEntry[] {
    return (this.sql("SELECT * FROM audit_log WHERE seq > ? AND type >= ? AND type < ? ORDER BY seq LIMIT ?").all(seq, typePrefix, `${typePrefix}\uffff`, limit) as Record<string, unknown>[]).map(toEntry);
  }

  head(): { seq: number; hash: string } {
    return this.last;
  }

  /** Recomputes every hash from the genesis; reports the first entry that does not match. */
  verify(): { ok: true; entries: number; head: string } | { ok: false; brokenAt: number; reason: string } {
    let prev = GENESIS;
    let expectSeq = 1;
    for (const row of this.sql('SELECT * FROM audit_log ORDER BY seq').iterate() as Iterable<Record<string, unknown>>) {
      const e = toEntry(row);
      if (e.seq !== expectSeq) return { ok: false, brokenAt: e.seq, reason: `entry ${expectSeq} is missing` };
      if (e.prevHash !== prev) return { ok: false, brokenAt: e.seq, reason: 'prev_hash does not match the previous entry' };
      if (entryHash(prev, e) !== e.hash) return { ok: false, brokenAt: e.seq, reason: 'content does not match its hash' };
      prev = e.hash;
      expectSeq++;
    }
    return { ok: true, entries: expectSeq - 1, head: prev };
  }
}

function toEntry(r: Record<string, unknown>): AuditEntry {
  return {
    seq: r.seq as number, at: r.at as number, type: r.type as string, subject: r.subject as string,
    data: JSON.parse(r.data as string), prevHash: r.prev_hash as string, hash: r.hash as string,
  };
}

/**
 * The entries after `seq` whose type starts with `typePrefix`, a page at a time, oldest first, up
 * to the end of the trail as it is when each page is read (a consumer's catch-up: linkage and the
 * alert events into the ledger in region mode). The next page is read after the caller is done
 * with this one.
 */
export function* pagesAfter(audit: { after(seq: number, typePrefix: string): AuditEntry[] }, seq: number, typePrefix: string): Generator<AuditEntry[]> {
  for (let page = audit.after(seq, typePrefix); page.length; page = audit.after(seq, typePrefix)) {
    yield page;
    seq = page.at(-1)!.seq;
  }
}
