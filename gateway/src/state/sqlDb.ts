/**
 * The SQL connection the state modules are written against: the part of better-sqlite3's API they
 * use. The embedded default hands them a better-sqlite3 `Database` (stateDb.ts); region mode hands
 * them `PgStateDb` (pg/pgStateDb.ts), the same calls over PostgreSQL. SQL is written once, in the
 * SQLite dialect; pg/dialect.ts rewrites the few constructs that differ.
 */
export interface SqlRunResult {
  changes: number;
  lastInsertRowid: number | bigint;
}

export interface SqlStatement {
  run(...params: unknown[]): SqlRunResult;
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
  iterate(...params: unknown[]): IterableIterator<unknown>;
  /** Rows as their first column's value. */
  pluck(toggle?: boolean): this;
}

export interface SqlDb {
  prepare(sql: string): SqlStatement;
  /** `fn` wrapped in a transaction (a savepoint when nested), as better-sqlite3's `transaction`. */
  transaction<T>(fn: () => T): () => T;
  exec(sql: string): unknown;
  readonly inTransaction: boolean;
  readonly open: boolean;
  close(): unknown;
}

/** Rows changed on this connection since it opened (a step that changed nothing need not commit its cursor). */
export function totalChangesOf(db: SqlDb): () => number {
  if ('totalChanges' in db) return () => (db as { totalChanges: number }).totalChanges;
  const st = db.prepare('SELECT total_changes()').pluck();
  return () => st.get() as number;
}
