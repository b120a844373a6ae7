import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AlertKind, RaiseSignal, Severity } from '../gateway/src/checks/types.ts';
import { TestClock } from './support/clock.ts';
import { expectStatsMatchList } from './support/alertFigures.ts';
import { startGateway, type TestGateway } from './support/gateway.ts';

const T0 = Date.parse('2026-10-05T02:00:00Z');
const H = 3_600_000;

describe('GET /stats/alerts: the closed loop in figures, equal to what GET /alerts lists', () => {
  const clock = new TestClock(T0);
  let g: TestGateway;
  const tokens: Record<string, string> = {};
  const raise = (siteId: string, key: string, kind: AlertKind, severity: Severity, openedAt: number): RaiseSignal => ({
    type: 'raise', kind, siteId, key, severity, openedAt, subject: { deviceId: `${siteId}-D` }, message: key, evidence: {},
  });

  beforeAll(async () => {
    g = await startGateway({}, { now: clock.now, checks: [], alertTimerMs: 0 });
    for (const [id, region] of [['HZ-1', '330106'], ['HZ-2', '330108'], ['NC-1', '511302']] as const) {
      await g.api('PUT', `/sites/${id}`, { name: `项目 ${id}`, regionCode: region });
    }
    tokens.reg = (await g.api('POST', '/tokens', { role: 'regulator', scope: { regions: ['3301'] } })).json.token;
    tokens.cu = (await g.api('POST', '/tokens', { role: 'construction_unit', scope: { sites: ['HZ-2'] } })).json.token;
    const A = g.gw.alerts;
    // A month of handling, in every state: acked, rectified, resolved, cleared, withdrawn, escalated, overdue, left open.
    for (let i = 0; i < 24; i++) {
      const site = ['HZ-1', 'HZ-2', 'NC-1'][i % 3]!;
      const kind: AlertKind = (['hazard.threshold', 'device.offline', 'keystaff.absent', 'wage.unpaid'] as const)[i % 4]!;
      const a = A.apply(raise(site, `k${i}`, kind, i % 5 === 0 ? 'critical' : i % 7 === 0 ? 'info' : 'warning', T0 - (30 - i) * 24 * H))!;
      clock.advance((i % 4 + 1) * H);
      if (i % 6 === 1) A.reconcile(`k${i}`, null, { exclusive: true }); // later data: it never held
      else if (i % 4 === 0) A.handle(a.id, 'ack', 'cu');
      else if (i % 4 === 1) { A.handle(a.id, 'rectify', 'cu', { note: 'done' }); A.handle(a.id, 'resolve', 'reg', { note: 'ok' }); }
      else if (i % 4 === 2) A.apply({ type: 'clear', kind, siteId: site, key: `k${i}`, at: T0 });
      else if (i % 8 === 3) A.handle(a.id, 'rectify', 'cu', { note: 'done' });
    }
    clock.advance(8 * 24 * H); // past every warning's 7-day deadline: escalations and overdue ones
    A.escalateDue();
  });
  afterAll(async () => g?.stop());

  it('for an admin (all sites), a regulator (its region) and a construction unit (its site)', async () => {
    const all = await expectStatsMatchList(g);
    expect(all.total.raised).toBeGreaterThan(15);
    expect(all.total.withdrawn).toBeGreaterThan(0);
    expect(all.total.overdue).toBeGreaterThan(0);
    expect(all.total.escalated[2]).toBeGreaterThan(0);
    expect(all.total.resolved + all.total.cleared + all.total.open).toBe(all.total.raised);
    const reg = await expectStatsMatchList(g, tokens.reg);
    expect(reg.bySite.map((s: { siteId: string }) => s.siteId)).toEqual(['HZ-1', 'HZ-2']);
    const cu = await expectStatsMatchList(g, tokens.cu);
    expect(cu.bySite.map((s: { siteId: string }) => s.siteId)).toEqual(['HZ-2']);
    const region = await g.api('GET', '/stats/alerts?regions=330108', undefined, { token: tokens.reg });
    expect(region.json.bySite.map((s: { siteId: string }) => s.siteId)).toEqual(['HZ-2']);
    expect(region.json.total).toEqual(cu.total);
    expect((await g.api('GET', '/stats/alerts?siteId=NC-1', undefined, { token: tokens.reg })).status).toBe(403);
    expect((await g.api('GET', '/stats/alerts?siteId=NOPE')).status).toBe(404);
  });

  it('over [from, to) of openedAt, and as CSV (UTF-8 with BOM) with the same numbers', async () => {
    const from = new Date(T0 - 20 * 24 * H).toISOString();
    const to = new Date(T0 - 10 * 24 * H).toISOString();
    const part = await expectStatsMatchList(g, undefined, `from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`);
    expect(part.total.raised).toBeGreaterThan(0);
    expect((await g.api('GET', `/stats/alerts?from=${encodeURIComponent(to)}&to=${encodeURIComponent(from)}`)).json.error).toBe('bad_request');
    expect((await g.api('GET', '/stats/alerts?from=2026-10-01T00:00:00')).json.error).toBe('bad_request'); // no offset
    const res = await fetch(`${g.httpUrl}/api/v1/stats/alerts?format=csv`, { headers: { authorization: `Bearer ${tokens.reg}` } });
    expect(res.headers.get('content-type')).toMatch(/^text\/csv/);
    const bytes = Buffer.from(await res.arrayBuffer());
    expect([...bytes.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    const rows = bytes.toString('utf8').slice(1).trim().split('\r\n').map((l) => l.split(','));
    expect(rows[0]!.slice(0, 6)).toEqual(['group', 'siteId', 'siteName', 'regionCode', 'kind', 'raised']);
    const json = (await g.api('GET', '/stats/alerts', undefined, { token: tokens.reg })).json;
    expect(rows[1]!.slice(5, 13).map(Number)).toEqual([json.total.raised, json.total.acked, json.total.rectified, json.total.resolved, json.total.cleared, json.total.withdrawn, json.total.open, json.total.overdue]);
    expect(rows.find((r) => r[1] === 'HZ-1')![2]).toBe('项目 HZ-1'); // Chinese intact
  });
});
