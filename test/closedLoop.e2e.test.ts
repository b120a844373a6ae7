import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import type { RaiseSignal } from '../gateway/src/checks/types.ts';
import { TestClock } from './support/clock.ts';
import { startGateway, tempDir, type TestGateway } from './support/gateway.ts';
import { webhookReceiver } from './support/webhookReceiver.ts';

const T0 = '2026-11-02T01:00:00Z';
const MIN = 60_000;
const H = 60 * MIN;
const SECRET = 'receiver-secret-0123456789';
/** A rectification photo: a real JPEG (a grey 64×48 frame). */
const JPEG = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#7a7a70' } }).jpeg().toBuffer();

const gasAlarm = (key: string): RaiseSignal => ({
  type: 'raise', kind: 'hazard.threshold', siteId: 'S1', subject: { deviceId: 'GAS-1', metric: 'gas_lel_pct' }, key,
  severity: 'critical', openedAt: Date.parse(T0) - MIN, message: 'gas_lel_pct 27 %LEL beyond the alarm limit 25', evidence: { value: 27 },
});

/** Every pending delivery is attempted with the clock moving on between passes (back-off), until none is left. */
async function deliverAll(g: TestGateway, clock: TestClock): Promise<void> {
  for (let i = 0; i < 60; i++) {
    await g.gw.deliverer.runOnce();
    const pending = await g.api('GET', '/webhooks/wh-all/deliveries?state=pending');
    const pendingL2 = await g.api('GET', '/webhooks/wh-l2/deliveries?state=pending');
    if (pending.json.items.length === 0 && pendingL2.json.items.length === 0) return;
    clock.advance(10 * MIN);
  }
  throw new Error('deliveries still pending');
}

describe('the closed loop end to end: handling, deadlines, escalation, webhooks, restarts', () => {
  const clock = new TestClock(T0);
  const dataDir = tempDir();
  let g: TestGateway;
  const tokens: Record<string, string> = {};
  const start = async () => { g = await startGateway({}, { now: clock.now, checks: [], alertTimerMs: 0 }, dataDir); };
  const restart = async () => { await g.stop({ keepDataDir: true }); await start(); };
  afterAll(async () => { await g?.stop(); });

  it('critical: level 2 when not acked, level 3 when not rectified by dueAt, then rectify/reopen/rectify/resolve; webhooks get every event through an outage and restarts', async () => {
    const all = await webhookReceiver(SECRET, { fail: 3 }); // the regional platform is down for the first three requests
    const level2 = await webhookReceiver(SECRET);
    await start();
    await g.api('PUT', '/sites/S1', { name: '钱江新城项目', regionCode: '330106' });
    tokens.cu = (await g.api('POST', '/tokens', { role: 'construction_unit', scope: { sites: ['S1'] }, label: '某建设集团' })).json.token;
    tokens.reg = (await g.api('POST', '/tokens', { role: 'regulator', scope: { regions: ['3301'] }, label: '杭州市住建局' })).json.token;
    expect((await g.api('PUT', '/webhooks/wh-all', { url: all.url, secret: SECRET, scope: { sites: ['S1'] } })).status).toBe(201);
    expect((await g.api('PUT', '/webhooks/wh-l2', { url: level2.url, secret: SECRET, scope: { regions: ['3301'] }, levels: [2], kinds: ['hazard.'], events: ['escalated', 'reminder'] })).status).toBe(201);

    const a = g.gw.alerts.apply(gasAlarm('gas-1'))!;
    expect(a.dueAt).toBe(Date.parse(T0) + 24 * H);
    clock.advance(24 * MIN);
    expect(g.gw.alerts.escalateDue()).toEqual([]); // 80 % of the 30 min: a reminder to level 1
    clock.advance(7 * MIN);
    await restart(); // the acknowledgement limit passed while the gateway was down
    expect(g.gw.alerts.escalateDue().map((x) => x.level)).toEqual([2]);
    await restart();
    expect(g.gw.alerts.escalateDue()).toEqual([]); // fired once, not again after a restart
    await deliverAll(g, clock);
    expect(level2.accepted.map((r) => [r.event, r.level])).toEqual([['escalated', 2]]);

    const ack = await g.api('POST', `/alerts/${a.id}/ack`, { note: '已停止动火作业，通风排查' }, { token: tokens.cu });
    expect(ack.status, ack.text).toBe(200);
    expect((await g.api('POST', `/alerts/${a.id}/resolve`, { note: 'no' }, { token: tokens.cu })).status).toBe(403);
    clock.set(Date.parse(T0) + 30 * MIN + 0.8 * 24 * H);
    expect(g.gw.alerts.escalateDue()).toEqual([]); // the rectification deadline's reminder, to level 2
    clock.set(Date.parse(T0) + 30 * MIN + 24 * H); // the new rectification deadline, set when it moved up
    await restart();
    expect(g.gw.alerts.escalateDue().map((x) => [x.level, x.state])).toEqual([[3, 'acked']]);
    await restart();
    expect(g.gw.alerts.escalateDue()).toEqual([]);

    const photo = await g.api('POST', '/sites/S1/photos', JPEG, { token: tokens.cu, contentType: 'image/jpeg' });
    expect(photo.status, photo.text).toBe(201);
    const sha = photo.json.sha256 as string;
    expect((await g.api('POST', `/alerts/${a.id}/rectify`, { note: 'x', photos: ['f'.repeat(64)] }, { token: tokens.cu })).json.error).toBe('bad_request');
    expect((await g.api('POST', `/alerts/${a.id}/rectify`, { note: '更换报警探头并复测 3 %LEL', photos: [sha] }, { token: tokens.cu })).json.state).toBe('rectified');
    const served = await fetch(`${g.httpUrl}/api/v1/sites/S1/photos/${sha}`, { headers: { authorization: `Bearer ${tokens.reg}` } });
    expect(Buffer.from(await served.arrayBuffer()).equals(JPEG)).toBe(true);
    await restart();
    expect((await g.api('POST', `/alerts/${a.id}/reopen`, {}, { token: tokens.reg })).status).toBe(400); // a rejection says why
    expect((await g.api('POST', `/alerts/${a.id}/reopen`, { note: '复测记录缺失' }, { token: tokens.reg })).json.state).toBe('acked');
    expect((await g.api('POST', `/alerts/${a.id}/rectify`, { note: '补充复测记录', photos: [sha] }, { token: tokens.cu })).status).toBe(200);
    await restart();
    const done = await g.api('POST', `/alerts/${a.id}/resolve`, { note: '验收通过' }, { token: tokens.reg });
    expect(done.json).toMatchObject({ state: 'resolved', level: 3 });

    const h = (await g.api('GET', `/alerts/${a.id}`, undefined, { token: tokens.cu })).json.history as { event: string; by?: string; photos?: string[] }[];
    expect(h.map((x) => x.event)).toEqual(['opened', 'reminder', 'escalated', 'acked', 'reminder', 'escalated', 'rectified', 'reopened', 'rectified', 'resolved']);
    expect(h.find((x) => x.event === 'acked')!.by).toMatch(/^construction_unit .*某建设集团/);
    expect(h.find((x) => x.event === 'reopened')!.by).toMatch(/^regulator .*杭州市住建局/);
    expect(h.find((x) => x.event === 'rectified')!.photos).toEqual([sha]);
    expect(h.filter((x) => x.event === 'escalated').every((x) => x.by === 'gateway')).toBe(true);
    expect((await g.api('GET', '/audit/verify')).json).toMatchObject({ ok: true });

    await deliverAll(g, clock);
    // At least once, in order per alert, signed: every event of the history reached the platform.
    expect(all.eventsOf(a.id)).toEqual(h.map((x) => x.event));
    expect(all.accepted.every((r) => r.signatureOk && r.headerEvent === r.event)).toBe(true);
    expect(all.requests).toBeGreaterThan(all.accepted.length); // the three 500s were retried
    // Level 2's recipients: the move to 2 and the reminder at 2; the move to 3 is level 3's business.
    expect(level2.accepted.map((r) => [r.event, r.level])).toEqual([['escalated', 2], ['reminder', 2]]);
    const delivered = await g.api('GET', '/webhooks/wh-all/deliveries?state=delivered');
    expect(delivered.json.items).toHaveLength(h.length);
    expect(delivered.json.items[0]).toMatchObject({ event: 'opened', state: 'delivered', lastStatus: 204 });
    expect(delivered.json.items[0].attempts).toBeGreaterThan(1);
    await all.close();
    await level2.close();
  });

  it('a receiver that never answers 2xx: retried with back-off for 24 h, then failed, visible and counted; the next event then goes', async () => {
    const down = await webhookReceiver(SECRET, { fail: Number.MAX_SAFE_INTEGER });
    await g.api('PUT', '/webhooks/wh-all', { url: down.url, secret: SECRET, scope: { regions: ['33'] } });
    await g.api('DELETE', '/webhooks/wh-l2');
    const b = g.gw.alerts.apply(gasAlarm('gas-2'))!;
    g.gw.alerts.ack(b.id, 'admin');
    for (let i = 0; i < 40 && (await g.api('GET', '/webhooks/wh-all/deliveries?state=failed')).json.items.length < 2; i++) {
      await g.gw.deliverer.runOnce();
      clock.advance(H);
    }
    const failed = (await g.api('GET', '/webhooks/wh-all/deliveries?state=failed')).json.items;
    expect(failed.map((d: { event: string }) => d.event)).toEqual(['opened', 'acked']);
    expect(failed[0].attempts).toBeGreaterThan(5);
    expect(failed[0].lastError).toBe('HTTP 500');
    const metrics = await g.api('GET', '/metrics');
    expect(metrics.text).toMatch(/sitegate_webhook_deliveries_total\{outcome="failed"\} [1-9]/);
    expect((await g.api('DELETE', '/webhooks/wh-all')).status).toBe(204);
    expect((await g.api('GET', '/webhooks/wh-all/deliveries')).status).toBe(404);
    await down.close();
  });
});
