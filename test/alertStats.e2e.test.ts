import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AlertKind, RaiseSignal, Severity } from '../gateway/src/checks/types.ts';
import { TestClock } from './support/clock.ts';
import { ALERT_KIND_LABELS } from '../gateway/src/i18n/lang.ts';
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

  it('over [from, to) of openedAt, and as CSV (UTF-8 with BOM) with the same numbers, Chinese unless lang=en', async () => {
    const from = new Date(T0 - 20 * 24 * H).toISOString();
    const to = new Date(T0 - 10 * 24 * H).toISOString();
    const part = await expectStatsMatchList(g, undefined, `from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`);
    expect(part.total.raised).toBeGreaterThan(0);
    expect((await g.api('GET', `/stats/alerts?from=${encodeURIComponent(to)}&to=${encodeURIComponent(from)}`)).json.error).toBe('bad_request');
    expect((await g.api('GET', '/stats/alerts?from=2026-10-01T00:00:00')).json.error).toBe('bad_request'); // no offset
    const csv = async (query: string) => {
      const res = await fetch(`${g.httpUrl}/api/v1/stats/alerts?format=csv${query}`, { headers: { authorization: `Bearer ${tokens.reg}` } });
      expect(res.headers.get('content-type')).toMatch(/^text\/csv/);
      const bytes = Buffer.from(await res.arrayBuffer());
      expect([...bytes.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
      return bytes.toString('utf8').slice(1).trim().split('\r\n').map((l) => l.split(','));
    };
    const json = (await g.api('GET', '/stats/alerts', undefined, { token: tokens.reg })).json;
    const figures = (f: typeof json.total) => [f.raised, f.acked, f.rectified, f.resolved, f.cleared, f.withdrawn, f.open, f.overdue, f.escalated[2], f.escalated[3]];
    // Chinese by default (headers, groups, kinds' labels; the kind's code beside its label).
    const zh = await csv('');
    expect(zh[0]).toEqual(['分组', '工地编号', '工地名称', '行政区划代码', '类别代码', '类别', '产生', '已确认', '已整改', '已办结', '已消除', '已撤销', '处理中', '逾期',
      '升至二级', '升至三级', '确认用时中位数（秒）', '闭环用时中位数（秒）']);
    expect(zh[1]!.slice(0, 1)).toEqual(['合计']);
    expect(zh[1]!.slice(6, 16).map(Number)).toEqual(figures(json.total));
    expect(zh.find((r) => r[1] === 'HZ-1')!.slice(0, 3)).toEqual(['工地', 'HZ-1', '项目 HZ-1']); // Chinese intact
    const kindRow = zh.find((r) => r[4] === json.byKind[0].kind)!;
    expect(kindRow[0]).toBe('预警类别');
    expect(kindRow[5]).toBe(ALERT_KIND_LABELS[json.byKind[0].kind as AlertKind].zh);
    expect(kindRow.slice(6, 16).map(Number)).toEqual(figures(json.byKind[0]));
    expect(zh).toHaveLength(1 + 1 + json.bySite.length + json.byKind.length);
    // lang=en: the same table in English, same numbers.
    const en = await csv('&lang=en');
    expect(en[0]!.slice(0, 7)).toEqual(['group', 'siteId', 'siteName', 'regionCode', 'kind', 'kindLabel', 'raised']);
    expect(en.slice(1).map((r) => r.slice(6))).toEqual(zh.slice(1).map((r) => r.slice(6)));
    expect(en.find((r) => r[4] === json.byKind[0].kind)![5]).toBe(ALERT_KIND_LABELS[json.byKind[0].kind as AlertKind].en);
    expect(en[1]![0]).toBe('total');
    // The JSON is the same in both languages; an unknown language is a clear 400.
    expect((await g.api('GET', '/stats/alerts?lang=en', undefined, { token: tokens.reg })).json).toEqual(json);
    const bad = await g.api('GET', '/stats/alerts?format=csv&lang=fr', undefined, { token: tokens.reg });
    expect(bad.status).toBe(400);
    expect(bad.json.error).toBe('bad_request');
  });
});
