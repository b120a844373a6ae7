import type { SqlDb, SqlRunResult, SqlStatement } from '../sqlDb.ts';
import { toPostgres } from './dialect.ts';
import { SyncPg, type SyncPgOptions } from './syncPg.ts';

/**
 * Every state write on the database, from every instance, takes this lock first: the state
 * stores were written for SQLite's one writer at a time (the audit chain reads its head and
 * appends the next link; an alert key is reconciled by reading then writing), and this keeps that
 * promise across instances. State writes are few (check steps, people's actions, timers), each a
 * short transaction; the ingest hot path never takes it. What to change for 100 instances: one
 * lock per site (its alerts, progress and rows) and the audit chain's own, in state/README.md.
 */
export const STATE_WRITE_LOCK = 0x5a7e_0003; // not the ledger's APPEND_LOCK (…0002): a state transaction must not hold up ingest

/**
 * The state modules' SQL connection (`SqlDb`, the part of better-sqlite3 they use) over a
 * synchronous PostgreSQL connection (syncPg.ts). Statements are rewritten from SQLite's dialect
 * once, when prepared (dialect.ts). `transaction(fn)` is a transaction under STATE_WRITE_LOCK,
 * nested calls are savepoints, and a throw rolls back exactly what it covers — better-sqlite3's
 * semantics, which Transactions (transactions.ts) builds on.
 *
 * A transaction begins on the server with its first statement, not before: BEGIN and the lock go
 * in one round trip ahead of it (then what `deferUntilBegin` queued: the region fence), and one
 * whose body ran no statement — a check's step that changed nothing in memory-only state — costs
 * no round trip at all. Every statement of a transaction still runs under the lock.
 */
export class PgStateDb implements SqlDb {
  /** Rows changed since the connection opened (totalChangesOf in sqlDb.ts). */
  totalChanges = 0;
  private depth = 0;
  /** The outermost transaction has begun on the server (BEGIN and the lock sent). */
  private begun = false;
  /** Savepoints of the nested transactions open now, and whether each was sent yet. */
  private savepoints: { name: string; sent: boolean }[] = [];
  private atBegin: (() => void)[] = [];

  constructor(readonly pg: SyncPg) {}

  static connect(o: SyncPgOptions): PgStateDb {
    return new PgStateDb(new SyncPg(o));
  }

  get open(): boolean {
    return this.pg.open;
  }

  get inTransaction(): boolean {
    return this.depth > 0;
  }

  prepare(sql: string): SqlStatement {
    return new PgStatement(this, toPostgres(sql));
  }

  exec(sql: string): this {
    this.begin();
    this.pg.query(sql);
    return this;
  }

  query(sql: string, params: unknown[]): { rows: Record<string, unknown>[]; rowCount: number } {
    this.begin();
    return this.pg.query(sql, params.map(toParam));
  }

  /** Inside a transaction that has not begun on the server: `cb` runs right after it begins (none may begin); else now. */
  deferUntilBegin(cb: () => void): void {
    if (this.depth > 0 && !this.begun) this.atBegin.push(cb);
    else cb();
  }

  transaction<T>(fn: () => T): () => T {
    return () => {
      const savepoint = this.depth > 0 ? { name: `sp${this.depth}`, sent: false } : undefined;
      if (savepoint) this.savepoints.push(savepoint);
      this.depth++;
      const changesBefore = this.totalChanges;
      let result: T;
      try {
        result = fn();
      } catch (e) {
        this.depth--;
        this.totalChanges = changesBefore;
        if (savepoint) {
          this.savepoints.pop();
          if (savepoint.sent) this.pg.query(`ROLLBACK TO SAVEPOINT ${savepoint.name}`);
        } else this.end(false);
        throw e;
      }
      this.depth--;
      if (savepoint) {
        this.savepoints.pop();
        if (savepoint.sent) this.pg.query(`RELEASE SAVEPOINT ${savepoint.name}`);
      } else {
        try {
          this.end(true);
        } catch (e) {
          this.totalChanges = changesBefore;
          throw e;
        }
      }
      return result;
    };
  }

  close(): void {
    this.pg.close();
  }

  /** Before a statement inside a transaction: BEGIN and the lock (one round trip), the queued hooks, the savepoints not sent yet. */
  private begin(): void {
    if (this.depth === 0) return;
    if (!this.begun) {
      this.begun = true; // first: the hooks' own statements come through here
      this.pg.query(`BEGIN; SELECT pg_advisory_xact_lock(${STATE_WRITE_LOCK})`);
      const hooks = this.atBegin;
      this.atBegin = [];
      for (const h of hooks) h();
    }
    for (const sp of this.savepoints) {
      if (sp.sent) continue;
      sp.sent = true;
      this.pg.query(`SAVEPOINT ${sp.name}`);
    }
  }

  /** The outermost transaction ends: COMMIT or ROLLBACK if it began on the server, nothing if it did not. */
  private end(commit: boolean): void {
    const begun = this.begun;
    this.begun = false;
    this.atBegin = [];
    this.savepoints = [];
    if (!begun) return;
    if (!commit) {
      this.rollback();
      return;
    }
    try {
      this.pg.query('COMMIT');
    } catch (e) {
      this.rollback();
      throw e;
    }
  }

  private rollback(): void {
    try {
      if (this.pg.open) this.pg.query('ROLLBACK');
    } catch { /* the connection failed: PostgreSQL rolls back the session itself */ }
  }
}

/** better-sqlite3 binds Buffers as BLOBs and refuses booleans; `pg` takes Buffers as bytea. */
function toParam(v: unknown): unknown {
  return v === undefined ? null : v;
}

/** Bytea arrives from the connection's thread as a plain Uint8Array: make it the Buffer SQLite gives. */
function fromRow(row: Record<string, unknown>): Record<string, unknown> {
  for (const k in row) {
    const v = row[k];
    if (v instanceof Uint8Array && !Buffer.isBuffer(v)) row[k] = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  }
  return row;
}

class PgStatement implements SqlStatement {
  private plucked = false;

  constructor(private readonly db: PgStateDb, private readonly sql: string) {}

  run(...params: unknown[]): SqlRunResult {
    const r = this.db.query(this.sql, params);
    this.db.totalChanges += r.rowCount;
    return { changes: r.rowCount, lastInsertRowid: 0 };
  }

  get(...params: unknown[]): unknown {
    const row = this.db.query(this.sql, params).rows[0];
    return row === undefined ? undefined : this.shape(row);
  }

  all(...params: unknown[]): unknown[] {
    return this.db.query(this.sql, params).rows.map((r) => this.shape(r));
  }

  iterate(...params: unknown[]): IterableIterator<unknown> {
    return this.all(...params)[Symbol.iterator]();
  }

  pluck(toggle = true): this {
    this.plucked = toggle;
    return this;
  }

  private shape(row: Record<string, unknown>): unknown {
    fromRow(row);
    if (!this.plucked) return row;
    for (const k in row) return row[k];
    return undefined;
  }
}
