/**
 * The public month (test/fixtures/scenarios/public-2026-09, a copy of shared/scenarios): stream
 * its telemetry, in file order, through one engine per site and check the `hazard.*` findings of
 * expected.json: every expected alert is raised (kind, site, subject, local day of openedAt,
 * severity where given) and no `noAlerts` entry is.
 */
import { createReadStream, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createGunzip } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import type { RaiseSignal } from '../types.ts';
import { SiteCalendar } from '../../calendar/siteCalendar.ts';
import { HazardEngine } from './engine.ts';
import { HazardSettings } from './settings.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../../..');
const SCENARIO = join(ROOT, 'test/fixtures/scenarios/public-2026-09');

interface Finding {
  kind: string;
  siteId: string;
  subject: { deviceId?: string; metric?: string };
  day?: string;
  severity?: string;
}

interface Registry {
  sites: { siteId: string; timezone?: string; settings?: Record<string, unknown> }[];
  devices: { siteId: string; deviceId: string; intervalS?: number }[];
}

function epoch(ts: unknown): number {
  if (typeof ts === 'number') return ts;
  if (typeof ts === 'string' && /(Z|[+-]\d\d:\d\d)$/.test(ts)) return Date.parse(ts);
  return NaN;
}

async function replay(): Promise<{ raised: (RaiseSignal & { day: string })[]; readings: number; late: number }> {
  const registry = JSON.parse(readFileSync(join(SCENARIO, 'registry.json'), 'utf8')) as Registry;
  const engines = new Map<string, { engine: HazardEngine; calendar: SiteCalendar }>();
  for (const site of registry.sites) {
    const timezone = site.timezone ?? 'Asia/Shanghai';
    const settings = HazardSettings.parse({
      ...(site.settings?.thresholds !== undefined ? { thresholds: site.settings.thresholds } : {}),
      ...(site.settings?.devices !== undefined ? { devices: site.settings.devices } : {}),
    });
    engines.set(site.siteId, { engine: new HazardEngine({ timezone, settings }), calendar: new SiteCalendar(timezone) });
  }
  const intervals = new Map(registry.devices.map((d) => [`${d.siteId}/${d.deviceId}`, d.intervalS]));

  const raised: (RaiseSignal & { day: string })[] = [];
  const retracted = new Set<string>();
  let readings = 0;
  const lines = createInterface({ input: createReadStream(join(SCENARIO, 'events.jsonl.gz')).pipe(createGunzip()), crlfDelay: Infinity });
  for await (const line of lines) {
    if (line.trim() === '') continue;
    const event = JSON.parse(line) as { via: string; topic?: string; payload?: { batch?: unknown[] } & Record<string, unknown> };
    const match = event.via === 'mqtt' ? /^sites\/([^/]+)\/devices\/([^/]+)\/telemetry$/.exec(event.topic ?? '') : null;
    if (match === null || event.payload === undefined) continue;
    const [, siteId, deviceId] = match;
    const site = engines.get(siteId);
    if (site === undefined) continue;
    const batch = (Array.isArray(event.payload.batch) ? event.payload.batch : [event.payload]) as {
      ts: unknown;
      metrics: Record<string, number>;
    }[];
    for (const r of batch) {
      readings++;
      const signals = site.engine.ingest(
        { siteId, deviceId, ts: epoch(r.ts), metrics: r.metrics },
        { intervalS: intervals.get(`${siteId}/${deviceId}`) },
      );
      for (const s of signals) {
        if (s.type === 'raise') raised.push({ ...s, day: site.calendar.localDay(s.openedAt) });
        else if (s.retracts !== undefined) retracted.add(`${s.key}@${s.retracts}`);
      }
    }
  }
  const late = [...engines.values()].reduce((n, e) => n + e.engine.stats().late, 0);
  return { raised: raised.filter((s) => !retracted.has(`${s.key}@${s.openedAt}`)), readings, late };
}

function matches(finding: Finding, s: RaiseSignal & { day: string }): boolean {
  return (
    s.kind === finding.kind &&
    s.siteId === finding.siteId &&
    s.subject.deviceId === finding.subject.deviceId &&
    s.subject.metric === finding.subject.metric &&
    (finding.day === undefined || s.day === finding.day) &&
    (finding.severity === undefined || s.severity === finding.severity)
  );
}

describe('scenario public-2026-09: hazards', () => {
  it('raises every expected hazard alert and none of the noAlerts', async () => {
    const expected = JSON.parse(readFileSync(join(SCENARIO, 'expected.json'), 'utf8')) as { alerts: Finding[]; noAlerts: Finding[] };
    const wanted = expected.alerts.filter((a) => a.kind.startsWith('hazard.'));
    const forbidden = expected.noAlerts.filter((a) => a.kind.startsWith('hazard.'));
    const { raised, readings, late } = await replay();

    const missing = wanted.filter((f) => !raised.some((s) => matches(f, s)));
    const violated = forbidden.filter((f) => raised.some((s) => matches({ ...f, severity: undefined }, s)));
    console.info(
      `hazard scenario: ${readings} readings, ${raised.length} raises, late ${late}; ` +
        `expected found ${wanted.length - missing.length}/${wanted.length}, noAlerts violated ${violated.length}/${forbidden.length}`,
    );
    expect(wanted.length).toBeGreaterThan(0);
    expect(missing).toEqual([]);
    expect(violated).toEqual([]);
  });
});
