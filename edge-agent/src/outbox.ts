import Database from 'better-sqlite3';

export interface OutboxItem {
  seq: number;
  topic: string;
  payload: string;
}

/**
 * The agent's store-and-forward buffer: every message a terminal or sensor produces is written
 * here (SQLite, WAL, fsync per commit) before it is sent, and removed only when the gateway's
 * PUBACK arrived. A crash or a network outage therefore loses nothing, and because each message
 * keeps its own `id`, a resend after a lost PUBACK is stored once by the gateway.
 */
export class Outbox {
  private readonly db: Database.Database;
  private readonly insert: Database.Statement;
  private readonly remove: Database.Statement;

  constructor(file: string, private readonly now: () => number = () => Date.now()) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.exec('CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY, topic TEXT NOT NULL, payload TEXT NOT NULL, created_at INTEGER NOT NULL)');
    this.insert = this.db.prepare('INSERT INTO outbox (topic, payload, created_at) VALUES (?, ?, ?)');
    this.remove = this.db.prepare('DELETE FROM outbox WHERE seq = ?');
  }

  put(topic: string, payload: string): number {
    return Number(this.insert.run(topic, payload, this.now()).lastInsertRowid);
  }

  /** The oldest `limit` messages after `afterSeq`, in the order they were produced. */
  next(afterSeq: number, limit: number): OutboxItem[] {
    return this.db.prepare('SELECT seq, topic, payload FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?').all(afterSeq, limit) as OutboxItem[];
  }

  done(seq: number): void {
    this.remove.run(seq);
  }

  get size(): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM outbox').get() as { n: number }).n;
  }

  close(): void {
    this.db.close();
  }
}
