import crypto from 'node:crypto';
import { z } from 'zod';
import { Checkin, DeviceStatus, MAX_BATCH, Reading, ReadingBatch, WagePayment } from '../../../schemas/src/messages.ts';
import { REASONS, type Reason } from '../errors.ts';
import type { EvidenceFile, LedgerRecord } from '../ledger/types.ts';
import { compileAccept } from './compiledCheck.ts';
import { parseTimestamp } from './timestamps.ts';
import { MAX_PAYLOAD, type InboundChannel } from './topics.ts';

export interface Rejection {
  ref: string;
  reason: Reason;
  message: string;
}

/** What one inbound message becomes before it is stored: records to append, files, rejections. */
export interface Decoded {
  records: LedgerRecord[];
  files: EvidenceFile[];
  rejected: Rejection[];
}

export interface Origin {
  siteId: string;
  deviceId: string;
  receivedAt: number;
  /** The gateway clock (for the future-timestamp horizon). */
  now: number;
}

/** A device message's dedupe key (contract §1: deviceId + id); the ledger rebuilds records with it too. */
export const deviceDedupeKey = (deviceId: string, msgId: string) => `${deviceId}/${msgId}`;

const reject = (ref: string, reason: Reason, message?: string): Rejection => ({ ref, reason, message: message ?? REASONS[reason].message });

const refOf = (v: unknown, fallback: string): string =>
  v && typeof v === 'object' && typeof (v as { id?: unknown }).id === 'string' ? (v as { id: string }).id.slice(0, 128) : fallback;

const sha256 = (b: Uint8Array) => crypto.createHash('sha256').update(b).digest('hex');

function describeIssues(err: z.ZodError): string {
  return err.issues.slice(0, 5).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
}

/**
 * Turns a schema failure into the most specific reason of the catalogue: a device vendor fixing
 * a missing UTC offset should read `ts_no_offset`, not a generic schema error.
 */
function classify(value: unknown, err: z.ZodError, now: number): { reason: Reason; message: string } {
  const tsIssue = err.issues.find((i) => i.path[0] === 'ts' || i.path[0] === 'paidAt');
  if (tsIssue && value && typeof value === 'object') {
    const field = tsIssue.path[0] as string;
    const ts = parseTimestamp((value as Record<string, unknown>)[field], now);
    if (!ts.ok) return { reason: ts.reason, message: ts.message.replace(/^ts/, field) };
  }
  const metricIssue = err.issues.find((i) => i.path[0] === 'metrics' && i.path.length === 2);
  if (metricIssue) return { reason: 'metric_not_numeric', message: `metric ${String(metricIssue.path[1])}: ${metricIssue.message}` };
  return { reason: 'schema_invalid', message: describeIssues(err) };
}

function parseJson(payload: Buffer, ref: string): { ok: true; value: unknown } | { ok: false; rejection: Rejection } {
  try {
    return { ok: true, value: JSON.parse(payload.toString('utf8')) };
  } catch (e) {
    return { ok: false, rejection: reject(ref, 'invalid_json', `payload is not valid JSON: ${(e as Error).message}`) };
  }
}

/** Decodes and validates one MQTT payload (or HTTP body) of a device channel. Never throws on input. */
export function decodeMessage(channel: InboundChannel, payload: Buffer, origin: Origin, topic: string): Decoded {
  const out: Decoded = { records: [], files: [], rejected: [] };
  if (payload.length > MAX_PAYLOAD[channel]) {
    out.rejected.push(reject(topic, 'payload_too_large', `${payload.length} bytes exceeds ${MAX_PAYLOAD[channel]} for ${channel}`));
    return out;
  }
  if (channel === 'snapshot') {
    // A JPEG starts with SOI (FF D8 FF). Identity: its SHA-256; time: its arrival (contract §1).
    if (payload.length < 4 || payload[0] !== 0xff || payload[1] !== 0xd8 || payload[2] !== 0xff) {
      out.rejected.push(reject(topic, 'not_a_jpeg'));
      return out;
    }
    const hash = sha256(payload);
    out.files.push({ sha256: hash, data: payload });
    out.records.push({
      siteId: origin.siteId, deviceId: origin.deviceId, kind: 'snapshot', msgId: hash, dedupeKey: deviceDedupeKey(origin.deviceId, hash),
      ts: origin.receivedAt, receivedAt: origin.receivedAt, body: { sha256: hash, bytes: payload.length },
    });
    return out;
  }
  const json = parseJson(payload, topic);
  if (!json.ok) {
    out.rejected.push(json.rejection);
    return out;
  }
  validateValue(channel, json.value, origin, out, topic);
  return out;
}

/** Validates an already-parsed value of a channel (the HTTP ingest routes start here). */
export function validateValue(channel: Exclude<InboundChannel, 'snapshot'>, value: unknown, origin: Origin, out: Decoded, topic: string): void {
  if (channel === 'telemetry' && value && typeof value === 'object' && 'batch' in value) {
    const b = value as { batch: unknown };
    if (Array.isArray(b.batch) && b.batch.length > MAX_BATCH) {
      out.rejected.push(reject(topic, 'batch_too_large', `batch of ${b.batch.length} readings exceeds ${MAX_BATCH}`));
      return;
    }
    if (Array.isArray(b.batch) && b.batch.length === 0) {
      out.rejected.push(reject(topic, 'batch_empty'));
      return;
    }
    const env = ReadingBatch.safeParse(value);
    if (!env.success) {
      out.rejected.push(reject(topic, 'schema_invalid', describeIssues(env.error)));
      return;
    }
    // One bad reading never loses the good ones of its batch.
    env.data.batch.forEach((r, i) => one('telemetry', r, origin, out, `${topic}#${i}`));
    return;
  }
  one(channel, value, origin, out, topic);
}

/**
 * Readings — nearly every message — first meet a check compiled from the `Reading` schema
 * (compiledCheck.ts): its yes means zod would accept the reading and return it as it is, at a
 * fifteenth of zod's cost; anything else goes to zod, which decides and words the errors.
 */
const readingAccept = compileAccept(Reading);

function one(channel: Exclude<InboundChannel, 'snapshot'>, value: unknown, origin: Origin, out: Decoded, fallbackRef: string): void {
  const ref = refOf(value, fallbackRef);
  const schema = channel === 'checkin' ? Checkin : channel === 'telemetry' ? Reading : DeviceStatus;
  const parsed = channel === 'telemetry' && readingAccept?.(value) ? { success: true as const, data: value as Reading } : schema.safeParse(value);
  if (!parsed.success) {
    const c = classify(value, parsed.error, origin.now);
    out.rejected.push(reject(ref, c.reason, c.message));
    return;
  }
  const ts = parseTimestamp(parsed.data.ts, origin.now);
  if (!ts.ok) {
    out.rejected.push(reject(ref, ts.reason, ts.message));
    return;
  }
  if (channel === 'checkin') {
    const c = parsed.data as Checkin;
    const body: Record<string, unknown> = { workerId: c.workerId, direction: c.direction, method: c.method };
    if (c.terminalScore !== undefined) body.terminalScore = c.terminalScore;
    if (c.photo !== undefined) {
      const bytes = Buffer.from(c.photo, 'base64');
      if (bytes.length > 0) {
        const hash = sha256(bytes);
        out.files.push({ sha256: hash, data: bytes });
        body.photoSha256 = hash;
        body.photoBytes = bytes.length;
      }
    }
    out.records.push(record(origin, ts.ms, 'checkin', c.id, body));
  } else if (channel === 'telemetry') {
    const r = parsed.data as Reading;
    out.records.push(record(origin, ts.ms, 'reading', r.id, { metrics: r.metrics }));
  } else {
    const s = parsed.data as DeviceStatus;
    const body: Record<string, unknown> = { state: s.state };
    if (s.firmware) body.firmware = s.firmware;
    if (s.batteryPct !== undefined) body.batteryPct = s.batteryPct;
    out.records.push(record(origin, ts.ms, 'status', `status@${ts.ms}:${s.state}`, body));
  }
}

/**
 * A device record, every kind in one shape and written out field by field: in node 20's V8 an
 * object literal that spreads another and then adds properties (`{ ...base, kind, … }`) defines
 * each added property through the runtime, ~1.5 µs apiece — 6 µs per reading, most of the
 * writer's decode (issue 11, measured), where the literal costs 0.05.
 */
function record(origin: Origin, ts: number, kind: 'checkin' | 'reading' | 'status', msgId: string, body: Record<string, unknown>): LedgerRecord {
  return {
    siteId: origin.siteId, deviceId: origin.deviceId, kind, msgId, dedupeKey: deviceDedupeKey(origin.deviceId, msgId),
    ts, receivedAt: origin.receivedAt, body,
  };
}

/** Validates one wage-payment row (JSON item or CSV row already mapped to fields). */
export function validateWagePayment(value: unknown, origin: Origin, ref: string): { ok: true; payment: WagePayment; paidAt: number } | { ok: false; rejection: Rejection } {
  const parsed = WagePayment.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = String(issue.path[0] ?? '');
    if (field === 'paidAt') {
      const ts = parseTimestamp((value as Record<string, unknown>).paidAt, origin.now);
      if (!ts.ok) return { ok: false, rejection: reject(ref, ts.reason, ts.message.replace(/^ts/, 'paidAt')) };
    }
    const reason: Reason = field === 'period' ? 'bad_period' : field === 'amount' && issue.code === 'too_small' ? 'negative_amount' : field === 'card' ? 'bad_card' : 'schema_invalid';
    return { ok: false, rejection: reject(ref, reason, describeIssues(parsed.error)) };
  }
  const ts = parseTimestamp(parsed.data.paidAt, origin.now);
  if (!ts.ok) return { ok: false, rejection: reject(ref, ts.reason, ts.message.replace(/^ts/, 'paidAt')) };
  if (!luhnValid(parsed.data.card)) return { ok: false, rejection: reject(ref, 'bad_card', 'card fails the Luhn check digit (ISO/IEC 7812)') };
  return { ok: true, payment: parsed.data, paidAt: ts.ms };
}

/** ISO/IEC 7812 check digit: bank cards (UnionPay included) end with a Luhn digit. */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) { d *= 2; if (d > 9) d -= 9; }
    sum += d;
  }
  return sum % 10 === 0;
}
