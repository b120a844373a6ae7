import type { SqlDb } from './sqlDb.ts';

const NOT_OURS = 'state changed inside a transaction not opened through Transactions.run: its events cannot wait for the commit';
const byDb = new WeakMap<SqlDb, Transactions>();

/**
 * Transactions on one SQLite database with after-commit callbacks. An alert event must reach
 * MQTT, the live feed and the ledger only once the change that caused it is committed: a check
 * that applies signals and its cursor in one transaction and then rolls back (a crash, a failed
 * statement) must not have told anybody. So everything that opens a transaction on the state
 * database goes through `run`, and whoever has news for the outside world hands it to
 * `afterCommit`: run at once outside a transaction, after the outermost commit inside one,
 * dropped on rollback (a nested `run` that throws drops only its own).
 */
export class Transactions {
  private depth = 0;
  private pending: (() => void)[] = [];

  private constructor(private readonly db: SqlDb) {}

  /** The one coordinator of `db` (every module using the database shares it). */
  static of(db: SqlDb): Transactions {
    let t = byDb.get(db);
    if (!t) byDb.set(db, (t = new Transactions(db)));
    return t;
  }

  run<T>(fn: () => T): T {
    // A transaction opened around us without `run` could still roll back after we told everyone.
    if (this.depth === 0 && this.db.inTransaction) throw new Error(NOT_OURS);
    const mark = this.pending.length;
    let result: T;
    this.depth++;
    try {
      result = this.db.transaction(fn)();
    } catch (e) {
      this.pending.length = mark;
      throw e;
    } finally {
      this.depth--;
    }
    if (this.depth === 0 && this.pending.length) {
      const committed = this.pending;
      this.pending = [];
      for (const cb of committed) cb();
    }
    return result;
  }

  afterCommit(cb: () => void): void {
    if (this.depth > 0) {
      this.pending.push(cb);
      return;
    }
    // A transaction opened around us without `run` could still roll back: refuse to guess.
    if (this.db.inTransaction) throw new Error(NOT_OURS);
    cb();
  }
}
