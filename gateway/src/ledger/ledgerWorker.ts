/**
 * The ledger's single writer, on its own thread so that an fsync never stalls the broker or the
 * API: while one group commit is on disk, the main thread parses and validates the next group.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { LEDGER_SCHEMA } from './schema.ts';
import type { EvidenceFile, LedgerRecord } from './types.ts';

export interface AppendRequest { id: number; records: LedgerRecord[]; files: EvidenceFile[] }
export interface AppendReply { id: number; seqs?: (number | null)[]; error?: string; commitMs: number; fileMs: number }

const { dbFile, evidenceDir } = workerData as { dbFile: string; evidenceDir: string };

const db = new Database(dbFile);
db.pragma('journal_mode = WAL');
// FULL: every commit fsyncs the WAL, so a PUBACK sent after it survives kill -9 and power loss.
db.pragma('synchronous = FULL');
db.pragma('busy_timeout = 5000');
db.exec(LEDGER_SCHEMA);

const insert = db.prepare(
  `INSERT INTO records (dedupe_key, site_id, device_id, kind, msg_id, ts, received_at, body)
   VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(dedupe_key) DO NOTHING RETURNING seq`,
);
insert.safeIntegers(false);

const appendAll = db.transaction((records: LedgerRecord[]) =>
  records.map((r) => {
    const row = insert.get(r.dedupeKey, r.siteId, r.deviceId, r.kind, r.msgId, r.ts, r.receivedAt, JSON.stringify(r.body)) as
      | { seq: number }
      | undefined;
    return row ? row.seq : null;
  }),
);

/** Writes each evidence file once under its SHA-256 (never overwritten) and makes it durable. */
function persistFiles(files: EvidenceFile[]): void {
  const dirs = new Set<string>();
  for (const f of files) {
    const dir = path.join(evidenceDir, f.sha256.slice(0, 2));
    const final = path.join(dir, f.sha256);
    if (fs.existsSync(final)) continue;
    fs.mkdirSync(dir, { recursive: true });
    const tmp = `${final}.${process.pid}.tmp`;
    const fd = fs.openSync(tmp, 'w', 0o640);
    try {
      fs.writeSync(fd, f.data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    try {
      fs.linkSync(tmp, final); // fails if it exists: the first copy stays, bytes are equal by hash
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    } finally {
      fs.unlinkSync(tmp);
    }
    dirs.add(dir);
  }
  for (const dir of dirs) fsyncDir(dir);
  if (dirs.size) fsyncDir(evidenceDir);
}

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try { fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
}

/**
 * Fail-stop: after one failed group nothing more is committed, not even a group already queued
 * behind it (the main thread has refused all of them without acknowledging any).
 */
let broken: string | undefined;

parentPort!.on('message', (req: AppendRequest | { close: true }) => {
  if ('close' in req) {
    db.close();
    parentPort!.postMessage({ closed: true });
    return;
  }
  if (broken) {
    parentPort!.postMessage({ id: req.id, error: `an earlier group failed: ${broken}`, fileMs: 0, commitMs: 0 } satisfies AppendReply);
    return;
  }
  const t0 = performance.now();
  let reply: AppendReply;
  try {
    persistFiles(req.files);
    const t1 = performance.now();
    const seqs = appendAll(req.records);
    reply = { id: req.id, seqs, fileMs: t1 - t0, commitMs: performance.now() - t1 };
  } catch (e) {
    broken = (e as Error).message;
    reply = { id: req.id, error: (e as Error).stack ?? String(e), fileMs: 0, commitMs: performance.now() - t0 };
  }
  parentPort!.postMessage(reply);
});
parentPort!.postMessage({ ready: true });
