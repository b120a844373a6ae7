/**
 * Test support for the hazard engine: case-folder readings, a seeded PRNG, and a reference model of
 * the alert store that applies signals the way contract §5 describes (one alert per key while not
 * cleared, severity rises in place, `retracts` withdraws the alert of that key opened then).
 */
import type { AlertSignal } from '../types.ts';
import type { HazardAlert, HazardReading } from './engine.ts';
import { mulberry32 } from '../../../../schemas/src/random.ts';

/** One reading, or a run of evenly spaced readings (`metrics` arrays, or constants × `count`). */
export type CaseEntry =
  | { deviceId: string; ts: string | number; metrics: Record<string, number> }
  | { deviceId: string; from: string | number; everyS: number; count?: number; metrics: Record<string, number | number[]> };

export interface CaseReadings {
  siteId?: string;
  timezone?: string;
  /** Arrival order: as listed (default), sorted by event time, reversed, or a seeded shuffle. */
  arrival?: 'as-listed' | 'sorted' | 'reverse' | { shuffleSeed: number };
  readings: CaseEntry[];
}

export function toEpoch(ts: string | number): number {
  if (typeof ts === 'number') return ts;
  if (!/(Z|[+-]\d\d:\d\d)$/.test(ts)) throw new Error(`timestamp without offset: ${ts}`);
  const ms = Date.parse(ts);
  if (Number.isNaN(ms)) throw new Error(`bad timestamp: ${ts}`);
  return ms;
}

export function expandReadings(spec: CaseReadings): HazardReading[] {
  const siteId = spec.siteId ?? 'S1';
  const out: HazardReading[] = [];
  for (const entry of spec.readings) {
    if ('ts' in entry) {
      out.push({ siteId, deviceId: entry.deviceId, ts: toEpoch(entry.ts), metrics: { ...entry.metrics } });
      continue;
    }
    const lengths = Object.values(entry.metrics).map((m) => (Array.isArray(m) ? m.length : (entry.count ?? 1)));
    const n = Math.max(...lengths);
    if (lengths.some((l) => l !== n)) throw new Error(`run of ${entry.deviceId}: metric arrays differ in length`);
    const from = toEpoch(entry.from);
    for (let i = 0; i < n; i++) {
      const metrics: Record<string, number> = {};
      for (const [name, m] of Object.entries(entry.metrics)) metrics[name] = Array.isArray(m) ? m[i] : m;
      out.push({ siteId, deviceId: entry.deviceId, ts: from + i * entry.everyS * 1000, metrics });
    }
  }
  return out;
}

export function arrange<T extends { ts: number }>(readings: readonly T[], arrival: CaseReadings['arrival']): T[] {
  const list = [...readings];
  if (arrival === undefined || arrival === 'as-listed') return list;
  if (arrival === 'sorted') return list.sort((a, b) => a.ts - b.ts);
  if (arrival === 'reverse') return list.sort((a, b) => b.ts - a.ts);
  return shuffle(list, mulberry32(arrival.shuffleSeed));
}

export { mulberry32 };

/** Fisher–Yates with the given PRNG. */
export function shuffle<T>(list: T[], random: () => number): T[] {
  for (let i = list.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [list[i], list[j]] = [list[j], list[i]];
  }
  return list;
}

export interface StoredAlert {
  kind: string;
  key: string;
  severity: 'info' | 'warning' | 'critical';
  openedAt: number;
  clearedAt: number | null;
  retracted: boolean;
}

const RANK = { info: 0, warning: 1, critical: 2 } as const;

/**
 * The alert store as contract §5 describes it, strict: a signal the store could not apply
 * sensibly (a clear with nothing open, a raise that disagrees with the open alert's openedAt,
 * a retraction of nothing) throws, because it is a bug in the engine.
 */
export class ReferenceAlertStore {
  readonly all: StoredAlert[] = [];

  apply(signals: readonly AlertSignal[]): void {
    for (const s of signals) {
      const open = this.all.find((a) => a.key === s.key && !a.retracted && a.clearedAt === null);
      if (s.type === 'raise') {
        if (open === undefined) {
          this.all.push({ kind: s.kind, key: s.key, severity: s.severity, openedAt: s.openedAt, clearedAt: null, retracted: false });
        } else {
          if (open.openedAt !== s.openedAt) throw new Error(`raise for ${s.key} at ${s.openedAt} while open since ${open.openedAt}`);
          if (RANK[s.severity] > RANK[open.severity]) open.severity = s.severity;
        }
      } else if (s.retracts !== undefined) {
        const target = this.all.find((a) => a.key === s.key && !a.retracted && a.openedAt === s.retracts);
        if (target === undefined) throw new Error(`retraction of ${s.key}@${s.retracts}: no such alert`);
        target.retracted = true;
      } else {
        if (open === undefined) throw new Error(`clear of ${s.key} at ${s.at}: nothing open`);
        open.clearedAt = s.at;
      }
    }
  }

  /** Alerts not withdrawn, in a canonical order. */
  final(): AlertSummary[] {
    return canonical(this.all.filter((a) => !a.retracted));
  }
}

export type AlertSummary = { kind: string; key: string; severity: string; openedAt: number; clearedAt: number | null };

export function canonical(alerts: readonly (AlertSummary | HazardAlert | StoredAlert)[]): AlertSummary[] {
  return alerts
    .map((a) => ({ kind: a.kind, key: a.key, severity: a.severity, openedAt: a.openedAt, clearedAt: a.clearedAt }))
    .sort((a, b) => a.openedAt - b.openedAt || a.key.localeCompare(b.key));
}

const MIN = 60_000;
const HOUR = 60 * MIN;
/** 2026-09-09 00:00 +08:00 */
export const DAY0 = Date.parse('2026-09-09T00:00:00+08:00');

/**
 * Two days of one site from a seed: two environment stations (noise, dust, wind every 5 min, with
 * random bursts), a tower crane (every minute, 07:00–18:00, with spikes) and a pit monitor (hourly,
 * with spurts). Split into the first day (`history`) and the second (`day`).
 */
export function syntheticDays(seed: number): { history: HazardReading[]; day: HazardReading[] } {
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

