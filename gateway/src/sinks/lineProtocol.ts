import type { StoredRecord } from '../ledger/types.ts';
import type { Registry } from '../registry/registry.ts';

/** InfluxDB line protocol, escaped as https://docs.influxdata.com/influxdb/v1/write_protocols/line_protocol_reference/ says. */
const escTag = (s: string) => s.replace(/[,= \\]/g, (c) => `\\${c}`).replace(/\n/g, '\\n');
const escMeasurement = (s: string) => s.replace(/[, \\]/g, (c) => `\\${c}`);
const escField = (s: string) => `"${s.replace(/["\\]/g, (c) => `\\${c}`).replace(/\n/g, '\\n')}"`;
const escKey = escTag;

type FieldValue = number | string | boolean;

/**
 * Numbers are always floats (contract §4), so a value never conflicts with an earlier type. An
 * integral value gets `.0` unless JavaScript already prints it with an exponent (|v| ≥ 1e21):
 * `1e+21` is a float to InfluxDB, `1e+21.0` is a parse error.
 */
function fieldText(v: FieldValue): string {
  if (typeof v === 'number') {
    const s = String(v);
    return /[.eE]/.test(s) ? s : `${s}.0`;
  }
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  return escField(v);
}

export function line(measurement: string, tags: Record<string, string | undefined>, fields: Record<string, FieldValue | undefined>, tsMs: number): string | null {
  const f = Object.entries(fields).filter(([, v]) => v !== undefined && !(typeof v === 'number' && !Number.isFinite(v)));
  if (f.length === 0) return null;
  const t = Object.entries(tags)
    .filter(([, v]) => v !== undefined && v !== '')
    .sort(([a], [b]) => (a < b ? -1 : 1)) // sorted tags: what InfluxDB recommends for write speed
    .map(([k, v]) => `,${escKey(k)}=${escTag(v!)}`)
    .join('');
  return `${escMeasurement(measurement)}${t} ${f.map(([k, v]) => `${escKey(k)}=${fieldText(v!)}`).join(',')} ${Math.trunc(tsMs)}`;
}

/**
 * Contract §4: the measurement, tags and fields of a ledger record. Timestamps are the events'
 * own, in ms, so writing the same record twice rewrites the same point (idempotent).
 */
export function toLines(r: StoredRecord, registry: Registry): string[] {
  const b = r.body as Record<string, unknown>;
  switch (r.kind) {
    case 'reading': {
      const l = line('reading', { site: r.siteId, device: r.deviceId }, b.metrics as Record<string, number>, r.ts);
      return l ? [l] : [];
    }
    case 'checkin': {
      const l = line('checkin',
        { site: r.siteId, device: r.deviceId, worker: b.workerId as string, direction: b.direction as string, method: b.method as string },
        { verdict: (b.verdict as string | undefined) ?? 'unverified', similarity: b.similarity as number | undefined, photo_sha256: b.photoSha256 as string | undefined, id: r.msgId },
        r.ts);
      return l ? [l] : [];
    }
    case 'status': {
      const kind = registry.device(r.deviceId)?.kind ?? 'unknown';
      const l = line('device_status', { site: r.siteId, device: r.deviceId, kind }, { online: b.state === 'online', battery_pct: b.batteryPct as number | undefined }, r.ts);
      return l ? [l] : [];
    }
    case 'wage_payment': {
      const l = line('wage_payment', { site: r.siteId, worker: b.workerId as string, status: b.status as string },
        { amount: b.amount as number, period: b.period as string, card_last4: b.cardLast4 as string, id: r.msgId }, r.ts);
      return l ? [l] : [];
    }
    case 'verdict': {
      // A face verdict rewrites its check-in's point with the same tags and time (idempotent update).
      const l = line('checkin',
        { site: r.siteId, device: b.deviceId as string, worker: b.workerId as string, direction: b.direction as string, method: b.method as string },
        { verdict: b.verdict as string, similarity: b.similarity as number | undefined, photo_sha256: b.photoSha256 as string | undefined, id: b.checkinId as string },
        r.ts);
      return l ? [l] : [];
    }
    case 'alert': {
      // One point per alert, at its openedAt: later events rewrite its level and state in place.
      const l = line('alert', { site: r.siteId, kind: b.kind as string, severity: b.severity as string },
        { level: b.level as number, state: b.state as string, id: b.id as string }, r.ts);
      return l ? [l] : [];
    }
    case 'snapshot':
      return [];
  }
}
