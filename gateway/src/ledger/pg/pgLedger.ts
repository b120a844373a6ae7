/**
 * The ledger on PostgreSQL (region mode, contract §8, issue 14): the same promises as the SQLite
 * ledger (`ledger.ts`), proven by the same suite (`ledgerContract.ts`, bound in pgLedger.test.ts
 * against a real PostgreSQL 15).
 *
 * - Group commit: appends made while a group is on the wire wait and go together as the next
 *   group: one statement, `ledger_append(…)` (schema.ts), one round trip and one transaction for
 *   up to `maxGroup` records. Each append resolves only after its group's COMMIT (the statement
 *   answers after it; synchronous_commit = on), so a PUBACK sent then means durable in PostgreSQL.
 * - Dedupe is global: the unique key lives in PostgreSQL, and every instance's group commit holds
 *   the same advisory lock, so two instances appending one key store it once; the other gets a
 *   duplicate (`seq: null`).
 * - `seq` is the commit order across every instance on the database (schema.ts explains the
 *   lock), so a cursor into the ledger never skips a record.
 * - `onCommitted` listeners see this instance's commits, in seq order, right after each commit.
 *   Records committed by other instances reach a consumer only through `readAfter` (a cursor):
 *   region consumers tail the ledger, they do not listen.
 * - Fail-stop: a group that fails (connection lost, server error) fails the ledger: that group,
 *   those queued behind it and every later append are refused, never acknowledged, and
 *   `onFatal` is told once. A lost answer may hide a commit; the device's retry is then a duplicate.
 * - Evidence files are written (and fsynced) to `evidenceDir` before their group is sent, as the
 *   SQLite writer does. Across instances that directory must be shared storage — not solved here.
 *
 * What differs from `LedgerStore`: every read answers with a promise (`AsyncLedgerStore`), since
 * PostgreSQL is not in the process. `lastSeq` is synchronous but local: the highest seq this
 * instance has seen committed (at open, its own commits, its reads); `headSeq()` asks the database.
 * `scan` pages through the rows (keyset on seq) and resolves with all of them; `scanPages` yields
 * page by page for a consumer that must not hold everything.
 *
 * The consumers take any ledger (`AnyLedgerStore`, types.ts) and await their reads (issue 14);
 * the reads a synchronous step makes (keystaff's day cache) and the report thread's go through
 * `pgSyncReads.ts` with these same statements. `follow` (region mode) makes `onCommitted` hear
 * every instance's commits, not only this one's.
 */
import fs from 'node:fs';
import pg from 'pg';
import { persistEvidence } from '../evidence.ts';
import { GroupCommit, promised, settleCall, type Group } from '../groupCommit.ts';
import { migratePg } from '../../state/pgMigrations.ts';
import { PG_LEDGER_MIGRATIONS } from './schema.ts';
import { toStored, type Row } from '../ledgerQueries.ts';
import { siteShardKey, type Shard } from '../../region/shards.ts';
import { boundedMemo } from '../../util/boundedMemo.ts';
import type { AppendResult, AsyncLedgerStore, Done, EvidenceFile, LedgerRecord, RecordKind, StoredRecord } from '../types.ts';

export interface PgLedgerOptions {
  /** `postgres://…` (SITEGATE_DATABASE_URL). */
  connectionString: string;
  /** Where evidence files go before their record commits (shared storage across instances). */
  evidenceDir: string;
  /** Called after every group commit with its size and time (for metrics). */
  onCommit?: (info: { records: number; commitMs: number; fileMs: number }) => void;
  /** Called once when the ledger fails: nothing more can be made durable. */
  onFatal?: (err: Error) => void;
  /** Most records in one group (a call larger than that still goes as one group). Default 5000. */
  maxGroup?: number;
  /** Connections for reads, besides the writer's one. Default 4. */
  readConnections?: number;
  /**
   * Region mode: `onCommitted` listeners hear every instance's commits, not only this one's, in
   * seq order — read from the table after each own commit and every `everyMs` (default 100). Then
   * `lastSeq` is the last seq they have heard.
   */
  follow?: { everyMs?: number };
}

type Pending = { records: LedgerRecord[]; done: Done<AppendResult[]> };

const COLUMNS = 'seq, dedupe_key, site_id, device_id, kind, msg_id, ts, received_at, body';

/**
 * The reads, each written to match a partial index of schema.ts (the same expression, the kind as
 * a literal or `kind <> 'reading'` beside a parameter), so the planner can use it; the test
 * checks each plan.
 */
export const READS = {
  after: `SELECT ${COLUMNS} FROM ledger_records WHERE seq > $1 ORDER BY seq LIMIT $2`,
  afterKinds: `SELECT ${COLUMNS} FROM ledger_records WHERE seq > $1 AND kind = ANY($3) ORDER BY seq LIMIT $2`,
  // A shard's reads: records stored before site keys were kept (NULL) go to every shard, whose
  // `owns` drops other sites' as it always did.
  afterShard: `SELECT ${COLUMNS} FROM ledger_records WHERE seq > $1 AND (site_key IS NULL OR site_key % $3 = $4) ORDER BY seq LIMIT $2`,
  afterKindsShard: `SELECT ${COLUMNS} FROM ledger_records WHERE seq > $1 AND kind = ANY($3) AND (site_key IS NULL OR site_key % $4 = $5) ORDER BY seq LIMIT $2`,
  bySiteKind: `SELECT ${COLUMNS} FROM ledger_records WHERE site_id = $1 AND kind = $2 AND kind <> 'reading' AND ts >= $3 AND ts < $4 ORDER BY ts, seq`,
  payments: `SELECT ${COLUMNS} FROM ledger_records WHERE site_id = $1 AND kind = 'wage_payment' AND ((body::json) ->> 'period') = $2 ORDER BY ts, seq`,
  checkinsByWorker: `SELECT ${COLUMNS} FROM ledger_records WHERE site_id = $1 AND kind = 'checkin' AND ((body::json) ->> 'workerId') = $2 AND ts >= $3 AND ts < $4 ORDER BY ts, seq`,
  verdictsByWorker: `SELECT ${COLUMNS} FROM ledger_records WHERE site_id = $1 AND kind = 'verdict' AND ((body::json) ->> 'workerId') = $2 AND ts >= $3 AND ts < $4 ORDER BY ts, seq`,
  checkinPhoto: `SELECT 1 FROM ledger_records WHERE site_id = $1 AND kind = 'checkin' AND ((body::json) ->> 'photoSha256') = $2 LIMIT 1`,
  snapshotPage: `SELECT ${COLUMNS} FROM ledger_records WHERE site_id = $1 AND device_id = $2 AND kind = 'snapshot' AND (ts, seq) > ($3, $4) ORDER BY ts, seq LIMIT $5`,
  snapshotHash: `SELECT 1 FROM ledger_records WHERE site_id = $1 AND kind = 'snapshot' AND msg_id = $2 LIMIT 1`,
  head: 'SELECT COALESCE(max(seq), 0) AS s FROM ledger_records',
} as const;

/** BIGINT as a number (seq, epoch ms and counts stay far below 2^53), without touching pg's global parsers. */
const TYPES = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')) as pg.CustomTypesConfig['getTypeParser'],
};

/**
 * PostgreSQL's text cannot hold U+0000 (`invalid byte sequence for encoding "UTF8": 0x00`). A
 * message id may contain it (schemas: 1–128 characters of anything), and a group containing it
 * would fail and stop the ledger, so such a call is refused alone, before it joins a group.
 * (The body is JSON text, where U+0000 is the escape `\u0000`: no problem there.)
 */
function unstorable(r: LedgerRecord): string | undefined {
  for (const [field, v] of [['siteId', r.siteId], ['deviceId', r.deviceId], ['kind', r.kind], ['msgId', r.msgId], ['dedupeKey', r.dedupeKey]] as const) {
    if (v.includes('\u0000')) return field;
  }
  return undefined;
}

/** A site's shard key (region/shards.ts), stored with each of its records; computed once per site. */
const siteKeyOf = boundedMemo(siteShardKey);

export class PgLedger implements AsyncLedgerStore {
  readonly evidenceDir: string;
  private readonly writer: pg.Client;
  private readonly pool: pg.Pool;
  private readonly opts: PgLedgerOptions;
  /** One group on the wire at a time per instance, so this instance's commits settle in order. */
  private readonly front: GroupCommit<Pending>;
  private closing?: Promise<void>;
  /** Closed: no more reads of the table (appends are refused by the front). */
  private closed = false;
  private committedSeq: number;
  private readonly commitListeners = new Set<(records: StoredRecord[]) => void>();
  /** Follow mode: the last seq the listeners heard; a read of the table in progress; another wanted. */
  private delivered: number;
  private tailing: Promise<void> | null = null;
  private tailAgain = false;
  private followTimer?: NodeJS.Timeout;
  private followWaiters: { seq: number; resolve: () => void }[] = [];

  private constructor(opts: PgLedgerOptions, writer: pg.Client, pool: pg.Pool, lastSeq: number) {
    this.opts = opts;
    this.evidenceDir = opts.evidenceDir;
    this.writer = writer;
    this.pool = pool;
    this.front = new GroupCommit<Pending>({
      maxGroup: opts.maxGroup ?? 5000,
      weight: (c) => c.records.length,
      send: (group) => this.send(group),
      onFatal: opts.onFatal,
    });
    this.committedSeq = lastSeq;
    this.delivered = lastSeq;
    if (opts.follow) {
      this.followTimer = setInterval(() => this.tail(), opts.follow.everyMs ?? 100);
      this.followTimer.unref();
    }
    writer.on('error', (e) => this.front.fail(new Error(`ledger connection failed: ${e.message}`)));
  }

  /** Connects, applies the ledger's migrations (once, whichever instance comes first) and reads the head. */
  static async open(opts: PgLedgerOptions): Promise<PgLedger> {
    fs.mkdirSync(opts.evidenceDir, { recursive: true });
    const writer = new pg.Client({ connectionString: opts.connectionString, types: TYPES, keepAlive: true, application_name: 'sitegate-ledger-writer' });
    await writer.connect();
    try {
      await migratePg(writer, PG_LEDGER_MIGRATIONS, 'ledger');
      const head = await writer.query<{ s: number }>(READS.head);
      const pool = new pg.Pool({ connectionString: opts.connectionString, types: TYPES, max: opts.readConnections ?? 4, keepAlive: true, application_name: 'sitegate-ledger-reader' });
      // An idle read connection that dies is dropped by the pool and replaced at the next read.
      pool.on('error', () => {});
      return new PgLedger(opts, writer, pool, head.rows[0]!.s);
    } catch (e) {
      await writer.end().catch(() => {});
      throw e;
    }
  }

  get lastSeq(): number {
    if (this.opts.follow) return this.delivered;
    return this.committedSeq;
  }

  /** The highest committed seq in the database, by any instance. */
  async headSeq(): Promise<number> {
    const r = await this.pool.query<{ s: number }>(READS.head);
    return this.seen(r.rows[0]!.s);
  }

  get backlog(): number {
    return this.front.backlog;
  }

  onCommitted(listener: (records: StoredRecord[]) => void): () => void {
    this.commitListeners.add(listener);
    return () => this.commitListeners.delete(listener);
  }

  append(record: LedgerRecord, files: EvidenceFile[] = []): Promise<AppendResult> {
    return this.appendMany([record], files).then((r) => r[0]!);
  }

  /** The records of one call go into one group and settle with one promise, after its COMMIT. */
  appendMany(records: LedgerRecord[], files: EvidenceFile[] = []): Promise<AppendResult[]> {
    if (records.length === 0 && files.length === 0 && !this.front.refusal()) return Promise.resolve([]);
    for (const r of records) {
      const field = unstorable(r);
      if (field) return Promise.reject(new Error(`a record's ${field} contains U+0000, which PostgreSQL cannot store; nothing of this call was stored`));
    }
    return promised((done) => this.front.submit({ records, done }, files));
  }

  /** A group: its evidence files written first, then one statement, one transaction. */
  private send(group: Group<Pending>): void {
    const { calls, weight: size } = group;
    const t0 = performance.now();
    try {
      persistEvidence(this.evidenceDir, group.files);
    } catch (e) {
      throw new Error(`ledger evidence write failed: ${(e as Error).message}`);
    }
    const t1 = performance.now();
    const keys: string[] = new Array(size), sites: string[] = new Array(size), devices: string[] = new Array(size);
    const kinds: string[] = new Array(size), msgIds: string[] = new Array(size), bodies: string[] = new Array(size);
    const ts: number[] = new Array(size), receivedAt: number[] = new Array(size);
    const siteKeys = new Map<string, number>(); // the group's sites: a few, whatever its size
    let i = 0;
    for (const c of calls) {
      for (const r of c.records) {
        keys[i] = r.dedupeKey; sites[i] = r.siteId; devices[i] = r.deviceId; kinds[i] = r.kind; msgIds[i] = r.msgId;
        ts[i] = r.ts; receivedAt[i] = r.receivedAt; bodies[i] = JSON.stringify(r.body);
        if (!siteKeys.has(r.siteId)) siteKeys.set(r.siteId, siteKeyOf(r.siteId));
        i++;
      }
    }
    this.writer.query<{ o_ord: number; o_seq: number }>({
      name: 'ledger_append',
      text: 'SELECT o_ord, o_seq FROM ledger_append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)',
      values: [keys, sites, devices, kinds, msgIds, ts, receivedAt, bodies, [...siteKeys.keys()], [...siteKeys.values()]],
    }).then(
      (res) => this.front.settle(group.id, () => this.settle(calls, size, res.rows, t1 - t0, performance.now() - t1)),
      (err: Error) => this.front.fail(new Error(`ledger commit failed: ${err.message}`)),
    );
  }

  /** A group committed (the front has already sent the next): answers its calls, then tells the listeners. */
  private settle(calls: Pending[], size: number, rows: { o_ord: number; o_seq: number }[], fileMs: number, commitMs: number): void {
    this.opts.onCommit?.({ records: size, commitMs, fileMs });
    const seqs: (number | null)[] = new Array(size).fill(null);
    for (const r of rows) seqs[r.o_ord - 1] = r.o_seq;
    const committed: StoredRecord[] = [];
    const results: AppendResult[][] = new Array(calls.length);
    let at = 0;
    for (let k = 0; k < calls.length; k++) {
      const c = calls[k]!;
      const out: AppendResult[] = new Array(c.records.length);
      for (let j = 0; j < c.records.length; j++) {
        const seq = seqs[at + j]!;
        out[j] = { seq };
        // A copy: the caller may hand the same record to another ledger (or again).
        if (seq !== null) committed.push({ ...c.records[j]!, seq });
      }
      at += c.records.length;
      results[k] = out;
    }
    // Ordinals follow append order and seq follows ordinals, so `committed` is in seq order.
    if (committed.length) this.seen(committed[committed.length - 1]!.seq);
    for (let k = 0; k < calls.length; k++) settleCall(calls[k]!.done, null, results[k]!);
    if (committed.length) this.deliver(committed);
  }

  /**
   * This instance's commits to the listeners: at once unless following other instances too. Then
   * at once only when they follow the last seq heard without a gap (nobody else committed in
   * between: seq is the commit order without holes); else the table is read from there.
   */
  private deliver(committed: StoredRecord[]): void {
    if (!this.opts.follow) {
      for (const l of this.commitListeners) l(committed);
      return;
    }
    if (!this.tailing && committed[0]!.seq === this.delivered + 1 && committed[committed.length - 1]!.seq === this.delivered + committed.length) {
      this.emit(committed);
      return;
    }
    this.tail();
  }

  private emit(records: StoredRecord[]): void {
    this.delivered = records[records.length - 1]!.seq;
    for (const l of this.commitListeners) l(records);
    if (this.followWaiters.length) {
      const due = this.followWaiters.filter((w) => w.seq <= this.delivered);
      this.followWaiters = this.followWaiters.filter((w) => w.seq > this.delivered);
      for (const w of due) w.resolve();
    }
  }

  /** Reads what every instance committed after the last seq heard, and tells the listeners. */
  private tail(): void {
    if (this.tailing) {
      this.tailAgain = true;
      return;
    }
    if (this.closed || this.front.failed) return;
    this.tailing = (async () => {
      do {
        this.tailAgain = false;
        for (;;) {
          const rows = await this.rows(READS.after, [this.delivered, 5000]);
          if (rows.length) this.emit(rows);
          if (rows.length < 5000) break;
        }
      } while (this.tailAgain);
    })().catch(() => {
      // A failed read is tried again at the next period (the listeners hear nothing out of order).
    }).finally(() => {
      this.tailing = null;
    });
  }

  private seen(seq: number): number {
    if (seq > this.committedSeq) this.committedSeq = seq;
    return seq;
  }

  private async rows(text: string, values: unknown[]): Promise<StoredRecord[]> {
    const r = await this.pool.query<Row>(text, values);
    return r.rows.map(toStored);
  }

  /** Committed records after `seq`, oldest first (the sinks' and checks' cursor read, across instances); see LedgerStore. */
  async readAfter(seq: number, limit: number, kinds?: RecordKind[], shard?: Shard): Promise<StoredRecord[]> {
    const rows = shard
      ? kinds
        ? await this.rows(READS.afterKindsShard, [seq, limit, kinds, shard.of, shard.index])
        : await this.rows(READS.afterShard, [seq, limit, shard.of, shard.index])
      : kinds
        ? await this.rows(READS.afterKinds, [seq, limit, kinds])
        : await this.rows(READS.after, [seq, limit]);
    if (rows.length) this.seen(rows[rows.length - 1]!.seq);
    return rows;
  }

  /** Pages of records of the given kinds after `afterSeq`, in seq order (keyset on seq: each page is one indexed read). */
  async *scanPages(kinds: RecordKind[], afterSeq = 0, pageSize = 5000): AsyncGenerator<StoredRecord[]> {
    for (let after = afterSeq; ;) {
      const page = await this.readAfter(after, pageSize, kinds);
      if (page.length === 0) return;
      yield page;
      if (page.length < pageSize) return;
      after = page[page.length - 1]!.seq;
    }
  }

  /** Every record of the given kinds after `afterSeq`, in seq order, read page by page (all held at the end). */
  async scan(kinds: RecordKind[], afterSeq = 0): Promise<StoredRecord[]> {
    const out: StoredRecord[] = [];
    for await (const page of this.scanPages(kinds, afterSeq)) for (const r of page) out.push(r);
    return out;
  }

  /** Records of a site and kind with event time in [from, to), by event time. */
  bySiteKind(siteId: string, kind: Exclude<RecordKind, 'reading'>, from = 0, to = Number.MAX_SAFE_INTEGER): Promise<StoredRecord[]> {
    return this.rows(READS.bySiteKind, [siteId, kind, from, to]);
  }

  /** A site's wage payments of a period (`YYYY-MM`), by paidAt, through the period index. */
  paymentsOf(siteId: string, period: string): Promise<StoredRecord[]> {
    return this.rows(READS.payments, [siteId, period]);
  }

  byWorker(siteId: string, kind: 'checkin' | 'verdict', workerId: string, from: number, to: number): Promise<StoredRecord[]> {
    return this.rows(kind === 'checkin' ? READS.checkinsByWorker : READS.verdictsByWorker, [siteId, workerId, from, to]);
  }

  async hasCheckinPhoto(siteId: string, sha256: string): Promise<boolean> {
    const r = await this.pool.query(READS.checkinPhoto, [siteId, sha256]);
    return r.rowCount! > 0;
  }

  /** A device's camera snapshots after the position (ts, seq), by arrival time then seq, at most `limit`. */
  snapshots(siteId: string, deviceId: string, after: { ts: number; seq: number }, limit: number): Promise<StoredRecord[]> {
    return this.rows(READS.snapshotPage, [siteId, deviceId, after.ts, after.seq, limit]);
  }

  async hasSnapshot(siteId: string, sha256: string): Promise<boolean> {
    const r = await this.pool.query(READS.snapshotHash, [siteId, sha256]);
    return r.rowCount! > 0;
  }

  async countByKind(): Promise<Record<string, number>> {
    const r = await this.pool.query<{ kind: string; n: number }>('SELECT kind, count(*) AS n FROM ledger_records GROUP BY kind');
    return Object.fromEntries(r.rows.map((x) => [x.kind, x.n]));
  }

  /** Resolves once nothing is pending or on the wire (or the ledger failed). */
  drained(): Promise<void> {
    return this.front.drained().then(() => this.heard());
  }

  /** Follow mode: resolves once the listeners have heard this instance's commits so far. */
  private heard(): Promise<void> {
    if (!this.opts.follow || this.delivered >= this.committedSeq || this.front.failed || this.closed) return Promise.resolve();
    const seq = this.committedSeq;
    return new Promise((resolve) => {
      this.followWaiters.push({ seq, resolve });
      this.tail();
    });
  }

  /** Waits for every pending append to commit, then closes the connections; appends after it are refused. */
  close(): Promise<void> {
    return (this.closing ??= (async () => {
      await this.front.close();
      await this.heard();
      this.closed = true;
      clearInterval(this.followTimer);
      await this.tailing;
      await Promise.allSettled([this.writer.end(), this.pool.end()]);
    })());
  }
}
