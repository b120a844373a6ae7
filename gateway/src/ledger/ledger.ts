import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { RpcWorker } from '../util/workerRpc.ts';
import { boundedMemo } from '../util/boundedMemo.ts';
import { siteShardKey, type Shard } from '../region/shards.ts';
import { GroupCommit, promised, settleCall, type Group } from './groupCommit.ts';
import { deviceDedupeKey } from '../ingest/validate.ts';
import type { AppendReply, AppendRequest, PayloadBatch } from './ledgerWorker.ts';
import { LedgerQueries, toStored, type LedgerReads, type Row } from './ledgerQueries.ts';
import type { AppendResult, Done, EvidenceFile, InboundPayload, LedgerRecord, PayloadLedger, PayloadResult, RecordKind, StoredRecord } from './types.ts';

/**
 * One `appendMany` (or `append`), or one payload: its records commit in one group and settle with
 * one call of `done` — a callback, not a promise: a device's publish is answered from it with no
 * promise or microtask per message (issue 11).
 */
type Pending =
  | { records: LedgerRecord[]; payload?: undefined; done: Done<AppendResult[]> }
  | { records: LedgerRecord[]; payload: InboundPayload; done: Done<PayloadResult> };

const NO_RECORDS: LedgerRecord[] = [];

/**
 * A payload's share of a group before it is decoded: about one record per 128 bytes (a reading
 * is ~100 bytes of JSON), so a batch of 1,000 readings weighs what its records will.
 */
const payloadWeight = (p: InboundPayload) => 1 + (p.payload.length >> 7);

export interface LedgerOptions {
  /** Called after every group commit with its size and timings (for metrics). */
  onCommit?: (info: { records: number; commitMs: number; fileMs: number }) => void;
  /** Called when the writer fails: nothing more can be made durable. */
  onFatal?: (err: Error) => void;
  maxGroup?: number;
  /**
   * Pending records that make a burst: enough to start a commit at once instead of at the next
   * turn of the event loop, and to queue another group behind the one on disk (default 500).
   */
  burstGroup?: number;
}

/** Groups handed to the writer and not yet answered: the one on disk and, in a burst, a few queued behind it. */
const MAX_INFLIGHT_GROUPS = 4;

/**
 * Durable, deduplicating, append-only store of accepted messages (better-sqlite3, WAL).
 *
 * Group commit: appends made while a commit is on disk wait in `pending` and go to the writer
 * thread together as the next transaction, so one fsync covers all of them. `append` resolves
 * only after its transaction committed — callers acknowledge to devices after that
 * (MQTT-4.3.2: the receiver "MUST respond with a PUBACK … having accepted ownership").
 */
export class Ledger implements LedgerReads, PayloadLedger {
  readonly file: string;
  readonly evidenceDir: string;
  private readonly worker: RpcWorker<AppendRequest, AppendReply>;
  private readonly reader: Database.Database;
  private readonly queries: LedgerQueries;
  private readonly front: GroupCommit<Pending>;
  private closing?: Promise<void>;
  private readonly opts: LedgerOptions;
  private committedSeq: number;
  private readonly commitListeners = new Set<(records: StoredRecord[]) => void>();

  private constructor(file: string, evidenceDir: string, worker: RpcWorker<AppendRequest, AppendReply>, reader: Database.Database, opts: LedgerOptions) {
    this.file = file;
    this.evidenceDir = evidenceDir;
    this.worker = worker;
    this.reader = reader;
    this.queries = new LedgerQueries(reader);
    this.opts = opts;
    this.front = new GroupCommit<Pending>({
      maxGroup: opts.maxGroup ?? 5000,
      burstGroup: opts.burstGroup ?? 500,
      maxInflight: MAX_INFLIGHT_GROUPS,
      weight: (c) => (c.payload ? payloadWeight(c.payload) : c.records.length),
      send: (group) => this.send(group),
      onFatal: opts.onFatal,
    });
    this.committedSeq = (reader.prepare('SELECT COALESCE(MAX(seq), 0) AS s FROM records').get() as { s: number }).s;
    worker.onDeath((e) => this.front.fail(e));
  }

  static async open(dataDir: string, opts: LedgerOptions = {}): Promise<Ledger> {
    fs.mkdirSync(dataDir, { recursive: true });
    const file = path.join(dataDir, 'ledger.db');
    const evidenceDir = path.join(dataDir, 'evidence');
    fs.mkdirSync(evidenceDir, { recursive: true });
    const worker = await RpcWorker.start<AppendRequest, AppendReply>(new URL('./ledgerWorker.ts', import.meta.url), { name: 'ledger', data: { dbFile: file, evidenceDir } });
    const reader = new Database(file, { readonly: true, fileMustExist: true });
    reader.pragma('busy_timeout = 5000');
    // A site's shard key (region/shards.ts) for the shard reads, computed once per site.
    reader.function('site_shard', { deterministic: true }, boundedMemo(siteShardKey) as (site: unknown) => number);
    return new Ledger(file, evidenceDir, worker, reader, opts);
  }

  /** Records waiting for, or in, a group commit. */
  get backlog(): number {
    return this.front.backlog;
  }

  get lastSeq(): number {
    return this.committedSeq;
  }

  /** Listeners see every committed (non-duplicate) record, in seq order, right after the commit. */
  onCommitted(listener: (records: StoredRecord[]) => void): () => void {
    this.commitListeners.add(listener);
    return () => this.commitListeners.delete(listener);
  }

  append(record: LedgerRecord, files: EvidenceFile[] = []): Promise<AppendResult> {
    return this.appendMany([record], files).then((r) => r[0]!);
  }

  /**
   * The records of one message (a reading, a batch of up to 1,000) go into the same group and
   * settle with one promise: a promise per record cost the ingest path more than the commit.
   */
  appendMany(records: LedgerRecord[], files: EvidenceFile[] = []): Promise<AppendResult[]> {
    if (records.length === 0 && files.length === 0 && !this.front.refusal()) return Promise.resolve([]);
    return promised((done) => this.front.submit({ records, done }, files));
  }

  /**
   * A device payload, decoded and validated on the writer's thread with the rest of its group and
   * stored if valid; `done` hears, after that group's commit, what became of each of its records.
   */
  submitPayload(p: InboundPayload, done: Done<PayloadResult>): void {
    this.front.submit({ records: NO_RECORDS, payload: p, done });
  }

  /**
   * Hands a group to the writer: one transaction, one fsync. Its payloads go as one transferred
   * buffer, decoded there. The front sends a group when the writer is idle, so that records
   * arriving during a commit form the next group; a burst — hundreds of records parsed in one go,
   * as when a QoS 0 publisher's whole socket buffer is read — goes at once, and may queue behind
   * the group on disk: the writer then does not wait for the main thread, and the main thread
   * parses the rest of the burst while the first part commits.
   */
  private send(group: Group<Pending>): void {
    const { calls } = group;
    let payloads = 0;
    for (const c of calls) if (c.payload) payloads++;
    const records = payloads === 0 && calls.length === 1 ? calls[0]!.records : calls.flatMap((c) => c.records);
    const req: AppendRequest = { records, files: group.files, plan: [] };
    let transfer: ArrayBuffer[] = [];
    if (payloads === 0) req.plan.push(records.length);
    else {
      const batch = this.payloadBatch(calls, payloads, req.plan);
      req.payloads = batch;
      transfer = [batch.bytes.buffer as ArrayBuffer, batch.ends.buffer as ArrayBuffer, batch.receivedAt.buffer as ArrayBuffer];
    }
    this.worker.call(req, transfer).then(
      (reply) => this.front.settle(group.id, () => this.settle(calls, records, reply)),
      (err: Error) => this.front.fail(new Error(`ledger commit failed: ${err.message}`)),
    );
  }

  /**
   * The group's payloads as one buffer and three arrays, transferred to the writer (one copy of
   * each payload's bytes, none of them cloned again), and the group's order in `plan`.
   */
  private payloadBatch(calls: Pending[], count: number, plan: number[]): PayloadBatch {
    let total = 0;
    for (const c of calls) if (c.payload) total += c.payload.payload.length;
    // Not from Buffer's shared pool: the whole ArrayBuffer moves to the writer.
    const bytes = new Uint8Array(total);
    const ends = new Uint32Array(count);
    const receivedAt = new Float64Array(count);
    const topics: string[] = new Array(count);
    let at = 0, i = 0, run = 0;
    for (const c of calls) {
      if (!c.payload) { run += c.records.length; continue; }
      if (run > 0) { plan.push(run); run = 0; }
      plan.push(-1);
      bytes.set(c.payload.payload, at);
      at += c.payload.payload.length;
      ends[i] = at;
      receivedAt[i] = c.payload.receivedAt;
      topics[i++] = c.payload.topic;
    }
    if (run > 0) plan.push(run);
    return { bytes, ends, receivedAt, topics };
  }

  /** A group committed (the front has already sent the next): answers its calls, then tells the listeners. */
  private settle(calls: Pending[], records: LedgerRecord[], reply: AppendReply): void {
    const { seqs, payloads } = reply;
    this.opts.onCommit?.({ records: records.length + (payloads ? payloads.seqs.length + payloads.duplicates.length : 0), commitMs: reply.commitMs, fileMs: reply.fileMs });
    // Listeners get the group's stored records in seq order: appended records and decoded payloads interleaved as called.
    const committed: StoredRecord[] = [];
    const results: (AppendResult[] | PayloadResult)[] = new Array(calls.length);
    let at = 0, p = 0, pc = 0, pd = 0, pr = 0;
    for (let k = 0; k < calls.length; k++) {
      const c = calls[k]!;
      if (c.payload) {
        const n = payloads!.counts[p]!;
        const mine: StoredRecord[] = new Array(n);
        if (n > 0) {
          const { seqs: pseqs, ts, msgIds, bodies } = payloads!;
          const { siteId, deviceId, receivedAt } = c.payload;
          const kind = payloads!.kinds[p]!;
          for (let j = 0; j < n; j++, pc++) {
            // Built here in one shape from the stored columns (see PayloadsReply).
            const r: StoredRecord = {
              siteId, deviceId, kind, msgId: msgIds[pc]!, dedupeKey: deviceDedupeKey(deviceId, msgIds[pc]!),
              ts: ts[pc]!, receivedAt, body: JSON.parse(bodies[pc]!) as Record<string, unknown>, seq: pseqs[pc]!,
            };
            mine[j] = r;
            committed.push(r);
          }
        }
        const duplicates: PayloadResult['duplicates'] = [];
        while (pd < payloads!.duplicates.length && payloads!.duplicates[pd]!.i === p) { const d = payloads!.duplicates[pd++]!; duplicates.push({ ref: d.ref, kind: d.kind }); }
        const rejected: PayloadResult['rejected'] = [];
        while (pr < payloads!.rejected.length && payloads!.rejected[pr]!.i === p) {
          const { i: _, ...r } = payloads!.rejected[pr++]!;
          rejected.push(r);
        }
        results[k] = { committed: mine, duplicates, rejected };
        p++;
        continue;
      }
      const n = c.records.length;
      const out: AppendResult[] = new Array(n);
      for (let j = 0; j < n; j++) {
        const seq = seqs[at + j]!;
        out[j] = { seq };
        if (seq === null) continue;
        // The record itself becomes the stored record (nobody else holds it): no copy per record.
        const stored = records[at + j] as StoredRecord;
        stored.seq = seq;
        committed.push(stored);
      }
      at += n;
      results[k] = out;
    }
    if (committed.length) this.committedSeq = Math.max(this.committedSeq, committed[committed.length - 1]!.seq);
    for (let k = 0; k < calls.length; k++) settleCall(calls[k]!.done as Done<AppendResult[] | PayloadResult>, null, results[k]!);
    if (committed.length) for (const l of this.commitListeners) l(committed);
  }

  /** Committed records after `seq`, oldest first (the sinks' and checks' catch-up read); see LedgerStore. */
  readAfter(seq: number, limit: number, kinds?: RecordKind[], shard?: Shard): StoredRecord[] {
    const where = ['seq > ?'];
    const params: unknown[] = [seq];
    if (kinds) {
      where.push(`kind IN (${kinds.map(() => '?').join(',')})`);
      params.push(...kinds);
    }
    if (shard) {
      where.push('site_shard(site_id) % ? = ?');
      params.push(shard.of, shard.index);
    }
    const rows = this.stmt(`SELECT * FROM records WHERE ${where.join(' AND ')} ORDER BY seq LIMIT ?`).all(...params, limit) as Row[];
    return rows.map(toStored);
  }

  /** Records of a site and kind with event time in [from, to), by event time. */
  bySiteKind(siteId: string, kind: Exclude<RecordKind, 'reading'>, from = 0, to = Number.MAX_SAFE_INTEGER): StoredRecord[] {
    return this.queries.bySiteKind(siteId, kind, from, to);
  }

  /** The wage payments of a site for a period (`YYYY-MM`), by paidAt: by the period index, not a scan of the site's payments. */
  paymentsOf(siteId: string, period: string): StoredRecord[] {
    return this.queries.paymentsOf(siteId, period);
  }

  byWorker(siteId: string, kind: 'checkin' | 'verdict', workerId: string, from: number, to: number): StoredRecord[] {
    return this.queries.byWorker(siteId, kind, workerId, from, to);
  }

  /** Whether a check-in of the site refers to a photo: by the photo index, not a scan of the site's check-ins. */
  hasCheckinPhoto(siteId: string, sha256: string): boolean {
    return this.queries.hasCheckinPhoto(siteId, sha256);
  }

  snapshots(siteId: string, deviceId: string, after: { ts: number; seq: number }, limit: number): StoredRecord[] {
    return this.queries.snapshots(siteId, deviceId, after, limit);
  }

  hasSnapshot(siteId: string, sha256: string): boolean {
    return this.queries.hasSnapshot(siteId, sha256);
  }

  /** Iterates every record of the given kinds in seq order without loading them all. */
  *scan(kinds: RecordKind[], afterSeq = 0): Generator<StoredRecord> {
    const stmt = this.reader.prepare(`SELECT * FROM records WHERE seq > ? AND kind IN (${kinds.map(() => '?').join(',')}) ORDER BY seq`);
    for (const row of stmt.iterate(afterSeq, ...kinds) as Iterable<Row>) yield toStored(row);
  }

  countByKind(): Record<string, number> {
    const rows = this.reader.prepare('SELECT kind, COUNT(*) AS n FROM records GROUP BY kind').all() as { kind: string; n: number }[];
    return Object.fromEntries(rows.map((r) => [r.kind, r.n]));
  }

  private readonly stmt = boundedMemo((sql: string) => this.reader.prepare(sql), 100);

  /** Resolves once nothing is pending or in flight (or the writer failed). */
  drained(): Promise<void> {
    return this.front.drained();
  }

  /** Waits for every pending append to commit, then stops the writer; appends after it are refused. */
  close(): Promise<void> {
    return (this.closing ??= (async () => {
      await this.front.close();
      await this.worker.close();
      this.reader.close();
    })());
  }
}
