/**
 * Property: within the lateness horizon, arrival order does not change the alerts. A seeded PRNG
 * makes a site's day (a day before it arrives in order, to give rates their 24 h of history); the
 * day is then delivered shuffled, or each reading delayed at random, and the final alerts (kind,
 * key, severity, openedAt, clearedAt) must equal those of delivery in event-time order, both in
 * the engine's view and in the alert store after all signals.
 */
import { describe, expect, it } from 'vitest';
import { HazardEngine, type HazardReading } from './engine.ts';
import { ReferenceAlertStore, canonical, mulberry32, shuffle } from './testing.ts';

const MIN = 60_000;
const HOUR = 60 * MIN;
/** 2026-09-09 00:00 +08:00 */
const DAY0 = Date.parse('2026-09-09T00:00:00+08:00');

function makeDays(seed: number): { history: HazardReading[]; day: HazardReading[] } {
  const random = mulberry32(seed);
  const between = (lo: number, hi: number) => lo + (hi - lo) * random();
  const readings: HazardReading[] = [];
  const env = (deviceId: string) => {
    let dust = 40;
    let burst = 0;
    for (let t = DAY0; t < DAY0 + 48 * HOUR; t += 5 * MIN) {
      const hour = new Date(t + 8 * HOUR).getUTCHours();
      const night = hour >= 22 || hour < 6;
      if (burst === 0 && random() < 0.03) burst = 1 + Math.floor(random() * 8);
      const loud = burst > 0;
      if (burst > 0) burst--;
      dust = Math.max(5, dust + between(-15, 15) + (random() < 0.02 ? 200 : 0) - (dust > 150 ? 20 : 0));
      readings.push({
        siteId: 'S1',
        deviceId,
        ts: t,
        metrics: {
          noise_dba: Math.round((night ? between(40, 52) : between(50, 66)) + (loud ? between(5, 25) : 0)),
          pm10: Math.round(dust * 10) / 10,
          pm2_5: Math.round(dust * 5) / 10,
          wind_speed_ms: Math.round(between(7, 12) * 10) / 10 + (random() < 0.01 ? 5 : 0),
        },
      });
    }
  };
  env('ENV-1');
  env('ENV-2');
  for (let t = DAY0; t < DAY0 + 48 * HOUR; t += MIN) {
    const hour = new Date(t + 8 * HOUR).getUTCHours();
    if (hour < 7 || hour >= 18) continue;
    const spike = random() < 0.02;
    readings.push({
      siteId: 'S1',
      deviceId: 'TC-1',
      ts: t,
      metrics: { crane_moment_pct: Math.round(spike ? between(88, 106) : between(60, 92)), crane_load_pct: Math.round(between(40, 95)) },
    });
  }
  let pit = 10;
  for (let t = DAY0; t < DAY0 + 48 * HOUR; t += HOUR) {
    pit += random() < 0.3 ? between(0, 1.5) : between(0, 0.1);
    readings.push({ siteId: 'S1', deviceId: 'PIT-1', ts: t, metrics: { pit_displacement_mm: Math.round(pit * 100) / 100 } });
  }
  readings.sort((a, b) => a.ts - b.ts);
  const split = DAY0 + 24 * HOUR;
  return { history: readings.filter((r) => r.ts < split), day: readings.filter((r) => r.ts >= split) };
}

function deliver(history: readonly HazardReading[], day: readonly HazardReading[]) {
  const engine = new HazardEngine({ timezone: 'Asia/Shanghai' });
  const store = new ReferenceAlertStore();
  for (const r of [...history, ...day]) store.apply(engine.ingest(r));
  return { engine: canonical(engine.alerts()), store: store.final(), stats: engine.stats() };
}

describe('arrival order within the lateness horizon', () => {
  const seeds = Array.from({ length: 12 }, (_, i) => 1000 + i * 7919);
  let alertsSeen = 0;
  let retractions = 0;

  for (const seed of seeds) {
    it(`seed ${seed}: shuffled day and randomly delayed day give the in-order alerts`, () => {
      const { history, day } = makeDays(seed);
      const inOrder = deliver(history, day);
      alertsSeen += inOrder.engine.length;

      const shuffled = deliver(history, shuffle([...day], mulberry32(seed + 1)));
      expect(shuffled.stats.late).toBe(0);
      expect(shuffled.engine).toEqual(inOrder.engine);
      expect(shuffled.store).toEqual(inOrder.store);
      retractions += shuffled.stats.retracted;

      const random = mulberry32(seed + 2);
      const delayed = day
        .map((r) => ({ r, arrives: r.ts + random() * 2 * HOUR }))
        .sort((a, b) => a.arrives - b.arrives)
        .map((x) => x.r);
      const late = deliver(history, delayed);
      expect(late.engine).toEqual(inOrder.engine);
      expect(late.store).toEqual(inOrder.store);
    });
  }

  it('was not vacuous: the days raised alerts and shuffling forced retractions', () => {
    expect(alertsSeen).toBeGreaterThan(seeds.length * 3);
    expect(retractions).toBeGreaterThan(0);
  });
});
