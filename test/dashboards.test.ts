/**
 * The Grafana dashboards (dashboards/grafana/dashboards.ts → dashboards/grafana/dashboards/*.json):
 * the committed files are what the generator writes, every query names only measurements, tags
 * and fields that the gateway writes (derived here from `toPoints`, not from a list typed in this
 * test), and threshold lines are the hazard rules' defaults. That the InfluxQL queries return
 * rows from a real influxd is `dashboards.influx.e2e.test.ts`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DASHBOARDS, REGION_PANELS, SITE_PANELS, render } from '../dashboards/grafana/dashboards.ts';
import { OUT_DIR } from '../dashboards/grafana/generate.ts';
import { toPoints } from '../gateway/src/sinks/points.ts';
import { RULES_BY_METRIC } from '../gateway/src/checks/hazard/settings.ts';
import { hazardRules } from '../gateway/src/checks/hazard/rules/registry.ts';
import type { RecordKind, StoredRecord } from '../gateway/src/ledger/types.ts';

/** Measurement → the tags and fields the gateway writes, from one record of each kind with every optional field set. */
function writtenSchema(): Map<string, { tags: Set<string>; fields: Set<string> }> {
  const bodies: Partial<Record<RecordKind, Record<string, unknown>>> = {
    reading: { metrics: Object.fromEntries([...RULES_BY_METRIC.keys()].map((m) => [m, 1])) },
    checkin: { workerId: 'W1', direction: 'in', method: 'face', verdict: 'verified', similarity: 0.9, photoSha256: 'ab' },
    status: { state: 'online', batteryPct: 80 },
    wage_payment: { workerId: 'W1', status: 'paid', amount: 1, period: '2026-10', cardLast4: '1234' },
    alert: { kind: 'hazard.threshold', severity: 'warning', level: 1, state: 'open', id: 'A1' },
  };
  const schema = new Map<string, { tags: Set<string>; fields: Set<string> }>();
  for (const [kind, body] of Object.entries(bodies)) {
    const r: StoredRecord = { seq: 1, siteId: 'S1', deviceId: 'D1', kind: kind as RecordKind, msgId: 'm1', dedupeKey: 'k', ts: 0, receivedAt: 0, body: body! };
    for (const p of toPoints(r, () => 'sensor')) {
      const e = schema.get(p.measurement) ?? { tags: new Set<string>(), fields: new Set<string>() };
      Object.keys(p.tags).forEach((t) => e.tags.add(t));
      Object.keys(p.fields).forEach((f) => e.fields.add(f));
      schema.set(p.measurement, e);
    }
  }
  return schema;
}

describe('Grafana dashboards', () => {
  it.each(Object.keys(DASHBOARDS))('%s is current (run `npm run dashboards`) and parses', (file) => {
    const text = fs.readFileSync(path.join(OUT_DIR, file), 'utf8');
    expect(text).toBe(render(DASHBOARDS[file]));
    const d = JSON.parse(text);
    const ids = d.panels.map((p: { id: number }) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of d.panels) expect(p.targets.length).toBeGreaterThan(0);
  });

  it('has no stale dashboard file', () => {
    expect(fs.readdirSync(OUT_DIR).sort()).toEqual(Object.keys(DASHBOARDS).sort());
  });

  it('queries only measurements, tags and fields that the gateway writes (contract §4, points.ts)', () => {
    const schema = writtenSchema();
    for (const p of [...SITE_PANELS, ...REGION_PANELS]) {
      for (const s of p.series) {
        const m = schema.get(s.measurement);
        expect(m, `${p.title}: measurement ${s.measurement}`).toBeDefined();
        expect([...m!.fields], `${p.title}: field ${s.field}`).toContain(s.field);
        for (const t of [...(s.byTags ?? []), ...(s.distinctTag ? [s.distinctTag] : [])]) expect([...m!.tags], `${p.title}: tag ${t}`).toContain(t);
        for (const f of p.rawFields ?? []) expect([...m!.fields]).toContain(f);
      }
    }
    // And the rendered text says the same: every quoted identifier of an InfluxQL query is a
    // measurement, a tag, a field of that measurement, an alias or a Grafana variable.
    for (const file of ['sitegate-influxql.json', 'sitegate-region.json']) {
      const d = JSON.parse(fs.readFileSync(path.join(OUT_DIR, file), 'utf8'));
      for (const t of d.panels.flatMap((p: any) => p.targets)) {
        const measurement = /FROM "([a-z_]+)"/.exec(t.query)![1]!;
        const m = schema.get(measurement)!;
        expect(m, t.query).toBeDefined();
        const known = new Set([measurement, ...m.tags, ...m.fields, 'n', t.refId]);
        for (const [, id] of t.query.matchAll(/"([^"]+)"/g)) expect(known, `${id} in ${t.query}`).toContain(id);
      }
    }
  });

  it('draws each reading panel’s threshold lines from the hazard rules, typed nowhere else', () => {
    const d = JSON.parse(fs.readFileSync(path.join(OUT_DIR, 'sitegate-influxql.json'), 'utf8'));
    const firstThresholdRule = (metric: string) => hazardRules.find((r) => r.kind === 'hazard.threshold' && r.defaults[metric])!.defaults[metric]!;
    let lines = 0;
    for (const p of d.panels) {
      expect(p.title).not.toMatch(/\d{2}/); // no limit typed into a title (units like m³ aside)
      for (const o of p.fieldConfig.overrides) {
        const metric = o.matcher.options as string;
        const steps = o.properties.find((x: any) => x.id === 'thresholds').value.steps.map((s: any) => s.value);
        const d0 = firstThresholdRule(metric);
        expect(steps).toEqual([null, ...[d0.warning, d0.critical].filter((v) => v !== undefined)]);
        lines++;
      }
    }
    expect(lines).toBeGreaterThanOrEqual(10);
    const noise = d.panels.find((p: any) => p.targets.some((t: any) => t.refId === 'noise_dba'));
    expect(noise.description).toMatch(/night Leq over 20 min: warning 50, critical 55/);
  });

  it('gives the Flux and InfluxQL site dashboards the same panels, each on its own datasource', () => {
    const flux = JSON.parse(fs.readFileSync(path.join(OUT_DIR, 'sitegate.json'), 'utf8'));
    const ql = JSON.parse(fs.readFileSync(path.join(OUT_DIR, 'sitegate-influxql.json'), 'utf8'));
    expect(flux.panels.map((p: any) => p.title)).toEqual(ql.panels.map((p: any) => p.title));
    expect(new Set(flux.panels.map((p: any) => p.datasource.uid))).toEqual(new Set(['sitegate-influxdb']));
    expect(new Set(ql.panels.map((p: any) => p.datasource.uid))).toEqual(new Set(['sitegate-influxql']));
    for (const p of flux.panels) for (const t of p.targets) expect(t.query).toContain('r.site == "${site}"');
    const region = JSON.parse(fs.readFileSync(path.join(OUT_DIR, 'sitegate-region.json'), 'utf8'));
    expect(region.templating.list[0]).toMatchObject({ name: 'sites', multi: true, includeAll: true });
    for (const p of region.panels) for (const t of p.targets) expect(t.query).toContain('"site" =~ /^${sites:regex}$/');
  });
});
