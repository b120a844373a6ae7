import type { StoredRecord } from '../ledger/types.ts';
import { boundedMemo } from '../util/boundedMemo.ts';
import { toPoints, type DeviceKindOf, type Point } from './points.ts';

/** InfluxDB line protocol, escaped as https://docs.influxdata.com/influxdb/v1/write_protocols/line_protocol_reference/ says. */
const TAG_SPECIAL = /[,= \\\n]/;
const escTag = (s: string) => (TAG_SPECIAL.test(s) ? s.replace(/[,= \\]/g, (c) => `\\${c}`).replace(/\n/g, '\\n') : s);
const escMeasurement = (s: string) => s.replace(/[, \\]/g, (c) => `\\${c}`);
const escField = (s: string) => `"${s.replace(/["\\]/g, (c) => `\\${c}`).replace(/\n/g, '\\n')}"`;
const escKey = escTag;

/**
 * Numbers are always floats (contract §4), so a value never conflicts with an earlier type. An
 * integral value gets `.0` unless JavaScript already prints it with an exponent (|v| ≥ 1e21):
 * `1e+21` is a float to InfluxDB, `1e+21.0` is a parse error.
 */
function fieldText(v: number | string | boolean): string {
  // An integer below 1e21 prints with neither `.` nor an exponent; every other finite number has one.
  if (typeof v === 'number') return Number.isInteger(v) && Math.abs(v) < 1e21 ? `${v}.0` : String(v);
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

/**
 * A reading's line straight from the record: the same text as toLine(toPoints(r)) (tags `device`,
 * `site` in sorted order, undefined and non-finite fields left out), without the Point, entry
 * arrays and sort it would build for each of the thousands of readings per second.
 */
function readingLine(r: StoredRecord): string | null {
  const metrics = (r.body as { metrics?: Record<string, number | string | boolean | undefined> }).metrics ?? {};
  let fields = '';
  for (const k in metrics) {
    const v = metrics[k];
    if (v === undefined || (typeof v === 'number' && !Number.isFinite(v))) continue;
    fields += `${fields ? ',' : ''}${escKey(k)}=${fieldText(v)}`;
  }
  if (!fields) return null;
  return `${readingPrefix(r.siteId, r.deviceId)}${fields} ${Math.trunc(r.ts)}`;
}

/**
 * `reading,device=…,site=… `, escaped, by device (and its site: a device has one): a device sends
 * reading after reading, so its tags are escaped once, not per line.
 */
const prefixes = boundedMemo((deviceId: string) => boundedMemo((siteId: string) => {
  const device = deviceId !== '' ? `,device=${escTag(deviceId)}` : '';
  const site = siteId !== '' ? `,site=${escTag(siteId)}` : '';
  return `reading${device}${site} `;
}, 4));
const readingPrefix = (siteId: string, deviceId: string) => prefixes(deviceId)(siteId);

/** The lines of ledger records (contract §4 points in line protocol): what both InfluxDB sinks send. */
export function toLines(records: StoredRecord[], deviceKind: DeviceKindOf): string[] {
  const out: string[] = [];
  for (const r of records) {
    if (r.kind === 'reading') {
      const line = readingLine(r);
      if (line !== null) out.push(line);
      continue;
    }
    for (const p of toPoints(r, deviceKind)) out.push(toLine(p));
  }
  return out;
}

/** The general path for every kind (the reference the readings' shortcut is tested against). */
export function toLinesViaPoints(records: StoredRecord[], deviceKind: DeviceKindOf): string[] {
  const out: string[] = [];
  for (const r of records) for (const p of toPoints(r, deviceKind)) out.push(toLine(p));
  return out;
}
