/**
 * Every InfluxQL query of the Grafana dashboards (site and region overview) against a real
 * influxd 1.6.7, after the real gateway wrote its points: readings of every metric a panel draws,
 * check-ins of each face verdict, device status, alerts (one escalated to level 2 on the
 * injected clock). Grafana's macros are replaced the way Grafana would; each query must run
 * and return rows, and a few figures are checked against what was sent.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DASHBOARDS } from '../dashboards/grafana/dashboards.ts';
import { influxdAvailable, rows, startInfluxd, type Influxd } from './support/influxd.ts';
import { startGateway, type TestGateway } from './support/gateway.ts';
import { TestClock } from './support/clock.ts';
import { FACES_DIR } from './support/scenario.ts';
import { settled } from './support/settle.ts';

const S1 = 'S-GF-1';
const S2 = 'S-GF-2';
const DB = 'dashboards';
/** A site day (Asia/Shanghai) in which everything below happens. */
const FROM = '2026-11-01T16:00:00Z';
const TO = '2026-11-02T16:00:00Z';
const t0 = Date.parse('2026-11-02T08:00:00+08:00');
const photo = (name: string) => fs.readFileSync(path.join(FACES_DIR, name)).toString('base64');

/** A Grafana InfluxQL target with its macros and variables filled in as Grafana does before sending it. */
function fill(query: string): string {
  const q = query
    .replaceAll('$timeFilter', `time >= '${FROM}' AND time < '${TO}'`)
    .replaceAll('${site:regex}', S1)
    .replaceAll('${sites:regex}', `(${S1}|${S2})`)
    .replaceAll('$__interval', '10m')
    .replaceAll('$tz', 'Asia/Shanghai');
  expect(q, 'a macro or variable left unfilled').not.toMatch(/\$[\w{]/);
  return q;
}

const targets = (file: string): { panel: string; refId: string; query: string }[] =>
  (DASHBOARDS[file] as any).panels.flatMap((p: any) => p.targets.map((t: any) => ({ panel: p.title, refId: t.refId, query: fill(t.query) })));

describe('Grafana InfluxQL dashboards against influxd 1.6.7 and the gateway’s points', () => {
  let influx: Influxd;
  let g: TestGateway;
  const clock = new TestClock('2026-11-02T10:00:00+08:00');

  beforeAll(async () => {
    const available = influxdAvailable();
    if (!available.ok) throw new Error(available.reason);
    influx = await startInfluxd({ db: DB });
    g = await startGateway({ SITEGATE_INFLUX_URL: influx.url, SITEGATE_INFLUX_DB: DB, SITEGATE_INFLUX_FLUSH_MS: '50' }, { now: clock.now, alertTimerMs: 0 });

    const env1 = await g.device(S1, 'ENV-1', 'sensor', '330106');
    const env2 = await g.device(S2, 'ENV-2', 'sensor', '330108');
    const ft = await g.device(S1, 'FT-1', 'face_terminal', '330106');
    const ft2 = await g.device(S2, 'FT-2', 'face_terminal', '330108');
    for (const [site, w] of [[S1, 'W-CADY'], [S1, 'W-CARL'], [S2, 'W-CHRIS']] as const) {
      expect((await g.api('PUT', `/sites/${site}/workers/${w}`, { name: w })).status).toBe(201);
    }
    const enrol = await g.api('PUT', `/sites/${S1}/workers/W-CADY/face`, fs.readFileSync(path.join(FACES_DIR, 'cady_coleman_1.jpg')), { contentType: 'image/jpeg' });
    expect(enrol.status, enrol.text).toBe(201);

    // Readings of every metric the panels draw, wind beyond its critical limit at both sites.
    for (const [dev, secret, site] of [['ENV-1', env1, S1], ['ENV-2', env2, S2]] as const) {
      const c = await g.connect(dev, secret);
      const batch = Array.from({ length: 30 }, (_, i) => ({
        id: `${dev}-${i}`, ts: t0 + i * 60_000,
        metrics: { pm10: 80 + i, pm2_5: 40, tsp: 300, noise_dba: 60, crane_load_pct: 50, crane_moment_pct: 55, hoist_load_pct: 40,
          pit_displacement_mm: 5, pit_settlement_mm: 3, wind_speed_ms: i >= 10 ? 15 : 5, gas_lel_pct: 1 },
      }));
      await c.publishAsync(`sites/${site}/devices/${dev}/telemetry`, JSON.stringify({ batch }), { qos: 1 });
      await c.publishAsync(`sites/${site}/devices/${dev}/status`, JSON.stringify({ state: 'online', ts: t0, batteryPct: 90 }), { qos: 1 });
    }
    // Check-ins of each verdict: a genuine face, an impostor's, none, and a card.
    const t = await g.connect('FT-1', ft);
    const checkin = (id: string, workerId: string, min: number, extra: Record<string, unknown>) =>
      t.publishAsync(`sites/${S1}/devices/FT-1/checkin`, JSON.stringify({ id, workerId, ts: t0 + min * 60_000, direction: 'in', method: 'face', ...extra }), { qos: 1 });
    await checkin('c1', 'W-CADY', 1, { photo: photo('cady_coleman_2.jpg') });
    await checkin('c2', 'W-CADY', 2, { photo: photo('carl_walz_1.jpg') });
    await checkin('c3', 'W-CADY', 3, {}); // no photo from an enrolled worker: no_face
    await checkin('c4', 'W-CARL', 4, { method: 'card' });
    const t2 = await g.connect('FT-2', ft2);
    await t2.publishAsync(`sites/${S2}/devices/FT-2/checkin`, JSON.stringify({ id: 'c5', workerId: 'W-CHRIS', ts: t0 + 5 * 60_000, direction: 'in', method: 'card' }), { qos: 1 });
    await settled(g.gw);

    // S2's wind alert is acknowledged, S1's is not: two hours later S1's has moved up a level.
    const s2Alerts = (await g.api('GET', `/alerts?siteId=${S2}&kind=hazard.threshold`)).json.items;
    expect(s2Alerts).toHaveLength(1);
    expect((await g.api('POST', `/alerts/${s2Alerts[0].id}/ack`, { note: 'crane stopped' })).status).toBe(200);
    clock.advance(2 * 3_600_000);
    const moved = g.gw.alerts.escalateDue(clock.now());
    expect(moved.some((a) => a.siteId === S1 && a.kind === 'hazard.threshold' && a.level >= 2)).toBe(true);
    await settled(g.gw);
    // No event says the sink caught up: poll its lag with a bounded deadline.
    for (const deadline = Date.now() + 30_000; ;) {
      const s = (await g.api('GET', '/readyz')).json.sinks[0];
      if (s.lagRecords === 0) break;
      if (Date.now() > deadline) throw new Error(`sink lag ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  });

  afterAll(async () => {
    await g?.stop();
    await influx?.dispose();
  });

  const select = async (q: string) => rows(await influx.query(q, { db: DB }));

  it.each(targets('sitegate-influxql.json'))('site dashboard: $panel [$refId] returns rows', async ({ query }) => {
    expect((await select(query)).length, query).toBeGreaterThan(0);
  });

  it.each(targets('sitegate-region.json'))('region overview: $panel [$refId] returns rows', async ({ query }) => {
    expect((await select(query)).length, query).toBeGreaterThan(0);
  });

  it('figures match what was sent', async () => {
    const byRef = (file: string, refId: string) => targets(file).find((t) => t.refId === refId)!.query;
    const site = 'sitegate-influxql.json';
    const region = 'sitegate-region.json';
    // Face verdicts: one of each at S1.
    for (const v of ['verified', 'face_mismatch', 'no_face', 'unverified']) {
      const r = await select(byRef(site, v));
      expect(r.reduce((n, x) => n + x[v], 0), v).toBe(1);
    }
    // Workers present that site day, in site time: 2 at S1; per site in the region view: S1 2, S2 1.
    expect((await select(byRef(site, 'workers'))).map((r) => r.workers)).toEqual([2]);
    const perSite = Object.fromEntries((await select(byRef(region, 'workers'))).map((r) => [r.site, r.workers]));
    expect(perSite).toEqual({ [S1]: 2, [S2]: 1 });
    // The wind alerts: not closed at both sites (S2's acked), S1's at level 2.
    const escalated = Object.fromEntries((await select(byRef(region, 'escalated'))).map((r) => [r.site, r.escalated]));
    expect(escalated).toEqual({ [S1]: 1 });
    const open = await select(byRef(region, 'open'));
    expect(open.filter((r) => r.severity === 'critical').map((r) => r.site).sort()).toEqual([S1, S2]);
    // Alerts list: the latest state of S1's alerts, the wind one among them at level 2.
    const list = await select(byRef(site, 'alerts'));
    expect(list.some((r) => r.kind === 'hazard.threshold' && r.severity === 'critical' && r.level === 2 && r.state === 'open')).toBe(true);
    // PM10 per site is the maximum of what the sensors sent (80 … 109) in some window.
    const pm10 = await select(byRef(region, 'pm10'));
    expect(Math.max(...pm10.filter((r) => r.site === S1).map((r) => r.pm10))).toBe(109);
  });
});
