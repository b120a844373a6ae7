/**
 * Property: within the lateness horizon, arrival order does not change the alerts. A seeded PRNG
 * makes a site's day (a day before it arrives in order, to give rates their 24 h of history); the
 * day is then delivered shuffled, or each reading delayed at random, and the final alerts (kind,
 * key, severity, openedAt, clearedAt) must equal those of delivery in event-time order, both in
 * the engine's view and in the alert store after all signals.
 */
import { describe, expect, it } from 'vitest';
import { HazardEngine, type HazardReading } from './engine.ts';
import { ReferenceAlertStore, canonical, mulberry32, syntheticDays, shuffle } from './testing.ts';

const HOUR = 3_600_000;

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
      const { history, day } = syntheticDays(seed);
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
