import { afterEach, beforeEach, expect, it } from 'vitest';
import { shardOf } from '../region/shards.ts';
import type { AsyncLedgerStore, LedgerRecord, LedgerStore, RecordKind, StoredRecord } from './types.ts';

/**
 * The contract every ledger implementation passes (the idea of aedes-persistence's abstract
 * suite; style.md "Abstract suites"). The rest of the gateway relies on exactly these promises:
 * an append resolves only when the record is durable and readable; a dedupe key is stored once;
 * `seq` is the commit order; listeners see each committed record once, in order, duplicates never;
 * the indexed reads answer by site, kind, worker, period and photo; what is committed survives a
 * reopen; nothing is accepted after close. Reads are awaited, so an asynchronous implementation
 * (PostgreSQL) is held to the same suite.
 */
export interface LedgerHarness {
  /** A ledger on fresh, empty storage. */
  open(): Promise<LedgerStore | AsyncLedgerStore>;
  /** The same storage opened again (a restart). */
  reopen(): Promise<LedgerStore | AsyncLedgerStore>;
  teardown(): Promise<void>;
}

const T0 = Date.parse('2026-09-01T00:00:00Z');
let n = 0;
function rec(kind: RecordKind, o: { site?: string; device?: string; ts?: number; key?: string; body?: Record<string, unknown> } = {}): LedgerRecord {
  const id = `m${++n}`;
  const deviceId = o.device ?? 'D1';
  return { siteId: o.site ?? 'S1', deviceId, kind, msgId: id, dedupeKey: o.key ?? `${deviceId}/${id}`, ts: o.ts ?? T0 + n, receivedAt: T0 + n, body: o.body ?? { metrics: { pm10: n } } };
}
const keys = (rs: StoredRecord[]) => rs.map((r) => r.dedupeKey);

export function ledgerContract(name: string, makeHarness: () => Promise<LedgerHarness>): void {
  let h: LedgerHarness;
  let ledger: LedgerStore | AsyncLedgerStore;

  beforeEach(async () => {
    h = await makeHarness();
    ledger = await h.open();
  });
  afterEach(async () => {
    await ledger.close();
    await h.teardown();
  });

  it(`${name}: appends in order, stores a dedupe key once, and resolves only what is readable`, async () => {
    const a = rec('reading');
    const results = await ledger.appendMany([a, rec('reading'), { ...rec('reading'), dedupeKey: a.dedupeKey }]);
    expect(results.map((r) => r.seq === null)).toEqual([false, false, true]);
    const [s1, s2] = results.map((r) => r.seq!);
    expect(s2).toBeGreaterThan(s1!);
    expect(await ledger.lastSeq).toBe(s2);
    const stored = await ledger.readAfter(0, 10);
    expect(stored.map((r) => r.seq)).toEqual([s1, s2]);
    expect(stored[0]).toEqual({ ...a, seq: s1 });
    expect(await ledger.countByKind()).toEqual({ reading: 2 });
  });

  it(`${name}: listeners see every committed record once, in seq order, and no duplicate`, async () => {
    const seen: StoredRecord[] = [];
    const off = ledger.onCommitted((rs) => seen.push(...rs));
    const first = rec('checkin', { body: { workerId: 'W1' } });
    await Promise.all([ledger.append(first), ledger.appendMany(Array.from({ length: 50 }, () => rec('reading')))]);
    await ledger.append({ ...rec('checkin'), dedupeKey: first.dedupeKey });
    expect(seen).toHaveLength(51);
    expect(seen.map((r) => r.seq)).toEqual([...seen.map((r) => r.seq)].sort((x, y) => x - y));
    off();
    await ledger.append(rec('reading'));
    expect(seen).toHaveLength(51);
  });

  it(`${name}: reads after a position, by kind and with a limit; scans without loading everything`, async () => {
    await ledger.appendMany([rec('reading'), rec('checkin', { body: { workerId: 'W1' } }), rec('status', { body: { state: 'online' } }), rec('reading')]);
    const all = await ledger.readAfter(0, 100);
    expect(all.map((r) => r.kind)).toEqual(['reading', 'checkin', 'status', 'reading']);
    expect((await ledger.readAfter(all[0]!.seq, 2)).map((r) => r.kind)).toEqual(['checkin', 'status']);
    expect((await ledger.readAfter(0, 100, ['checkin', 'status'])).map((r) => r.kind)).toEqual(['checkin', 'status']);
    expect([...await ledger.scan(['reading'], all[0]!.seq)].map((r) => r.seq)).toEqual([all[3]!.seq]);
  });

  it(`${name}: a shard's read gives its sites' records only, in seq order, the shards together all of them`, async () => {
    const sites = Array.from({ length: 12 }, (_, i) => `S-${i}`);
    await ledger.appendMany(sites.flatMap((site) => [rec('reading', { site }), rec('checkin', { site, body: { workerId: 'W1' } })]));
    const all = await ledger.readAfter(0, 100);
    const of = 3;
    const read: StoredRecord[] = [];
    for (let index = 0; index < of; index++) {
      const mine = await ledger.readAfter(0, 100, undefined, { index, of });
      expect(mine.length).toBeGreaterThan(0); // 12 sites leave no shard of 3 empty (checked by hand)
      expect(mine.every((r) => shardOf(r.siteId, of) === index)).toBe(true);
      expect(mine.map((r) => r.seq)).toEqual([...mine.map((r) => r.seq)].sort((x, y) => x - y));
      const checkins = await ledger.readAfter(mine[0]!.seq, 2, ['checkin'], { index, of });
      expect(checkins).toEqual(mine.filter((r) => r.kind === 'checkin' && r.seq > mine[0]!.seq).slice(0, 2));
      read.push(...mine);
    }
    expect(read.sort((x, y) => x.seq - y.seq)).toEqual(all);
  });

  it(`${name}: answers the report reads by site and event time, worker, period and photo`, async () => {
    const day = (d: number, h = 8) => Date.parse(`2026-09-${String(d).padStart(2, '0')}T${String(h).padStart(2, '0')}:00:00+08:00`);
    await ledger.appendMany([
      rec('checkin', { ts: day(2), body: { workerId: 'W1', photoSha256: 'a'.repeat(64) } }),
      rec('checkin', { ts: day(1), body: { workerId: 'W2' } }),
      rec('checkin', { ts: day(3), site: 'S2', body: { workerId: 'W1' } }),
      rec('verdict', { ts: day(2), body: { workerId: 'W1', verdict: 'verified' } }),
      rec('wage_payment', { ts: day(10), device: 'payroll', body: { workerId: 'W1', period: '2026-08', amount: 100 } }),
      rec('wage_payment', { ts: day(11), device: 'payroll', body: { workerId: 'W1', period: '2026-09', amount: 100 } }),
    ]);
    const inS1 = await ledger.bySiteKind('S1', 'checkin');
    expect(inS1.map((r) => r.body.workerId)).toEqual(['W2', 'W1']); // by event time, not arrival
    expect((await ledger.bySiteKind('S1', 'checkin', day(2), day(3))).map((r) => r.body.workerId)).toEqual(['W1']);
    expect((await ledger.byWorker('S1', 'checkin', 'W1', day(1), day(30))).map((r) => r.ts)).toEqual([day(2)]);
    expect((await ledger.byWorker('S1', 'verdict', 'W1', day(1), day(30)))).toHaveLength(1);
    expect((await ledger.paymentsOf('S1', '2026-09')).map((r) => r.body.period)).toEqual(['2026-09']);
    expect(await ledger.hasCheckinPhoto('S1', 'a'.repeat(64))).toBe(true);
    expect(await ledger.hasCheckinPhoto('S2', 'a'.repeat(64))).toBe(false);
  });

  it(`${name}: pages a device's snapshots by arrival time and finds a snapshot by its hash within its site`, async () => {
    const snap = (device: string, ts: number, hash: string, site = 'S1') =>
      ({ ...rec('snapshot', { site, device, ts, key: `${device}/${hash}`, body: { sha256: hash, bytes: 10 } }), msgId: hash });
    const h = (c: string) => c.repeat(64);
    // CAM1: two at the same ms (told apart by seq), one earlier that arrives last; CAM2 and another site's beside it.
    await ledger.appendMany([snap('CAM1', T0 + 20, h('b')), snap('CAM1', T0 + 20, h('c')), snap('CAM2', T0 + 15, h('d')), snap('CAM1', T0 + 10, h('a')), snap('CAM9', T0 + 5, h('e'), 'S2')]);
    const page1 = await ledger.snapshots('S1', 'CAM1', { ts: 0, seq: 0 }, 2);
    expect(page1.map((r) => r.msgId)).toEqual([h('a'), h('b')]);
    const last = page1.at(-1)!;
    expect((await ledger.snapshots('S1', 'CAM1', { ts: last.ts, seq: last.seq }, 2)).map((r) => r.msgId)).toEqual([h('c')]);
    expect((await ledger.snapshots('S1', 'CAM1', { ts: T0 + 11, seq: 0 }, 10)).map((r) => r.msgId)).toEqual([h('b'), h('c')]);
    expect(await ledger.snapshots('S2', 'CAM1', { ts: 0, seq: 0 }, 10)).toEqual([]);
    expect(await ledger.hasSnapshot('S1', h('d'))).toBe(true);
    expect(await ledger.hasSnapshot('S1', h('e'))).toBe(false);
    expect(await ledger.hasSnapshot('S2', h('e'))).toBe(true);
  });

  it(`${name}: what is committed survives a reopen, and dedupe keys with it`, async () => {
    const a = rec('reading');
    const { seq } = await ledger.append(a);
    await ledger.close();
    ledger = await h.reopen();
    expect(await ledger.lastSeq).toBe(seq);
    expect((await ledger.append(a)).seq).toBeNull();
    expect((await ledger.append(rec('reading'))).seq).toBeGreaterThan(seq!);
  });

  it(`${name}: close commits what is pending, then refuses appends`, async () => {
    const pending = ledger.appendMany(Array.from({ length: 20 }, () => rec('reading')));
    await ledger.drained();
    await ledger.close();
    expect((await pending).every((r) => r.seq !== null)).toBe(true);
    await expect(ledger.append(rec('reading'))).rejects.toThrow(/closed/);
    ledger = await h.reopen();
    expect(await ledger.countByKind()).toEqual({ reading: 20 });
  });
}
