import type { StoredRecord } from '../ledger/types.ts';

/**
 * A time-series point as contract §4 defines it, in no database's syntax: measurement, tags,
 * fields and the event time in ms. Time-series sinks (InfluxDB v1/v2 here; a TimescaleDB or an
 * upstream platform next) store these; each renders them in its own wire format.
 */
export interface Point {
  measurement: string;
  tags: Record<string, string>;
  fields: Record<string, number | string | boolean>;
  /** Event time, epoch ms: writing the same record twice rewrites the same point (idempotent). */
  time: number;
}

/** The registered kind of a device, for `device_status` points (contract §4). */
export type DeviceKindOf = (deviceId: string) => string | undefined;

type Loose = Record<string, string | number | boolean | undefined>;

/** A point with its empty tags and undefined or non-finite fields left out; null when no field is left. */
function point(measurement: string, tags: Loose, fields: Loose, time: number): Point | null {
  const f = Object.entries(fields).filter(([, v]) => v !== undefined && !(typeof v === 'number' && !Number.isFinite(v)));
  if (f.length === 0) return null;
  const t = Object.entries(tags).filter(([, v]) => v !== undefined && v !== '');
  return { measurement, tags: Object.fromEntries(t.map(([k, v]) => [k, String(v)])), fields: Object.fromEntries(f) as Point['fields'], time: Math.trunc(time) };
}

/** Contract §4: the points of a ledger record (none for snapshots). */
export function toPoints(r: StoredRecord, deviceKind: DeviceKindOf): Point[] {
  const b = r.body as Record<string, unknown> & Loose;
  const p = ((): Point | null => {
    switch (r.kind) {
      case 'reading':
        return point('reading', { site: r.siteId, device: r.deviceId }, b.metrics as unknown as Loose, r.ts);
      case 'checkin':
        return point('checkin',
          { site: r.siteId, device: r.deviceId, worker: b.workerId, direction: b.direction, method: b.method },
          { verdict: b.verdict ?? 'unverified', similarity: b.similarity, photo_sha256: b.photoSha256, id: r.msgId }, r.ts);
      case 'status':
        return point('device_status', { site: r.siteId, device: r.deviceId, kind: deviceKind(r.deviceId) ?? 'unknown' },
          { online: b.state === 'online', battery_pct: b.batteryPct }, r.ts);
      case 'wage_payment':
        return point('wage_payment', { site: r.siteId, worker: b.workerId, status: b.status },
          { amount: b.amount, period: b.period, card_last4: b.cardLast4, id: r.msgId }, r.ts);
      case 'verdict':
        // A face verdict rewrites its check-in's point with the same tags and time (idempotent update).
        return point('checkin',
          { site: r.siteId, device: b.deviceId, worker: b.workerId, direction: b.direction, method: b.method },
          { verdict: b.verdict, similarity: b.similarity, photo_sha256: b.photoSha256, id: b.checkinId }, r.ts);
      case 'alert':
        // One point per alert, at its openedAt: later events rewrite its level and state in place.
        return point('alert', { site: r.siteId, kind: b.kind, severity: b.severity }, { level: b.level, state: b.state, id: b.id }, r.ts);
      default:
        return null;
    }
  })();
  return p ? [p] : [];
}
