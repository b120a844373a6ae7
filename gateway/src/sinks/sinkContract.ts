import { afterEach, beforeEach, expect, it } from 'vitest';
import type { StoredRecord } from '../ledger/types.ts';
import { SinkError, type Sink } from './sink.ts';

/**
 * The contract every sink passes (style.md §2; the idea of aedes-persistence's abstract suite).
 * The SinkRunner relies on exactly these promises: `write` resolves only when the records are
 * stored; a rewrite of the same records is the same points (so a batch resent after a crash or a
 * retry duplicates nothing); a refusal of the points themselves is `bad_data` (the runner splits
 * the batch to find them), anything the database or network may get over is `retryable`; and
 * `ping` tells the two states apart for /readyz.
 */

/** A stored point as the harness reads it back: `time` in epoch ms, tags and fields as columns. */
export type StoredPoint = { time: number } & Record<string, unknown>;

export interface SinkHarness {
  /** A sink writing into a fresh, empty store (each test gets its own). */
  sink: Sink;
  /** Every point of `measurement` in that store, oldest first. */
  query(measurement: string): Promise<StoredPoint[]>;
  /** The same kind of sink pointed at a loopback port nobody listens on. */
  unreachable(): Sink;
  teardown(): Promise<void>;
}

/** Registers the contract tests for one sink implementation in the calling test file. */
let seq = 0;
/** A committed ledger record as the runner hands it to a sink. */
export function record(kind: StoredRecord['kind'], ts: number, body: Record<string, unknown>, o: { site?: string; device?: string; msgId?: string } = {}): StoredRecord {
  const n = ++seq;
  const deviceId = o.device ?? 'D1';
  return { seq: n, siteId: o.site ?? 'S1', deviceId, kind, msgId: o.msgId ?? `m-${n}`, dedupeKey: `${deviceId}/m-${n}`, ts, receivedAt: ts, body };
}
const reading = (ts: number, metrics: Record<string, unknown>, device = 'D1') => record('reading', ts, { metrics }, { device });

export function sinkContract(name: string, makeSink: () => Promise<SinkHarness>): void {
  let h: SinkHarness;
  // Event times: fixed whole milliseconds in the past (no test reads today's date), one week shard for all of them.
  const t0 = Date.parse('2026-11-02T08:00:00Z');

  beforeEach(async () => {
    h = await makeSink();
  });
  afterEach(async () => {
    await h?.teardown();
  });

  it(`${name}: writes points and reads them back (tags, float/string/boolean fields, ms time)`, async () => {
    await h.sink.write([
      reading(t0, { pm10: 132.5, noise_dba: 72 }),
      reading(t0 + 1, { pm10: 140.25, noise_dba: 71.5 }),
      record('checkin', t0 + 2, { workerId: 'W1', direction: 'in', method: 'face', verdict: 'verified', similarity: 0.87 }, { device: 'T1', msgId: 'T1-"quoted" id' }),
      record('status', t0 + 3, { state: 'online', batteryPct: 87 }),
      record('snapshot', t0 + 4, { sha256: 'ab' }), // nothing to store: skipped
    ]);
    const readings = await h.query('reading');
    expect(readings).toEqual([
      expect.objectContaining({ time: t0, site: 'S1', device: 'D1', pm10: 132.5, noise_dba: 72 }),
      expect.objectContaining({ time: t0 + 1, site: 'S1', device: 'D1', pm10: 140.25, noise_dba: 71.5 }),
    ]);
    expect(await h.query('checkin')).toEqual([expect.objectContaining({
      time: t0 + 2, site: 'S1', device: 'T1', worker: 'W1', direction: 'in', method: 'face', verdict: 'verified', similarity: 0.87, id: 'T1-"quoted" id',
    })]);
    expect(await h.query('device_status')).toEqual([expect.objectContaining({ time: t0 + 3, kind: 'sensor', online: true, battery_pct: 87 })]);
    expect(h.sink.render(record('reading', t0, { metrics: { pm10: 1 } }))).toContain('pm10');
  });

  it(`${name}: an empty write is a no-op`, async () => {
    await h.sink.write([]);
    expect(await h.query('reading')).toEqual([]);
  });

  it(`${name}: rewriting the same points is idempotent (count and values unchanged)`, async () => {
    const lines = Array.from({ length: 200 }, (_, i) => reading(t0 + i, { pm10: i + 0.5 }, `D${i % 4}`));
    await h.sink.write(lines);
    const first = await h.query('reading');
    expect(first).toHaveLength(200);
    await h.sink.write(lines);
    await h.sink.write(lines.slice(50, 120)); // a retried middle part, as after an interrupted split
    const again = await h.query('reading');
    expect(again).toHaveLength(200);
    expect(again).toEqual(first);
  });

  it(`${name}: one large batch (5000 points, well past any gzip threshold) is stored whole`, async () => {
    const lines = Array.from({ length: 5000 }, (_, i) => reading(t0 + i, { pm10: Number((i * 0.37).toFixed(2)), pm2_5: i }, `D${i % 10}`));
    await h.sink.write(lines);
    const points = await h.query('reading');
    expect(points).toHaveLength(5000);
    expect(points[4999]).toEqual(expect.objectContaining({ time: t0 + 4999, device: 'D9', pm2_5: 4999 }));
  });

  it(`${name}: a batch with one record of a conflicting field type is refused as bad_data, and the sink keeps working`, async () => {
    await h.sink.write([reading(t0, { pm10: 1.5 })]);
    const batch = [reading(t0 + 1, { pm10: 2.5 }), reading(t0 + 2, { pm10: 'x' }), reading(t0 + 3, { pm10: 3.5 })];
    const err = await h.sink.write(batch).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(SinkError);
    expect((err as SinkError).kind).toBe('bad_data');
    // What the runner does next: the good points alone go through, the bad one alone is refused again.
    await h.sink.write([batch[0]!, batch[2]!]);
    await expect(h.sink.write([batch[1]!])).rejects.toMatchObject({ kind: 'bad_data' });
    const points = await h.query('reading');
    expect(points.map((p) => [p.time, p.pm10])).toEqual([[t0, 1.5], [t0 + 1, 2.5], [t0 + 3, 3.5]]);
  });

  it(`${name}: a record the database cannot store (an empty field name) is refused as bad_data`, async () => {
    await expect(h.sink.write([reading(t0, { '': 1.5 })])).rejects.toMatchObject({ kind: 'bad_data' });
  });

  it(`${name}: a network failure (nothing listening) is retryable`, async () => {
    const down = h.unreachable();
    try {
      const err = await down.write([reading(t0, { pm10: 1.5 })]).then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(SinkError);
      expect((err as SinkError).kind).toBe('retryable');
    } finally {
      await down.close();
    }
  });

  it(`${name}: ping() is true when the database answers and false when nothing listens`, async () => {
    expect(await h.sink.ping()).toBe(true);
    const down = h.unreachable();
    try {
      expect(await down.ping()).toBe(false);
    } finally {
      await down.close();
    }
  });
}
