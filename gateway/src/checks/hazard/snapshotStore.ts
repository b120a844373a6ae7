import type { SqlDb, SqlStatement } from '../../state/sqlDb.ts';
import { Transactions } from '../../state/transactions.ts';

/**
 * Where the hazard check keeps what it needs to restart exactly (state.db, tables of its own):
 *
 *   hazard_snapshots  one row per site: its engine's `snapshot()` as JSON;
 *   hazard_cursor     `snapshot_seq`: every engine row holds exactly the readings up to this ledger
 *                     seq. (Its `applied_seq` was the check's own cursor before the runner owned
 *                     one: state.db migration 4 moved it to `check_progress`.)
 */
export class HazardSnapshotStore {
  private readonly putDoc: SqlStatement;
  private readonly putSnapshotSeq: SqlStatement;

  constructor(private readonly db: SqlDb) {
    this.putDoc = db.prepare(`INSERT INTO hazard_snapshots (site_id, doc, taken_at) VALUES (?, ?, ?)
      ON CONFLICT(site_id) DO UPDATE SET doc = excluded.doc, taken_at = excluded.taken_at`);
    this.putSnapshotSeq = db.prepare('UPDATE hazard_cursor SET snapshot_seq = ? WHERE id = 1');
  }

  cursor(): { snapshotSeq: number } {
    const r = this.db.prepare('SELECT snapshot_seq FROM hazard_cursor WHERE id = 1').get() as { snapshot_seq: number };
    return { snapshotSeq: r.snapshot_seq };
  }

  snapshots(): { siteId: string; doc: string }[] {
    return (this.db.prepare('SELECT site_id, doc FROM hazard_snapshots').all() as { site_id: string; doc: string }[])
      .map((r) => ({ siteId: r.site_id, doc: r.doc }));
  }

  /** Writes the changed sites' documents and moves `snapshot_seq`, atomically. */
  save(seq: number, docs: { siteId: string; doc: string }[], at: number): void {
    Transactions.of(this.db).run(() => {
      for (const d of docs) this.putDoc.run(d.siteId, d.doc, at);
      this.putSnapshotSeq.run(seq);
    });
  }
}
