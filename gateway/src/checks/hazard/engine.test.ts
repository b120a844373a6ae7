/** Engine behaviour that is clearer as code than as case folders: restart, replay, intervals. */
import { describe, expect, it } from 'vitest';
import type { AlertSignal } from '../types.ts';
import { HazardEngine, type HazardReading } from './engine.ts';
import { ReferenceAlertStore, canonical, syntheticDays } from './testing.ts';

const MIN = 60_000;
const T0 = Date.parse('2026-09-10T08:00:00+08:00');

function feed(engine: HazardEngine, readings: readonly HazardReading[]): AlertSignal[] {
  return readings.flatMap((r) => engine.ingest(r));
}

describe('restart', () => {
  const { history, day } = syntheticDays(4242);
  const all = [...history, ...day];
  const cut = Math.floor(all.length * 0.6);

  it('snapshot → JSON → restore continues with exactly the signals of an uninterrupted run', () => {
    const whole = new HazardEngine({ timezone: 'Asia/Shanghai' });
    feed(whole, all.slice(0, cut));
    const expectedAfter = feed(whole, all.slice(cut));

    const first = new HazardEngine({ timezone: 'Asia/Shanghai' });
    const before = feed(first, all.slice(0, cut));
    const json = JSON.parse(JSON.stringify(first.snapshot()));
    const second = HazardEngine.restore(json);
    expect(second.snapshot()).toEqual(first.snapshot());
    const after = feed(second, all.slice(cut));
    expect(after).toEqual(expectedAfter);
    expect(canonical(second.alerts())).toEqual(canonical(whole.alerts()));

    const store = new ReferenceAlertStore();
    store.apply(before);
    store.apply(after);
    const reference = new ReferenceAlertStore();
    reference.apply(feed(new HazardEngine({ timezone: 'Asia/Shanghai' }), all));
    expect(store.final()).toEqual(reference.final());
  });

  it('replaying readings already held (a ledger replay from before the snapshot) emits nothing', () => {
    const engine = new HazardEngine({ timezone: 'Asia/Shanghai' });
    feed(engine, all.slice(0, cut));
    const restored = HazardEngine.restore(JSON.parse(JSON.stringify(engine.snapshot())));
    const replay = all.slice(cut - 500, cut);
    expect(feed(restored, replay)).toEqual([]);
    expect(restored.stats().unchanged).toBe(replay.reduce((n, r) => n + Object.keys(r.metrics).length, 0));
  });

  it('rejects a snapshot that is not one', () => {
    expect(() => HazardEngine.restore({ version: 2 })).toThrow();
  });
});

describe('readings', () => {
  it('a second value for the same timestamp replaces the first (a correction) and is re-judged', () => {
    const engine = new HazardEngine({ timezone: 'Asia/Shanghai' });
    const r = (ts: number, v: number): HazardReading => ({ siteId: 'S1', deviceId: 'W', ts, metrics: { wind_speed_ms: v } });
    expect(engine.ingest(r(T0, 20))).toMatchObject([{ type: 'raise', severity: 'critical', openedAt: T0 }]);
    expect(engine.ingest(r(T0, 20))).toEqual([]);
    expect(engine.ingest(r(T0, 5))).toMatchObject([{ type: 'clear', retracts: T0 }]);
    expect(engine.alerts()).toEqual([]);
  });

  it('ignores metrics without a rule and values that are not finite numbers', () => {
    const engine = new HazardEngine({ timezone: 'Asia/Shanghai' });
    const out = engine.ingest({ siteId: 'S1', deviceId: 'X', ts: T0, metrics: { temperature_c: 80, gas_lel_pct: NaN } });
    expect(out).toEqual([]);
    expect(engine.stats()).toMatchObject({ readings: 1, samples: 0 });
  });

  it('counts a reading more than 24 h older than its device latest as late, and evaluates nothing', () => {
    const engine = new HazardEngine({ timezone: 'Asia/Shanghai' });
    engine.ingest({ siteId: 'S1', deviceId: 'G', ts: T0, metrics: { gas_lel_pct: 1 } });
    expect(engine.ingest({ siteId: 'S1', deviceId: 'G', ts: T0 - 24 * 60 * MIN - 1, metrics: { gas_lel_pct: 90 } })).toEqual([]);
    expect(engine.ingest({ siteId: 'S1', deviceId: 'OTHER', ts: T0 - 48 * 60 * MIN, metrics: { gas_lel_pct: 90 } })).toHaveLength(1);
    expect(engine.stats().late).toBe(1);
  });
});

describe('interval', () => {
  const dust = (deviceId: string, count: number, everyMin: number): HazardReading[] =>
    Array.from({ length: count }, (_, i) => ({ siteId: 'S1', deviceId, ts: T0 + i * everyMin * MIN, metrics: { pm10: 300 } }));

  it('is learnt from the spacing: 6 samples of a 5-min device fill half an hour', () => {
    const engine = new HazardEngine({ timezone: 'Asia/Shanghai' });
    const out = feed(engine, dust('D', 6, 5));
    expect(out).toMatchObject([{ type: 'raise', severity: 'critical', openedAt: T0 + 25 * MIN }]);
  });

  it('a registered interval wins over the spacing (a 1-min device sending every 5 min is half-empty)', () => {
    const engine = new HazardEngine({ timezone: 'Asia/Shanghai' });
    const readings = dust('D', 12, 5);
    expect(readings.flatMap((r) => engine.ingest(r, { intervalS: 60 }))).toEqual([]);
    const viaResolver = new HazardEngine({ timezone: 'Asia/Shanghai', intervalOf: () => 60 });
    expect(feed(viaResolver, readings)).toEqual([]);
    const viaSettings = new HazardEngine({ timezone: 'Asia/Shanghai', settings: { devices: { D: { intervalS: 60 } } } });
    expect(feed(viaSettings, readings)).toEqual([]);
  });
});

describe('construction', () => {
  it('fails loudly on an unknown time zone or invalid settings', () => {
    expect(() => new HazardEngine({ timezone: 'Mars/Olympus' })).toThrow(RangeError);
    expect(() => new HazardEngine({ timezone: 'Asia/Shanghai', settings: { thresholds: { nosie: { warning: 1 } } } })).toThrow(/nosie/);
  });

  it('setSettings applies new limits from the next sample on', () => {
    const engine = new HazardEngine({ timezone: 'Asia/Shanghai' });
    const g = (ts: number, v: number): HazardReading => ({ siteId: 'S1', deviceId: 'G', ts, metrics: { gas_lel_pct: v } });
    expect(engine.ingest(g(T0, 20))).toEqual([]);
    engine.setSettings({ thresholds: { gas_lel_pct: { critical: 15 } } });
    expect(engine.ingest(g(T0 + MIN, 20))).toMatchObject([{ severity: 'critical', openedAt: T0 + MIN }]);
  });
});
