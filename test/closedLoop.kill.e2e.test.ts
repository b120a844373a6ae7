import mqtt from 'mqtt';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from './support/gateway.ts';
import { restartableGateway, type RestartableGateway } from './support/restartable.ts';
import { webhookReceiver } from './support/webhookReceiver.ts';

const SECRET = 'receiver-secret-kill-0123456789';

/**
 * Contract §6 "none is lost, none fires twice" for the people's steps: the gateway as its own
 * process, SIGKILLed right after each of ack, rectify (with a photo) and resolve has been
 * answered 200, then started again on the same data directory. After every restart the alert
 * shows each step once, a repeated step is refused as a conflict rather than recorded twice, the
 * audit chain verifies, and the webhook receiver gets each event (at least once, one delivery id
 * per event, in order). The steps run in seconds, far inside every deadline, so no timer is due
 * whatever the date; timers across kill -9 are test/closedLoop.killTimers.e2e.test.ts (the process on a
 * clock the test sets), in process on a TestClock test/closedLoop.e2e.test.ts.
 */
describe('closed loop steps across kill -9', () => {
  const dataDir = tempDir('sitegate-kill-loop-');
  let gw: RestartableGateway;
  const start = async () => {
    gw ??= await restartableGateway(dataDir);
    await gw.start();
  };
  const api: RestartableGateway['api'] = (...args) => gw.api(...args);
  async function kill9(): Promise<void> {
    expect(await gw.kill9()).toBe('SIGKILL');
  }
  afterAll(async () => gw?.stop());

  it('ack, rectify with a photo and resolve each survive a kill -9 right after their answer, once', async () => {
    const receiver = await webhookReceiver(SECRET);
    await start();
    await api('PUT', '/sites/S1', { name: '滨江一号地块', regionCode: '330106' });
    const secret = (await api('PUT', '/sites/S1/devices/WIND-1', { kind: 'sensor', intervalS: 60 })).json.secret;
    const regulator = (await api('POST', '/tokens', { role: 'regulator', scope: { regions: ['3301'] }, label: 'bureau' })).json.token;
    const unit = (await api('POST', '/tokens', { role: 'construction_unit', scope: { sites: ['S1'] }, label: 'unit' })).json.token;
    expect((await api('PUT', '/webhooks/wh', { url: receiver.url, secret: SECRET, scope: { sites: ['S1'] } })).status).toBe(201);

    // A gust beyond the critical limit (13.8 m/s) opens a critical wind alert: awaited on the alerts topic.
    const tool = await mqtt.connectAsync(gw.mqttUrl, { username: 'token', password: regulator, reconnectPeriod: 0 });
    await tool.subscribeAsync('sites/S1/alerts', { qos: 1 });
    const opened = new Promise<{ id: string }>((resolve) => tool.on('message', (_t, m) => { const e = JSON.parse(m.toString()); if (e.event === 'opened') resolve(e); }));
    const dev = await mqtt.connectAsync(gw.mqttUrl, { username: 'WIND-1', password: secret, reconnectPeriod: 0 });
    // Stamped with the gateway's own "now" (its status says it): the child process keeps the real
    // clock even when this runner's is shifted (faketime), and nothing here depends on the date.
    const now = (await api('GET', '/sites/S1/status')).json.now as string;
    await dev.publishAsync('sites/S1/devices/WIND-1/telemetry', JSON.stringify({ id: 'g1', ts: Date.parse(now), metrics: { wind_speed_ms: 15.2 } }), { qos: 1 });
    const { id } = await opened;
    await Promise.all([tool.endAsync(), dev.endAsync()]);

    const photo = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#7a7a70' } }).jpeg().toBuffer();
    const steps: { step: string; token: string; body: () => Promise<Record<string, unknown>>; events: string[] }[] = [
      { step: 'ack', token: unit, body: async () => ({ note: '收到，已停止塔吊作业' }), events: ['opened', 'acked'] },
      {
        step: 'rectify', token: unit, events: ['opened', 'acked', 'rectified'],
        body: async () => ({ note: '风速回落后复检', photos: [(await api('POST', '/sites/S1/photos', photo, { contentType: 'image/jpeg', token: unit })).json.sha256] }),
      },
      { step: 'resolve', token: regulator, body: async () => ({ note: '复核合格' }), events: ['opened', 'acked', 'rectified', 'resolved'] },
    ];
    for (const s of steps) {
      const r = await api('POST', `/alerts/${id}/${s.step}`, await s.body(), { token: s.token });
      expect(r.status, `${s.step}: ${r.text}`).toBe(200);
      await kill9();
      await start();
      const a = (await api('GET', `/alerts/${id}`)).json;
      expect(a.history.map((h: { event: string }) => h.event), `after the kill following ${s.step}`).toEqual(s.events);
      // The same step again is refused, not recorded twice.
      const again = await api('POST', `/alerts/${id}/${s.step}`, await s.body(), { token: s.token });
      expect(again.status, `${s.step} again`).toBe(409);
      expect((await api('GET', '/audit/verify')).json).toMatchObject({ ok: true });
    }
    const a = (await api('GET', `/alerts/${id}`)).json;
    expect(a.state).toBe('resolved');
    expect(a.history[2].photos).toHaveLength(1);
    expect(a.history.map((h: { by?: string }) => h.by ?? '')).toEqual(['', expect.stringContaining('unit'), expect.stringContaining('unit'), expect.stringContaining('bureau')]);

    // Webhooks: every step once (one delivery id each), in order, signed — whatever the kills interrupted.
    await receiver.until(() => receiver.eventsOf(id).length >= 4);
    expect(receiver.eventsOf(id)).toEqual(['opened', 'acked', 'rectified', 'resolved']);
    expect(receiver.accepted.every((r) => r.signatureOk)).toBe(true);
    const stats = (await api('GET', '/stats/alerts?siteId=S1')).json;
    expect(stats.total).toMatchObject({ raised: 1, acked: 1, rectified: 1, resolved: 1, open: 0 });
    await receiver.close();
  }, 120_000);
});
