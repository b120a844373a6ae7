import type { SqlStatement } from '../state/sqlDb.ts';
import { decodeCursor, encodeCursor, fromRow, type AlertRecord } from './alertRecord.ts';
import type { AlertState } from '../checks/types.ts';

export interface AlertQuery {
  siteIds?: string[];
  state?: AlertState;
  kind?: string;
  since?: number;
  limit: number;
  cursor?: string;
  includeWithdrawn?: boolean;
}

/** Alerts sorted by openedAt then id; the cursor is the last item's (openedAt, id). */
export function listAlerts(sql: (text: string) => SqlStatement, q: AlertQuery): { items: AlertRecord[]; next?: string } {
  const where: string[] = [];
  const args: unknown[] = [];
  if (q.siteIds) {
    if (q.siteIds.length === 0) return { items: [] };
    where.push(`site_id IN (${q.siteIds.map(() => '?').join(',')})`);
    args.push(...q.siteIds);
  }
  if (q.state) { where.push('state = ?'); args.push(q.state); }
  if (q.kind) { where.push('kind = ?'); args.push(q.kind); }
  if (q.since !== undefined) { where.push('opened_at >= ?'); args.push(q.since); }
  if (!q.includeWithdrawn) where.push('withdrawn = 0');
  if (q.cursor) {
    const c = decodeCursor(q.cursor);
    where.push('(opened_at > ? OR (opened_at = ? AND id > ?))');
    args.push(c.openedAt, c.openedAt, c.id);
  }
  const text = `SELECT * FROM alerts ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY opened_at, id LIMIT ?`;
  const rows = sql(text).all(...args, q.limit + 1) as Record<string, unknown>[];
  const items = rows.slice(0, q.limit).map(fromRow);
  const last = items[items.length - 1];
  return { items, ...(rows.length > q.limit && last ? { next: encodeCursor(last) } : {}) };
}
