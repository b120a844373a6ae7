import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RaiseSignal } from '../gateway/src/checks/types.ts';
import { startGateway, type TestGateway } from './support/gateway.ts';

const T0 = Date.parse('2026-09-03T01:00:00Z');
const signal = (siteId: string, key: string, openedAt = T0): RaiseSignal => ({
  type: 'raise', kind: 'device.offline', siteId, subject: { deviceId: `${siteId}-D` }, key, severity: 'warning', openedAt, message: 'silent for 20 min', evidence: {},
});

describe('alerts over the API and MQTT', () => {
  let g: TestGateway;
  let regulator: string;
  let auditor: string;

  beforeAll(async () => {
    g = await startGateway({}, { checks: [] });
    await g.device('S1', 'S1-D', 'sensor', '330106');
    await g.device('S2', 'S2-D', 'sensor', '511302');
    regulator = (await g.api('POST', '/tokens', { role: 'regulator', scope: { regions: ['3301'] }, label: 'Hangzhou housing bureau' })).json.token;
    auditor = (await g.api('POST', '/tokens', { role: 'auditor', scope: { sites: ['S1'] } })).json.token;
  });
  afterAll(async () => g?.stop());

  it('publishes every alert event on sites/{siteId}/alerts to subscribed tools in scope', async () => {
    const sub = await mqtt.connectAsync(g.mqttUrl, { username: 'token', password: regulator, reconnectPeriod: 0 });
    await sub.subscribeAsync('sites/S1/alerts', { qos: 1 });
    const got = new Promise<any>((r) => sub.once('message', (_t, p) => r(JSON.parse(p.toString()))));
    g.gw.alerts.apply(signal('S1', 'mq-1'));
    expect(await got).toMatchObject({ event: 'opened', kind: 'device.offline', siteId: 'S1', state: 'open', level: 1, openedAt: new Date(T0).toISOString() });
    await sub.endAsync();
  });

  it('lists only the sites in the token\'s scope, pages with a cursor, and refuses auditors', async () => {
    for (let i = 0; i < 5; i++) { g.gw.alerts.apply(signal('S1', `s1-${i}`, T0 + i)); g.gw.alerts.apply(signal('S2', `s2-${i}`, T0 + i)); }
    const all = await g.api('GET', '/alerts?limit=1000');
    expect(all.json.items.length).toBeGreaterThanOrEqual(10);
    const reg = await g.api('GET', '/alerts?limit=3', undefined, { token: regulator });
    expect(reg.status).toBe(200);
    expect(reg.json.items).toHaveLength(3);
    expect(reg.json.next).toBeDefined();
    const items = [...reg.json.items];
    let next = reg.json.next;
    while (next) {
      const p = await g.api('GET', `/alerts?limit=3&cursor=${encodeURIComponent(next)}`, undefined, { token: regulator });
      items.push(...p.json.items);
      next = p.json.next;
    }
    expect(items.every((a: any) => a.siteId === 'S1')).toBe(true);
    expect(items.length).toBe(6);
    expect((await g.api('GET', '/alerts?siteId=S2', undefined, { token: regulator })).json.items).toEqual([]);
    expect((await g.api('GET', '/alerts', undefined, { token: auditor })).status).toBe(403);
    expect((await g.api('GET', '/alerts?limit=0')).status).toBe(400);
    expect((await g.api('GET', '/alerts?cursor=garbage')).status).toBe(400);
    expect((await g.api('GET', `/alerts?since=${encodeURIComponent(new Date(T0 + 3).toISOString())}&siteId=S1`)).json.items).toHaveLength(2);
  });

  it('acknowledges and resolves with who and when, in a history that verifies end to end', async () => {
    const a = g.gw.alerts.apply(signal('S1', 'life-1'))!;
    const ack = await g.api('POST', `/alerts/${a.id}/ack`, { note: 'technician on the way' }, { token: regulator });
    expect(ack.status).toBe(200);
    expect(ack.json.state).toBe('acked');
    expect(ack.json.history[1]).toMatchObject({ event: 'acked', note: 'technician on the way' });
    expect(ack.json.history[1].by).toContain('Hangzhou housing bureau');
    expect((await g.api('POST', `/alerts/${a.id}/ack`, {}, { token: regulator })).status).toBe(409);
    const res = await g.api('POST', `/alerts/${a.id}/resolve`, { note: 'sensor replaced' });
    expect(res.json.state).toBe('resolved');
    const s2 = g.gw.alerts.apply(signal('S2', 'life-2'))!;
    expect((await g.api('POST', `/alerts/${s2.id}/ack`, {}, { token: regulator })).status).toBe(404);
    const verify = await g.api('GET', '/audit/verify');
    expect(verify.json).toMatchObject({ ok: true });
    expect(verify.json.entries).toBeGreaterThan(10);
  });
});
