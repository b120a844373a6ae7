import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { decodeMessage } from '../ingest/validate.ts';
import { isInboundChannel } from '../ingest/topics.ts';
import { evidencePath } from './evidence.ts';
import { Ledger } from './ledger.ts';
import { ledgerContract } from './ledgerContract.ts';
import type { InboundPayload, LedgerRecord, PayloadResult, StoredRecord } from './types.ts';

const dirs: string[] = [];
afterEach(() => { for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true }); });

function reading(device: string, id: string, ts: number): LedgerRecord {
  return { siteId: 'S1', deviceId: device, kind: 'reading', msgId: id, dedupeKey: `${device}/${id}`, ts, receivedAt: ts, body: { metrics: { pm10: ts % 100 } } };
}

describe('Ledger group commit under a burst', () => {
  it('splits a burst into several groups, keeps append order, dedupes, and resolves each record only once it is committed', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ledger-test-'));
    dirs.push(dir);
    const groups: number[] = [];
    const ledger = await Ledger.open(dir, { burstGroup: 200, onCommit: ({ records }) => groups.push(records) });
    const seen: StoredRecord[] = [];
    ledger.onCommitted((rs) => seen.push(...rs));

    // 3000 appends in one synchronous run (what a QoS 0 burst looks like), every 7th a replay.
    const records: LedgerRecord[] = [];
    for (let i = 0; i < 3000; i++) {
      records.push(i % 7 === 6 ? reading(`d${(i - 3) % 5}`, `m${i - 3}`, 1_000 + i - 3) : reading(`d${i % 5}`, `m${i}`, 1_000 + i));
    }
    const visibleAtResolve: boolean[] = [];
    const results = await Promise.all(records.map((r) => ledger.append(r).then((res) => {
      if (res.seq !== null) visibleAtResolve.push(ledger.readAfter(res.seq - 1, 1)[0]?.dedupeKey === r.dedupeKey);
      return res;
    })));

    expect(groups.length).toBeGreaterThan(1); // the burst did not wait for one big group
    expect(groups.reduce((a, b) => a + b, 0)).toBe(3000);
    const seqs = results.map((r) => r.seq);
    const unique = records.filter((_, i) => i % 7 !== 6);
    expect(seqs.filter((s) => s === null)).toHaveLength(records.length - unique.length);
    const stored = seqs.filter((s): s is number => s !== null);
    expect(stored).toEqual([...stored].sort((a, b) => a - b)); // seq follows append order
    expect(new Set(stored).size).toBe(unique.length);
    expect(ledger.lastSeq).toBe(Math.max(...stored));
    expect(visibleAtResolve.every(Boolean)).toBe(true); // committed (readable by another connection) before resolving
    expect(seen.map((r) => r.dedupeKey)).toEqual(unique.map((r) => r.dedupeKey)); // listeners: once each, in order
    expect(ledger.readAfter(0, 10_000).map((r) => r.dedupeKey)).toEqual(unique.map((r) => r.dedupeKey));
    await ledger.close();
  });

  it('still forms one group from records that arrive while a commit is on disk', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ledger-test-'));
    dirs.push(dir);
    const groups: number[] = [];
    const ledger = await Ledger.open(dir, { onCommit: ({ records }) => groups.push(records) });
    const first = ledger.append(reading('d1', 'a', 1));
    const rest = Array.from({ length: 50 }, (_, i) => ledger.append(reading('d1', `b${i}`, 2 + i)));
    await Promise.all([first, ...rest]);
    expect(groups.reduce((a, b) => a + b, 0)).toBe(51);
    expect(groups.length).toBeLessThanOrEqual(2); // below the burst size nothing is split
    await ledger.close();
  });

  it('fails stop when the writer thread dies: nothing in flight or after it is acknowledged, and the owner is told once', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ledger-test-'));
    dirs.push(dir);
    const fatal: string[] = [];
    const ledger = await Ledger.open(dir, { onFatal: (e) => fatal.push(e.message) });
    await ledger.append(reading('d1', 'before', 1));
    const writer = (ledger as unknown as { worker: { worker: { terminate(): Promise<number> } } }).worker.worker;
    const inFlight = Array.from({ length: 20 }, (_, i) => ledger.append(reading('d1', `w${i}`, 2 + i)));
    await writer.terminate();
    const settled = await Promise.allSettled(inFlight);
    // Those committed before the writer went are acknowledged; from the first failure on, none is.
    const firstRejected = settled.findIndex((r) => r.status === 'rejected');
    expect(firstRejected).toBeGreaterThanOrEqual(0);
    expect(settled.slice(firstRejected).every((r) => r.status === 'rejected')).toBe(true);
    await expect(ledger.append(reading('d1', 'after', 99))).rejects.toThrow(/exited|terminated/);
    expect(fatal).toHaveLength(1);
    expect(ledger.readAfter(0, 100).map((r) => r.msgId)).toEqual(['before', ...settled.slice(0, firstRejected).map((_, i) => `w${i}`)]);
    await ledger.close();
  });
});

/** `submitPayload` as a promise, for the tests' awaits. */
const appendPayload = (ledger: Ledger, p: InboundPayload) =>
  new Promise<PayloadResult>((resolve, reject) => ledger.submitPayload(p, (err, r) => (err ? reject(err) : resolve(r!))));

describe('device payloads decoded on the writer thread (submitPayload)', () => {
  const CASES = path.join(path.dirname(fileURLToPath(import.meta.url)), '../ingest/cases');
  const NOW = Date.parse('2026-11-23T00:00:00Z');

  it('become what decodeMessage makes of them, stored in call order between appended records, listeners included', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ledger-test-'));
    dirs.push(dir);
    const ledger = await Ledger.open(dir);
    const seen: StoredRecord[] = [];
    ledger.onCommitted((rs) => seen.push(...rs));
    // Every decoder case (ingest/cases), from its own device, with an appended record before each: one group.
    const cases = fs.readdirSync(CASES).sort().map((name, i) => {
      const channel = fs.readFileSync(path.join(CASES, name, 'topic'), 'utf8').trim();
      if (!isInboundChannel(channel)) throw new Error(`bad channel ${channel}`);
      const file = fs.existsSync(path.join(CASES, name, 'payload.json')) ? 'payload.json' : 'payload.txt';
      const deviceId = `D${i}`;
      const topic = `sites/S1/devices/${deviceId}/${channel}`;
      const payload = fs.readFileSync(path.join(CASES, name, file));
      return { name, topic, deviceId, payload, expected: decodeMessage(channel, payload, { siteId: 'S1', deviceId, receivedAt: NOW, now: NOW }, topic) };
    });
    const calls = cases.map((c, i) => ({
      before: ledger.append(reading('other', `o${i}`, NOW)),
      result: appendPayload(ledger, { topic: c.topic, siteId: 'S1', deviceId: c.deviceId, payload: c.payload, receivedAt: NOW }),
    }));
    const order: string[] = [];
    for (const [i, c] of cases.entries()) {
      const before = await calls[i]!.before;
      const r = await calls[i]!.result;
      expect(r.committed.map(({ seq: _, ...rec }) => rec), c.name).toEqual(c.expected.records);
      expect(r.rejected, c.name).toEqual(c.expected.rejected);
      expect(r.duplicates, c.name).toEqual([]);
      for (const rec of r.committed) expect(rec.seq).toBeGreaterThan(before.seq!);
      order.push(`other/o${i}`, ...c.expected.records.map((x) => x.dedupeKey));
      for (const f of c.expected.files) expect(fs.existsSync(evidencePath(ledger.evidenceDir, f.sha256))).toBe(true);
    }
    expect(ledger.readAfter(0, 10_000).map((r) => r.dedupeKey)).toEqual(order);
    expect(seen.map((r) => r.dedupeKey)).toEqual(order);

    // The same payload again: every record a duplicate, nothing stored, nothing heard.
    const again = cases.find((c) => c.expected.records.length > 1)!;
    const dup = await appendPayload(ledger, { topic: again.topic, siteId: 'S1', deviceId: again.deviceId, payload: again.payload, receivedAt: NOW });
    expect(dup.committed).toEqual([]);
    expect(dup.duplicates.map((d) => d.ref)).toEqual(again.expected.records.map((x) => x.msgId));
    expect(seen).toHaveLength(order.length);
    await ledger.close();
  });

  it('rejects a payload it cannot attribute as internal, with the error to log, and stores the rest of the group', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ledger-test-'));
    dirs.push(dir);
    const ledger = await Ledger.open(dir);
    const bad = appendPayload(ledger, { topic: 'not/a/device/topic', siteId: 'S1', deviceId: 'D1', payload: Buffer.from('{}'), receivedAt: NOW });
    const good = appendPayload(ledger, { topic: 'sites/S1/devices/D1/telemetry', siteId: 'S1', deviceId: 'D1', payload: Buffer.from(JSON.stringify({ id: 'r1', ts: NOW, metrics: { pm10: 3 } })), receivedAt: NOW });
    const b = await bad;
    expect(b.rejected).toMatchObject([{ ref: 'not/a/device/topic', reason: 'internal' }]);
    expect(b.rejected[0]!.error).toMatch(/not an inbound device topic/);
    expect((await good).committed.map((r) => r.msgId)).toEqual(['r1']);
    await ledger.close();
  });
});

describe('SQLite ledger (the contract every ledger passes)', () => {
  ledgerContract('sqlite', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ledger-contract-'));
    return {
      open: () => Ledger.open(dir),
      reopen: () => Ledger.open(dir),
      teardown: async () => fs.rmSync(dir, { recursive: true, force: true }),
    };
  });
});
