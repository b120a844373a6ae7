/**
 * Issue 14: the consumers await their ledger reads, so a ledger whose reads answer with promises
 * (PostgreSQL in region mode, `pg/pgLedger.ts`) runs them. PostgreSQL is not started here:
 * `ReadsLater` wraps the real SQLite ledger and answers each read one turn of the event loop later
 * (setImmediate), which is what a read over a socket does to its caller. The read is made when it
 * is asked for, so commits (their `onCommitted` listeners) can come while its answer is out: the
 * interleaving that a synchronous read never has and that a consumer must not lose records in. The
 * writes, listeners and `lastSeq` are the ledger's own, as they are PgLedger's.
 *
 * The check runner (hazard and device-offline, with a small queue and read-back so it reads back
 * from the ledger while records keep coming) and a sink runner (a small tail, so it catches up
 * from the ledger) give exactly the alerts and points on it that they give on the plain ledger.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { AlertStore } from '../alerts/alertStore.ts';
import { AuditTrail } from '../audit/auditTrail.ts';
import { CheckRunner } from '../checks/checkRunner.ts';
import type { CheckContext, CheckFactory } from '../checks/check.ts';
import { deviceOfflineCheck } from '../checks/device-offline/deviceOffline.ts';
import { hazardCheck } from '../checks/hazard/hazardCheck.ts';
import { createMetrics } from '../observability/metrics.ts';
import { Registry } from '../registry/registry.ts';
import type { Sink } from '../sinks/sink.ts';
import { SinkRunner } from '../sinks/sinkRunner.ts';
import { SinkStateStore } from '../sinks/sinkState.ts';
import { LiveState } from '../state/liveState.ts';
import { Ledger } from './ledger.ts';
import type { AppendResult, AsyncLedgerStore, EvidenceFile, LedgerRecord, RecordKind, StoredRecord } from './types.ts';

/** The SQLite ledger with PgLedger's shape: every read answered by a promise, a turn later. */
class ReadsLater implements AsyncLedgerStore {
  reads = 0;
  /** This many `readAfter` calls fail, as a read does while the database is unreachable. */
  failReads = 0;
  /** Reads during whose wait a commit came (the case a synchronous read never has). */
  overtaken = 0;

  /** While set: answers held until the next commit, so every read is overtaken by one (a consumer's worst case). */
  private held: (() => void)[] | undefined;

  constructor(private readonly ledger: Ledger) {
    // Listeners run synchronously, in turn; an answer released here is seen after all of them.
    ledger.onCommitted(() => this.release());
  }

  overtakeReads(on: boolean): void {
    if (!on) this.release();
    this.held = on ? [] : undefined;
  }

  private release(): void {
    const held = this.held;
    if (held === undefined) return;
    this.held = [];
    for (const answer of held) answer();
  }

  get evidenceDir(): string { return this.ledger.evidenceDir; }
  get lastSeq(): number { return this.ledger.lastSeq; }
  get backlog(): number { return this.ledger.backlog; }
  append(record: LedgerRecord, files?: EvidenceFile[]): Promise<AppendResult> { return this.ledger.append(record, files); }
  appendMany(records: LedgerRecord[], files?: EvidenceFile[]): Promise<AppendResult[]> { return this.ledger.appendMany(records, files); }
  onCommitted(listener: (records: StoredRecord[]) => void): () => void { return this.ledger.onCommitted(listener); }
  drained(): Promise<void> { return this.ledger.drained(); }
  close(): Promise<void> { return this.ledger.close(); }

  private later<T>(answer: T): Promise<T> {
    this.reads++;
    const asked = this.ledger.lastSeq;
    return new Promise((resolve) => {
      const reply = () => {
        if (this.ledger.lastSeq > asked) this.overtaken++;
        resolve(answer);
      };
      if (this.held) this.held.push(reply);
      else setImmediate(reply);
    });
  }

  readAfter(seq: number, limit: number, kinds?: RecordKind[]) {
    if (this.failReads > 0) {
      this.failReads--;
      this.reads++;
      return new Promise<StoredRecord[]>((_, reject) => setImmediate(() => reject(new Error('connection terminated unexpectedly'))));
    }
    return this.later(this.ledger.readAfter(seq, limit, kinds));
  }
  scan(kinds: RecordKind[], afterSeq?: number) { return this.later([...this.ledger.scan(kinds, afterSeq)]); }
  bySiteKind(siteId: string, kind: Exclude<RecordKind, 'reading'>, from?: number, to?: number) { return this.later(this.ledger.bySiteKind(siteId, kind, from, to)); }
  paymentsOf(siteId: string, period: string) { return this.later(this.ledger.paymentsOf(siteId, period)); }
  byWorker(siteId: string, kind: 'checkin' | 'verdict', workerId: string, from: number, to: number) { return this.later(this.ledger.byWorker(siteId, kind, workerId, from, to)); }
  hasCheckinPhoto(siteId: string, sha256: string) { return this.later(this.ledger.hasCheckinPhoto(siteId, sha256)); }
  snapshots(siteId: string, deviceId: string, after: { ts: number; seq: number }, limit: number) { return this.later(this.ledger.snapshots(siteId, deviceId, after, limit)); }
  hasSnapshot(siteId: string, sha256: string) { return this.later(this.ledger.hasSnapshot(siteId, sha256)); }
  countByKind() { return this.later(this.ledger.countByKind()); }
}

const SITE = 'S-LATER';
const T0 = Date.parse('2026-09-10T08:00:00+08:00');
const NOW = T0 + 86_400_000;

/** Readings of three dust sensors every minute, crossing the site's pm10 limits and back; ENV-3 reports offline, then speaks again. */
function records(from: number, to: number): LedgerRecord[] {
  const out: LedgerRecord[] = [];
  for (let i = from; i < to; i++) {
    const ts = T0 + i * 60_000;
    for (const deviceId of ['ENV-1', 'ENV-2', 'ENV-3']) {
      const pm10 = deviceId === 'ENV-2' ? 40 : i % 90 < 45 ? 60 : 170;
      out.push({ siteId: SITE, deviceId, kind: 'reading', msgId: `${deviceId}-${i}`, dedupeKey: `${deviceId}/${i}`, ts, receivedAt: ts, body: { metrics: { pm10 } } });
    }
    if (i % 120 === 60) out.push({ siteId: SITE, deviceId: 'ENV-3', kind: 'status', msgId: `s-${i}`, dedupeKey: `ENV-3/s-${i}`, ts: ts + 1, receivedAt: ts + 1, body: { state: 'offline' } });
  }
  return out;
}

function memorySink(): Sink & { written: StoredRecord[] } {
  const written: StoredRecord[] = [];
  return {
    name: 'memory', written,
    async write(batch) { written.push(...batch); },
    render: (r) => JSON.stringify(r),
    async ping() { return true; },
    async close() {},
  };
}

/** A check that keeps the seqs the runner hands it: each record once, in order, is what the runner promises. */
function recorder(seen: number[]): CheckFactory {
  return () => ({ name: 'recorder', maxBatch: 7, onRecords(rs: StoredRecord[]) { for (const r of rs) seen.push(r.seq); } });
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** History before the start, then records committed while the runners read back; what came out. */
async function run(readsLater: boolean) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sitegate-reads-later-'));
  dirs.push(dir);
  const now = () => NOW;
  const registry = new Registry(dir, { scryptN: 1024, now });
  registry.putSite(SITE, { name: SITE, regionCode: '330106', settings: { thresholds: { pm10: { warning: 100, critical: 150 } } } });
  for (const d of ['ENV-1', 'ENV-2', 'ENV-3']) await registry.putDevice(SITE, d, { kind: 'sensor', intervalS: 60 }, 1024);
  const sqlite = await Ledger.open(dir);
  const ledger = readsLater ? new ReadsLater(sqlite) : sqlite;
  await ledger.appendMany(records(0, 100));

  const logger = pino({ level: 'silent' });
  const metrics = createMetrics();
  const audit = new AuditTrail(registry.db);
  const alerts = new AlertStore({ db: registry.db, audit, now });
  const ctx: CheckContext = { registry, ledger, alerts, audit, live: await LiveState.load(ledger), logger, metrics, now, dataDir: dir };
  const seen: number[] = [];
  const checks = new CheckRunner(ctx, [hazardCheck(), deviceOfflineCheck(), recorder(seen)], { tickMs: 3_600_000, maxQueued: 40, readBack: 25 });
  const sink = memorySink();
  const sinks = new SinkRunner({ sink, ledger, state: new SinkStateStore(registry.db), metrics, logger, now, batchSize: 30, flushMs: 1, maxTail: 20 });
  sinks.start();
  const started = checks.start(ledger);
  // Committed while both read back: one commit per append. On the deferred ledger each read's
  // answer waits for the next of them meanwhile.
  if (ledger instanceof ReadsLater) ledger.overtakeReads(true);
  for (let i = 100; i < 400; i += 5) await ledger.appendMany(records(i, i + 5));
  if (ledger instanceof ReadsLater) ledger.overtakeReads(false);
  await started;
  await checks.idle();
  await sinks.stop();
  await checks.stop();

  const lastSeq = ledger.lastSeq;
  const result = {
    lastSeq,
    alerts: alerts.list({ limit: 10_000, includeWithdrawn: true }).items
      .map((a) => ({ kind: a.kind, key: a.key, severity: a.severity, openedAt: a.openedAt, state: a.state }))
      .sort((a, b) => `${a.key}@${a.openedAt}`.localeCompare(`${b.key}@${b.openedAt}`)),
    sunk: sink.written.map((r) => r.seq),
    seen,
    reads: readsLater ? (ledger as ReadsLater).reads : 0,
    overtaken: readsLater ? (ledger as ReadsLater).overtaken : 0,
  };
  await sqlite.close();
  registry.close();
  return result;
}

describe('consumers on a ledger whose reads answer later (PostgreSQL-shaped)', () => {
  it('check runner and sink runner give the same alerts and points as on the plain SQLite ledger', async () => {
    const plain = await run(false);
    const later = await run(true);
    // The scenario means something: both limits crossed, offline raised and cleared, every record sunk once, in order.
    expect(new Set(plain.alerts.map((a) => a.kind))).toEqual(new Set(['hazard.threshold', 'device.offline']));
    const all = Array.from({ length: plain.lastSeq }, (_, i) => i + 1);
    expect(plain.sunk).toEqual(all);
    expect(plain.seen).toEqual(all);
    // The reads were answered later, and commits came while some of them were out.
    expect(later.reads).toBeGreaterThan(10);
    expect(later.overtaken).toBeGreaterThan(0);
    expect(later.lastSeq).toBe(plain.lastSeq);
    expect(later.alerts).toEqual(plain.alerts);
    expect(later.seen).toEqual(plain.seen);
    expect(later.sunk).toEqual(plain.sunk);
  }, 60_000);

  /** A registry and a SQLite ledger holding 20 readings, its reads answered later. */
  async function historyOf20() {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sitegate-reads-later-'));
    dirs.push(dir);
    const now = () => NOW;
    const registry = new Registry(dir, { scryptN: 1024, now });
    const sqlite = await Ledger.open(dir);
    const ledger = new ReadsLater(sqlite);
    await ledger.appendMany(records(0, 20));
    return { dir, now, registry, sqlite, ledger };
  }

  it('a read-back that fails is made again after the back-off, and the check still gets every record once', async () => {
    const { dir, now, registry, sqlite, ledger } = await historyOf20();
    const audit = new AuditTrail(registry.db);
    const ctx: CheckContext = {
      registry, ledger, audit, alerts: new AlertStore({ db: registry.db, audit, now }), live: await LiveState.load(ledger),
      logger: pino({ level: 'silent' }), metrics: createMetrics(), now, dataDir: dir,
    };
    const seen: number[] = [];
    const checks = new CheckRunner(ctx, [recorder(seen)], { tickMs: 3_600_000, readBack: 100, retryMs: 5 });
    ledger.failReads = 2;
    const readsBefore = ledger.reads;
    await checks.start(ledger);
    await checks.idle();
    expect(seen).toEqual(Array.from({ length: ledger.lastSeq }, (_, i) => i + 1));
    expect(checks.state().checks.recorder!.failures).toBe(2);
    // Two failed reads, then the read-back that caught up: no read made at once after a failure.
    expect(ledger.reads - readsBefore).toBe(3);
    await checks.stop();
    await sqlite.close();
    registry.close();
  });

  it('a sink catch-up read that fails makes the sink unhealthy and is made again after the back-off; every record reaches it once', async () => {
    const { dir, now, registry, sqlite, ledger } = await historyOf20();
    const sink = memorySink();
    const metrics = createMetrics();
    // The runner starts behind (the history is not in its tail), so its first reads go to the ledger.
    const sinks = new SinkRunner({ sink, ledger, state: new SinkStateStore(registry.db), metrics, logger: pino({ level: 'silent' }), now, flushMs: 1, minBackoffMs: 100, maxBackoffMs: 100, random: () => 1 });
    ledger.failReads = 2;
    const readsBefore = ledger.reads;
    sinks.start();
    await expect.poll(() => sinks.state().lastError).toMatch(/ledger read failed: connection terminated/);
    await expect.poll(() => sink.written.length).toBe(ledger.lastSeq);
    await sinks.stop();
    expect(sink.written.map((r) => r.seq)).toEqual(Array.from({ length: ledger.lastSeq }, (_, i) => i + 1));
    expect(sinks.state()).toMatchObject({ healthy: true, lagRecords: 0 });
    expect(ledger.reads - readsBefore).toBeLessThan(10);
    await sqlite.close();
    registry.close();
  });
});
