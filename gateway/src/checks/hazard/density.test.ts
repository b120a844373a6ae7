/**
 * Issue 15: a fast device (readings 1 ms apart in event time) costs the engine what a device at
 * one reading a second costs. Running exact sums give the from-scratch aggregates, buckets (one
 * entry per second) keep memory bounded, and the alerts of a 1 ms device are those of the same
 * levels sent once a second, whatever the arrival order.
 */
import { describe, expect, it } from 'vitest';
import { ExactSum } from './exactSum.ts';
import { SlidingWindow, leq, maximum, mean, type WindowAggregate } from './aggregates.ts';
import { HazardEngine, type HazardReading } from './engine.ts';
import { RESOLUTION_MS, Series } from './series.ts';
import { ReferenceAlertStore, canonical, mulberry32, shuffle } from './testing.ts';

const MIN = 60_000;
const NIGHT = Date.parse('2026-09-01T22:00:00+08:00');

describe('ExactSum', () => {
  it('adding and removing in any order gives the correctly rounded sum of what is held', () => {
    const random = mulberry32(15);
    const values = Array.from({ length: 2000 }, () => (random() - 0.5) * 10 ** Math.floor(random() * 12));
    const a = new ExactSum();
    for (const v of values) a.add(v);
    for (const v of values.slice(0, 1000)) a.remove(v);
    const b = new ExactSum();
    for (const v of shuffle(values.slice(1000), mulberry32(16))) b.add(v);
    expect(a.value()).toBe(b.value());
    const naive = values.slice(1000).reduce((s, v) => s + v, 0);
    expect(a.value()).toBeCloseTo(naive, 0);
    // 0.1 × 10 is not 1 in naive doubles; the exact sum is correctly rounded.
    const tenth = new ExactSum();
    for (let i = 0; i < 10; i++) tenth.add(0.1);
    expect(tenth.value()).toBe(1);
    expect(tenth.value(0.5)).toBe(1.5);
  });
});

describe('SlidingWindow', () => {
  for (const aggregate of ['mean', 'leq', 'max'] as WindowAggregate[]) {
    it(`${aggregate}: running values equal the from-scratch aggregate, buckets and late entries included`, () => {
      const random = mulberry32(aggregate.length);
      const s = new Series();
      const window = new SlidingWindow(aggregate);
      const scratch = { mean, leq, max: maximum }[aggregate];
      let checked = 0;
      for (let i = 0; i < 3000; i++) {
        // Mostly in order, some 250 ms apart (buckets), some late.
        const late = random() < 0.05;
        const t = late ? (i - Math.floor(random() * 50)) * 700 : i * 700 + Math.floor(random() * 3) * 250;
        s.insert(t, 40 + random() * 50);
        const j = s.end - 1;
        const lo = s.lowerBound(s.ts[j] - 60_000 + 1);
        const got = window.at(s, lo, j, s.version);
        expect(got.value).toBe(scratch(s, lo, j));
        checked++;
      }
      expect(checked).toBe(3000);
      expect(s.n).not.toBeNull();
    });
  }
});

function noise(ts: number, level: number): HazardReading {
  return { siteId: 'S1', deviceId: 'FAST', ts, metrics: { noise_dba: level } };
}

/** Night noise at `level(t)` for `minutes`, one reading every `stepMs`. */
function night(stepMs: number, minutes: number, level: (t: number) => number): HazardReading[] {
  const out: HazardReading[] = [];
  for (let t = NIGHT; t < NIGHT + minutes * MIN; t += stepMs) out.push(noise(t, level(t)));
  return out;
}

function run(readings: readonly HazardReading[], intervalS?: number) {
  const engine = new HazardEngine({ timezone: 'Asia/Shanghai' });
  const store = new ReferenceAlertStore();
  for (const r of readings) store.apply(engine.ingest(r, intervalS !== undefined ? { intervalS } : {}));
  return { engine, store: store.final(), alerts: canonical(engine.alerts()) };
}

describe('a device 1 ms apart', () => {
  // Quiet, then 3 minutes loud enough for the night Leq's critical limit, then quiet until it clears.
  const level = (t: number) => (t >= NIGHT + 11 * MIN && t < NIGHT + 14 * MIN ? 62 : 40);
  const fast = night(1, 36, level);
  const inOrder = run(fast);

  it('gives the alerts of the same levels sent once a second, and holds one entry a second', () => {
    const slow = run(night(1000, 36, level));
    expect(slow.alerts.map((a) => [a.key, a.clearedAt !== null])).toEqual([['hazard.threshold:FAST:noise_dba:noise-night-leq', true]]);
    expect(inOrder.alerts).toEqual(slow.alerts);
    expect(inOrder.store).toEqual(slow.store);
    const entries = inOrder.engine.snapshot().devices[0]!.series[0]!.ts.length;
    expect(entries).toBeLessThanOrEqual((36 * MIN) / RESOLUTION_MS + 32);
    expect(inOrder.engine.stats().readings).toBe(36 * MIN);
  });

  it('arrival order does not change its alerts (2 s of readings shuffled and late)', () => {
    const from = 11 * MIN;
    const slice = fast.slice(from, from + 2000);
    const delayed = [...fast.slice(0, from), ...fast.slice(from + 2000, 12 * MIN), ...shuffle([...slice], mulberry32(151)), ...fast.slice(12 * MIN)];
    const late = run(delayed);
    expect(late.engine.stats().outOfOrder).toBe(2000);
    expect(late.engine.stats().retracted).toBeGreaterThan(0);
    expect(late.alerts).toEqual(inOrder.alerts);
    expect(late.store).toEqual(inOrder.store);
  });

  it('snapshot and restore keep the buckets: the rest gives the uninterrupted signals', () => {
    const readings = fast.slice(0, 16 * MIN);
    const cut = 11 * MIN + 500;
    const whole = new HazardEngine({ timezone: 'Asia/Shanghai' });
    const wholeSignals = readings.flatMap((r) => whole.ingest(r));
    const first = new HazardEngine({ timezone: 'Asia/Shanghai' });
    const before = readings.slice(0, cut).flatMap((r) => first.ingest(r));
    const restored = HazardEngine.restore(JSON.parse(JSON.stringify(first.snapshot())));
    const after = readings.slice(cut).flatMap((r) => restored.ingest(r));
    expect(wholeSignals.length).toBeGreaterThan(0);
    expect([...before, ...after]).toEqual(wholeSignals);
  });
});
