import type { SqlDb, SqlStatement } from '../../state/sqlDb.ts';
import type { Heard } from './deviceOffline.ts';

/** What the device-offline check knows of each device, one `device_liveness` row each (state.db migration 4). */
export class LivenessRows {
  private readonly putStmt: SqlStatement;

  constructor(private readonly db: SqlDb) {
    this.putStmt = db.prepare(`INSERT INTO device_liveness (device_id, site_id, last_heard, last_event_ts, gaps, offline_opened_at, offline_recorded_at)
      VALUES (?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT(device_id) DO UPDATE SET site_id = excluded.site_id, last_heard = excluded.last_heard, last_event_ts = excluded.last_event_ts,
        gaps = excluded.gaps, offline_opened_at = excluded.offline_opened_at, offline_recorded_at = excluded.offline_recorded_at`);
  }

  all(): Map<string, Heard> {
    const rows = this.db.prepare('SELECT * FROM device_liveness').all() as {
      device_id: string; site_id: string; last_heard: number; last_event_ts: number; gaps: string;
      offline_opened_at: number | null; offline_recorded_at: number | null;
    }[];
    return new Map(rows.map((r) => [r.device_id, {
      siteId: r.site_id, lastHeard: r.last_heard, lastEventTs: r.last_event_ts, gaps: JSON.parse(r.gaps) as number[],
      learntMs: undefined, learntStale: true,
      offline: r.offline_opened_at !== null ? { openedAt: r.offline_opened_at, recordedAt: r.offline_recorded_at ?? r.offline_opened_at } : undefined,
    }]));
  }

  put(deviceId: string, h: Heard): void {
    this.putStmt.run(deviceId, h.siteId, h.lastHeard, h.lastEventTs, JSON.stringify(h.gaps), h.offline?.openedAt ?? null, h.offline?.recordedAt ?? null);
  }
}
