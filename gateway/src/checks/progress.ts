import type { SqlDb, SqlStatement } from '../state/sqlDb.ts';
import { Transactions } from '../state/transactions.ts';
import type { Progress } from '../state/types.ts';

/**
 * Small durable counters a check keeps in state.db to restart where it stopped: a ledger cursor
 * (the last record whose effects are in the alert store), a per-site "decided through" event time.
 * One row per (check, scope). Writes are cheap upserts; wrap them in the same transaction as the
 * alert changes they cover so that a crash never separates the two.
 */
export class CheckProgress implements Progress {
  private readonly getStmt: SqlStatement;
  private readonly putStmt: SqlStatement;
  private readonly allStmt: SqlStatement;

  constructor(readonly db: SqlDb, private readonly check: string) {
    this.getStmt = db.prepare('SELECT value FROM check_progress WHERE check_name = ? AND scope = ?');
    this.putStmt = db.prepare(`INSERT INTO check_progress (check_name, scope, value) VALUES (?, ?, ?)
      ON CONFLICT(check_name, scope) DO UPDATE SET value = excluded.value`);
    this.allStmt = db.prepare('SELECT scope, value FROM check_progress WHERE check_name = ?');
  }

  get(scope: string): number | undefined {
    return (this.getStmt.get(this.check, scope) as { value: number } | undefined)?.value;
  }

  set(scope: string, value: number): void {
    this.putStmt.run(this.check, scope, value);
  }

  remove(scope: string): void {
    this.db.prepare('DELETE FROM check_progress WHERE check_name = ? AND scope = ?').run(this.check, scope);
  }

  all(): Map<string, number> {
    return new Map((this.allStmt.all(this.check) as { scope: string; value: number }[]).map((r) => [r.scope, r.value]));
  }

  /** Runs `fn` in one SQLite transaction on the state database (alert changes + progress); alert events go out after the commit. */
  atomically<T>(fn: () => T): T {
    return Transactions.of(this.db).run(fn);
  }
}
