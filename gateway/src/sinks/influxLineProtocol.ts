import type { StoredRecord } from '../ledger/types.ts';
import { toPoints, type DeviceKindOf, type Point } from './points.ts';

/** InfluxDB line protocol, escaped as https://docs.influxdata.com/influxdb/v1/write_protocols/line_protocol_reference/ says. */
const escTag = (s: string) => s.replace(/[,= \\]/g, (c) => `\\${c}`).replace(/\n/g, '\\n');
const escMeasurement = (s: string) => s.replace(/[, \\]/g, (c) => `\\${c}`);
const escField = (s: string) => `"${s.replace(/["\\]/g, (c) => `\\${c}`).replace(/\n/g, '\\n')}"`;
const escKey = escTag;

/**
 * Numbers are always floats (contract §4), so a value never conflicts with an earlier type. An
 * integral value gets `.0` unless JavaScript already prints it with an exponent (|v| ≥ 1e21):
 * `1e+21` is a float to InfluxDB, `1e+21.0` is a parse error.
 */
function fieldText(v: number | string | boolean): string {
  if (typeof v === 'number') {
    const s = String(v);
    return /[.eE]/.test(s) ? s : `${s}.0`;
  }
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  return escField(v);
}

/** One point as a line, tags sorted (what InfluxDB recommends for write speed), time in ms. */
export function toLine(p: Point): string {
  const t = Object.entries(p.tags)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => `,${escKey(k)}=${escTag(v)}`)
    .join('');
  return `${escMeasurement(p.measurement)}${t} ${Object.entries(p.fields).map(([k, v]) => `${escKey(k)}=${fieldText(v)}`).join(',')} ${p.time}`;
}

/** The lines of ledger records (contract §4 points in line protocol): what both InfluxDB sinks send. */
export function toLines(records: StoredRecord[], deviceKind: DeviceKindOf): string[] {
  const out: string[] = [];
  for (const r of records) for (const p of toPoints(r, deviceKind)) out.push(toLine(p));
  return out;
}
