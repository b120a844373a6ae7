import type { SqlDb, SqlStatement } from '../state/sqlDb.ts';
import { statementCache } from '../util/statements.ts';
import type { SinkStore } from '../state/types.ts';

export interface DeadLetter { id: number; sink: string; seq: number; line: string; error: string; at: number }

/**
 * What each sink keeps in state.db (tables in state/stateDb.ts): its cursor into the ledger,
 * advanced only after the database confirmed a batch, and the records it refused as bad data.
 */
export class SinkStateStore implements SinkStore {
  private readonly sql: (text: string) => SqlStatement;

  constructor(db: SqlDb) {
    this.sql = statementCache(db);
  }

  cursor(sink: string): number {
    return (this.sql('SELECT seq FROM sink_cursors WHERE sink = ?').get(sink) as { seq: number } | undefined)?.seq ?? 0;
  }

  saveCursor(sink: string, seq: number, at: number): void {
    this.sql(`INSERT INTO sink_cursors (sink, seq, updated_at) VALUES (?, ?, ?)
      ON CONFLICT(sink) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at`).run(sink, seq, at);
  }

  /** Keeps a refused record once: a batch retried after an interrupted split meets the same refusal again. Returns whether it was new. */
  addDeadLetter(sink: string, seq: number, line: string, error: string, at: number): boolean {
    if (this.sql('SELECT 1 FROM dead_letters WHERE sink = ? AND seq = ?').get(sink, seq)) return false;
    this.sql('INSERT INTO dead_letters (sink, seq, line, error, at) VALUES (?, ?, ?, ?, ?)').run(sink, seq, line, error, at);
    return true;
  }

  deadLetterCount(sink: string): number {
    return (this.sql('SELECT COUNT(*) AS n FROM dead_letters WHERE sink = ?').get(sink) as { n: number }).n;
  }

  /** Newest first. */
  deadLetters(limit: number): DeadLetter[] {
    return this.sql('SELECT * FROM dead_letters ORDER BY id DESC LIMIT ?').all(limit) as DeadLetter[];
  }
}
