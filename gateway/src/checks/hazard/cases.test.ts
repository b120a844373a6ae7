/**
 * Runs every folder of cases/ (style.md "Cases as data"): readings.json (in arrival order),
 * optional settings.json (HazardSettings), expected.json (the alerts the readings imply).
 * Each case is checked three ways: the engine's own view, the alert store after the signals, and
 * (unless the case is about arrival itself) the same readings delivered in event-time order.
 */
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { AlertSignal } from '../types.ts';
import { HazardEngine } from './engine.ts';
import { HazardSettings } from './settings.ts';
import { ReferenceAlertStore, arrange, canonical, expandReadings, toEpoch, type CaseReadings } from './testing.ts';

const CASES = join(dirname(fileURLToPath(import.meta.url)), 'cases');

interface ExpectedAlert {
  kind: string;
  key: string;
  severity: string;
  openedAt: string;
  clearedAt: string | null;
}

interface Expected {
  alerts: ExpectedAlert[];
  /** Readings not evaluated for being more than 24 h late. */
  late?: number;
  /** The signals in order, when the case is about them (severity rising in place, no flood). */
  signals?: { type: 'raise' | 'clear'; key: string; severity?: string }[];
  /** Set when arrival order is the point of the case (lateness beyond 24 h). */
  arrivalMatters?: boolean;
}

function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

function run(spec: CaseReadings, settings: HazardSettings | undefined, arrival: CaseReadings['arrival']) {
  const engine = new HazardEngine({ timezone: spec.timezone ?? 'Asia/Shanghai', settings });
  const store = new ReferenceAlertStore();
  const signals: AlertSignal[] = [];
  for (const reading of arrange(expandReadings(spec), arrival)) {
    const out = engine.ingest(reading);
    store.apply(out);
    signals.push(...out);
  }
  return { engine, store, signals };
}

describe('hazard cases', () => {
  const names = readdirSync(CASES).filter((n) => existsSync(join(CASES, n, 'readings.json'))).sort();

  it('has cases', () => expect(names.length).toBeGreaterThan(0));

  for (const name of names) {
    it(name, () => {
      const dir = join(CASES, name);
      const spec = readJson<CaseReadings>(join(dir, 'readings.json'));
      const settingsPath = join(dir, 'settings.json');
      const settings = existsSync(settingsPath) ? HazardSettings.parse(readJson(settingsPath)) : undefined;
      const expected = readJson<Expected>(join(dir, 'expected.json'));
      const want = canonical(
        expected.alerts.map((a) => ({
          ...a,
          openedAt: toEpoch(a.openedAt),
          clearedAt: a.clearedAt === null ? null : toEpoch(a.clearedAt),
        })),
      );

      const { engine, store, signals } = run(spec, settings, spec.arrival);
      expect(canonical(engine.alerts())).toEqual(want);
      expect(store.final()).toEqual(want);
      if (expected.late !== undefined) expect(engine.stats().late).toBe(expected.late);
      if (expected.signals !== undefined) {
        expect(
          signals.map((s) => ({ type: s.type, key: s.key, ...(s.type === 'raise' ? { severity: s.severity } : {}) })),
        ).toEqual(expected.signals);
      }
      if (!expected.arrivalMatters) {
        const inOrder = run(spec, settings, 'sorted');
        expect(canonical(inOrder.engine.alerts())).toEqual(want);
        expect(inOrder.store.final()).toEqual(want);
        expect(inOrder.signals.some((s) => s.type === 'clear' && s.retracts !== undefined)).toBe(false);
      }
    });
  }
});
