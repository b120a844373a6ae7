import type mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AlertRecord } from '../gateway/src/alerts/alertStore.ts';
import { startGateway, type TestGateway } from './support/gateway.ts';

/**
 * `device.offline` through the whole gateway (real broker, ledger, check runner, alert store) with
 * a fake wall clock: Last Will, silence beyond the device's limit, and a replay of old data.
 */
const MIN = 60_000;
const T0 = Date.parse('2026-11-02T08:00:00+08:00');

describe('device.offline', () => {
  let g: TestGateway;
  let now = T0;
  const clock = { set: (t: number) => { now = t; }, advance: (ms: number) => { now += ms; } };
  const secrets: Record<string, string> = {};

  const offline = (deviceId: string): AlertRecord[] =>
    g.gw.alerts.list({ kind: 'device.offline', limit: 1000 }).items.filter((a) => a.subject.deviceId === deviceId);

  async function publish(c: mqtt.MqttClient, siteId: string, deviceId: string, ts: number, metrics: Record<string, number> = { pm10: 40 }): Promise<void> {
    await c.publishAsync(`sites/${siteId}/devices/${deviceId}/telemetry`, JSON.stringify({ id: `${deviceId}-${ts}`, ts, metrics }), { qos: 1 });
  }

  /** One reading over a short-lived connection, at the fake wall clock's `now` unless `ts` is given. */
  async function speak(siteId: string, deviceId: string, ts = now): Promise<void> {
    const c = await g.connect(deviceId, secrets[deviceId]!);
    await publish(c, siteId, deviceId, ts);
    await c.endAsync();
    await g.gw.checks.idle();
  }

  beforeAll(async () => {
    g = await startGateway({}, { now: () => now });
    for (const [deviceId, kind] of [['WILL-1', 'sensor'], ['QUIET-1', 'sensor'], ['QUIET-2', 'sensor'], ['SLOW-1', 'sensor'], ['CAM-1', 'camera'], ['OLD-1', 'sensor'], ['OLD-2', 'sensor']] as const) {
      secrets[deviceId] = await g.device('S1', deviceId, kind);
    }
    // SLOW-1 samples every 10 min: 3 × 10 min is longer than the sensor default.
    await g.api('PUT', '/sites/S1/devices/SLOW-1', { kind: 'sensor', intervalS: 600 });
    secrets['T-1'] = await g.device('S2', 'T-1', 'face_terminal');
    const site = await g.api('PUT', '/sites/S2', { name: 'S2', regionCode: '330106', settings: { offlineAfterS: { face_terminal: 300 } } });
    expect(site.status).toBeLessThan(300);
  });
  afterAll(async () => g?.stop());

  it('opens on a Last Will and clears when the device speaks again', async () => {
    clock.set(T0);
    const will = { topic: 'sites/S1/devices/WILL-1/status', payload: Buffer.from(JSON.stringify({ state: 'offline', ts: T0 })), qos: 1 as const, retain: true };
    const c = await g.connect('WILL-1', secrets['WILL-1']!, { will, clientId: 'will-1' });
    clock.advance(MIN);
    await publish(c, 'S1', 'WILL-1', now);
    const lastReading = now;
    const willStored = new Promise<void>((resolve) => {
      const off = g.gw.ledger.onCommitted((rs) => { if (rs.some((r) => r.deviceId === 'WILL-1' && r.kind === 'status')) { off(); resolve(); } });
    });
    c.stream.destroy(); // unclean: the broker publishes the will
    await willStored;
    await g.gw.checks.idle();

    const [alert] = offline('WILL-1');
    expect(alert).toMatchObject({ kind: 'device.offline', siteId: 'S1', state: 'open', subject: { deviceId: 'WILL-1' }, evidence: { reason: 'status' } });
    // The will was composed at connect (T0); the device spoke after that, so it opens at its last reading.
    expect(alert!.openedAt).toBe(lastReading);

    clock.advance(MIN);
    await speak('S1', 'WILL-1');
    expect(offline('WILL-1').map((a) => a.state)).toEqual(['cleared']);
  });

  it('opens for a live device silent beyond its kind\'s default, once, and clears when it speaks', async () => {
    clock.set(T0 + 10 * MIN);
    for (let i = 0; i < 6; i++, clock.advance(MIN)) await speak('S1', 'QUIET-1'); // a reading a minute: 3 × 1 min < 15 min
    clock.advance(-MIN);
    const heardAt = now;
    await g.gw.checks.tick(heardAt + 15 * MIN);
    expect(offline('QUIET-1')).toEqual([]);
    await g.gw.checks.tick(heardAt + 15 * MIN + 1000);
    await g.gw.checks.tick(heardAt + 40 * MIN);
    const alerts = offline('QUIET-1');
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ state: 'open', openedAt: heardAt + 15 * MIN, evidence: { reason: 'silence', limitS: 900, basis: 'sensor default' } });

    clock.set(heardAt + 41 * MIN);
    await speak('S1', 'QUIET-1');
    expect(offline('QUIET-1').map((a) => a.state)).toEqual(['cleared']);
  });

  it('waits 3 × the registered interval, and the site\'s offlineAfterS for its kind', async () => {
    clock.set(T0 + 60 * MIN);
    await speak('S1', 'SLOW-1');
    await speak('S2', 'T-1');
    const heardAt = now;
    await g.gw.checks.tick(heardAt + 6 * MIN);
    expect(offline('T-1')).toHaveLength(1); // face_terminal: 300 s by the site's setting
    expect(offline('T-1')[0]!.evidence).toMatchObject({ limitS: 300, basis: 'site offlineAfterS.face_terminal' });
    await g.gw.checks.tick(heardAt + 29 * MIN);
    expect(offline('SLOW-1')).toEqual([]);
    await g.gw.checks.tick(heardAt + 31 * MIN);
    expect(offline('SLOW-1')[0]).toMatchObject({ state: 'open', evidence: { limitS: 1800, basis: '3 × interval 10 min (registered)' } });
  });

  it('does not fire during a replay of old data for devices that keep sending; does once their data ends', async () => {
    // A month-old backlog: one reading a minute of event time (with a 2 h hole in it), delivered
    // one every 10 s of wall clock — 40 min of wall clock in all. OLD-2 stops a third of the way.
    const start = T0 - 30 * 24 * 60 * MIN;
    clock.set(T0 + 2 * 60 * MIN);
    const c1 = await g.connect('OLD-1', secrets['OLD-1']!);
    const c2 = await g.connect('OLD-2', secrets['OLD-2']!);
    let ts = start;
    let old2Last = 0;
    for (let i = 0; i < 240; i++) {
      ts += i === 100 ? 120 * MIN : MIN;
      await publish(c1, 'S1', 'OLD-1', ts);
      if (i < 80) { await publish(c2, 'S1', 'OLD-2', ts); old2Last = ts; }
      clock.advance(10_000);
      if (i % 6 === 0) await g.gw.checks.tick(now);
      if (i === 79 + 6 * 15 + 6) expect(offline('OLD-2')).toHaveLength(1); // 15 min of wall-clock silence after its data ended
    }
    await g.gw.checks.tick(now);
    expect(offline('OLD-1')).toEqual([]);
    expect(offline('OLD-2')[0]).toMatchObject({ state: 'open', openedAt: old2Last + 15 * MIN });

    // The replay ends: OLD-1 falls silent too, and goes offline 15 min of wall clock later, on its own time line.
    await c1.endAsync();
    await c2.endAsync();
    await g.gw.checks.tick(now + 14 * MIN);
    expect(offline('OLD-1')).toEqual([]);
    await g.gw.checks.tick(now + 16 * MIN);
    expect(offline('OLD-1')[0]).toMatchObject({ state: 'open', openedAt: ts + 15 * MIN });
  });

  it('keeps its state across a restart: no alert for the gateway\'s own downtime, clears an open one when the device speaks', async () => {
    clock.set(T0 + 5 * 60 * MIN);
    await speak('S1', 'QUIET-2');
    const open = offline('OLD-1').filter((a) => a.state === 'open');
    expect(open).toHaveLength(1);
    await g.stop({ keepDataDir: true });

    clock.advance(60 * MIN); // down for an hour
    g = await startGateway({}, { now: () => now }, g.dataDir);
    await g.gw.checks.tick(now + 5 * MIN);
    expect(offline('QUIET-2').filter((a) => a.state === 'open')).toEqual([]); // silence counts from the restart
    await g.gw.checks.tick(now + 16 * MIN);
    expect(offline('QUIET-2').filter((a) => a.state === 'open')).toHaveLength(1);
    expect(offline('OLD-1').filter((a) => a.state === 'open')).toHaveLength(1); // not raised twice

    clock.advance(20 * MIN);
    await speak('S1', 'OLD-1');
    expect(offline('OLD-1').map((a) => a.state)).toEqual(['cleared']);
  });
});
