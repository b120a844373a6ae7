/**
 * The ledger's single writer, on its own thread so that an fsync never stalls the broker or the
 * API. It also decodes and validates the device payloads of its group (JSON.parse, zod, records:
 * ingest/validate.ts) right before inserting them: the main thread only frames, authenticates
 * and authorises, and hands a group's raw payloads over in one transfer (issue 11).
 */
import { workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { persistEvidence } from './evidence.ts';
import { migrate } from '../state/migrations.ts';
import { LEDGER_MIGRATIONS } from './schema.ts';
import type { EvidenceFile, LedgerRecord, PayloadRejection, RecordKind } from './types.ts';
import { serveRpc } from '../util/workerRpc.ts';
import { decodeMessage, type Decoded } from '../ingest/validate.ts';
import { isInboundChannel, parseDeviceTopic } from '../ingest/topics.ts';
import { boundedMemo } from '../util/boundedMemo.ts';

/** The raw payloads of a group: one buffer, transferred, not copied (ledger.ts builds it). */
export interface PayloadBatch {
  bytes: Uint8Array;
  /** End offset of each payload in `bytes`. */
  ends: Uint32Array;
  receivedAt: Float64Array;
  topics: string[];
}

export interface AppendRequest {
  records: LedgerRecord[];
  files: EvidenceFile[];
  payloads?: PayloadBatch;
  /** The group's order: n ≥ 0 is the next n of `records`, −1 the next payload. */
  plan: number[];
}

/**
 * What became of a group's payloads. The stored records go back as columns, not as cloned
 * objects: the main thread knows each payload's site, device and arrival, and every record of a
 * payload has its channel's kind and the dedupe key `{deviceId}/{msgId}` (validate.ts), so
 * seq, ts, msgId and the body's JSON text (the very text stored) are all it needs to rebuild them.
 */
export interface PayloadsReply {
  /** `counts[i]` stored records are payload i's, in seq order, all of kind `kinds[i]`. */
  counts: Uint32Array;
  kinds: (RecordKind | null)[];
  seqs: number[];
  ts: number[];
  msgIds: string[];
  bodies: string[];
  duplicates: { i: number; ref: string; kind: RecordKind }[];
  rejected: (PayloadRejection & { i: number })[];
}

export interface AppendReply { seqs: (number | null)[]; payloads?: PayloadsReply; commitMs: number; fileMs: number; decodeMs: number }

const { dbFile, evidenceDir } = workerData as { dbFile: string; evidenceDir: string };

const db = new Database(dbFile);
db.pragma('journal_mode = WAL');
// FULL: every commit fsyncs the WAL, so a PUBACK sent after it survives kill -9 and power loss.
db.pragma('synchronous = FULL');
db.pragma('busy_timeout = 5000');
migrate(db, LEDGER_MIGRATIONS, 'ledger.db');

// `run` and its rowid instead of `RETURNING seq` through `get`: no result row to build per record
// (~1.5 µs less per record, a quarter of the insert). A duplicate dedupe key changes nothing.
const insert = db.prepare(
  `INSERT INTO records (dedupe_key, site_id, device_id, kind, msg_id, ts, received_at, body)
   VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(dedupe_key) DO NOTHING`,
);
insert.safeIntegers(false);

function insertOne(r: LedgerRecord, body = JSON.stringify(r.body)): number | null {
  const info = insert.run(r.dedupeKey, r.siteId, r.deviceId, r.kind, r.msgId, r.ts, r.receivedAt, body);
  return info.changes === 1 ? Number(info.lastInsertRowid) : null;
}

/**
 * Topics parsed, by topic: a group's payloads come from a few devices, each on its own few
 * topics, so each is split and pattern-checked once, not per payload (issue 11).
 */
const parsedTopic = boundedMemo(parseDeviceTopic);

/**
 * Decodes every payload of the group. Decoding never throws on input by design; should a bug
 * make it throw, that message alone is rejected as `internal` (the error goes back to be logged).
 */
function decodeAll(b: PayloadBatch, out: PayloadsReply): Decoded[] {
  const decoded: Decoded[] = new Array(b.topics.length);
  let start = 0;
  for (let i = 0; i < b.topics.length; i++) {
    const end = b.ends[i]!;
    const topic = b.topics[i]!;
    const payload = Buffer.from(b.bytes.buffer, b.bytes.byteOffset + start, end - start);
    start = end;
    const at = b.receivedAt[i]!;
    try {
      const t = parsedTopic(topic);
      if (!t || !isInboundChannel(t.channel)) throw new Error(`not an inbound device topic: ${topic}`);
      decoded[i] = decodeMessage(t.channel, payload, { siteId: t.siteId, deviceId: t.deviceId, receivedAt: at, now: at }, topic);
    } catch (e) {
      decoded[i] = { records: [], files: [], rejected: [] };
      out.rejected.push({ i, ref: topic, reason: 'internal', message: 'the gateway could not process this message', error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
      continue;
    }
    for (const r of decoded[i]!.rejected) out.rejected.push({ i, ref: r.ref, reason: r.reason, message: r.message });
  }
  return decoded;
}

const appendAll = db.transaction((req: AppendRequest, decoded: Decoded[] | undefined, out: PayloadsReply | undefined) => {
  const seqs: (number | null)[] = [];
  let r = 0, p = 0;
  for (const step of req.plan) {
    if (step >= 0) {
      for (let k = 0; k < step; k++) seqs.push(insertOne(req.records[r++]!));
      continue;
    }
    const d = decoded![p]!;
    let n = 0;
    for (const rec of d.records) {
      const body = JSON.stringify(rec.body);
      const seq = insertOne(rec, body);
      if (seq === null) {
        out!.duplicates.push({ i: p, ref: rec.msgId, kind: rec.kind });
        continue;
      }
      out!.seqs.push(seq);
      out!.ts.push(rec.ts);
      out!.msgIds.push(rec.msgId);
      out!.bodies.push(body);
      n++;
    }
    out!.kinds[p] = n > 0 ? d.records[0]!.kind : null;
    out!.counts[p++] = n;
  }
  return seqs;
});

/**
 * Fail-stop: after one failed group nothing more is committed, not even a group already queued
 * behind it (the main thread has refused all of them without acknowledging any).
 */
let broken: string | undefined;

void serveRpc<AppendRequest, AppendReply>({
  handle(req) {
    if (broken) throw new Error(`an earlier group failed: ${broken}`);
    const t0 = performance.now();
    try {
      let decoded: Decoded[] | undefined;
      let out: PayloadsReply | undefined;
      let files = req.files;
      if (req.payloads) {
        const m = req.payloads.topics.length;
        out = { counts: new Uint32Array(m), kinds: new Array(m).fill(null), seqs: [], ts: [], msgIds: [], bodies: [], duplicates: [], rejected: [] };
        decoded = decodeAll(req.payloads, out);
        for (const d of decoded) if (d.files.length) files = files.concat(d.files);
      }
      const t1 = performance.now();
      persistEvidence(evidenceDir, files);
      const t2 = performance.now();
      const seqs = appendAll(req, decoded, out);
      return { seqs, ...(out ? { payloads: out } : {}), decodeMs: t1 - t0, fileMs: t2 - t1, commitMs: performance.now() - t2 };
    } catch (e) {
      broken = (e as Error).message;
      throw e;
    }
  },
  close() {
    db.close();
  },
});
