import type { SqlDb, SqlStatement } from '../../state/sqlDb.ts';
import { fencedTransaction } from '../check.ts';
import { CheckProgress } from '../progress.ts';
import type { Shard } from '../../region/shards.ts';

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
  /** Region mode with shards: each shard's `snapshot_seq` is its own, in check_progress (`hazard#<shard>`, scope `snapshotSeq`). */
  private readonly shardSeq: CheckProgress | undefined;

  constructor(private readonly db: SqlDb, shard?: Shard, private readonly fence?: () => void) {
    this.putDoc = db.prepare(`INSERT INTO hazard_snapshots (site_id, doc, taken_at) VALUES (?, ?, ?)
      ON CONFLICT(site_id) DO UPDATE SET doc = excluded.doc, taken_at = excluded.taken_at`);
    this.putSnapshotSeq = db.prepare('UPDATE hazard_cursor SET snapshot_seq = ? WHERE id = 1');
    if (shard) this.shardSeq = new CheckProgress(db, `hazard#${shard.index}`);
  }

  cursor(): { snapshotSeq: number } {
    if (this.shardSeq) return { snapshotSeq: this.shardSeq.get('snapshotSeq') ?? 0 };
    const r = this.db.prepare('SELECT snapshot_seq FROM hazard_cursor WHERE id = 1').get() as { snapshot_seq: number };
    return { snapshotSeq: r.snapshot_seq };
  }

  snapshots(): { siteId: string; doc: string }[] {
    return (this.db.prepare('SELECT site_id, doc FROM hazard_snapshots').all() as { site_id: string; doc: string }[])
      .map((r) => ({ siteId: r.site_id, doc: r.doc }));
  }

  /** Writes the changed sites' documents and moves `snapshot_seq`, atomically. */
  save(seq: number, docs: { siteId: string; doc: string }[], at: number): void {
    fencedTransaction(this.db, this.fence, () => {
      for (const d of docs) this.putDoc.run(d.siteId, d.doc, at);
      if (this.shardSeq) this.shardSeq.set('snapshotSeq', seq);
      else this.putSnapshotSeq.run(seq);
    });
  }
}
