import { execFile } from 'node:child_process';
import net from 'node:net';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './support/gateway.ts';
import { grantedCodes, nextMessage } from './support/mqtt.ts';
import { FrameReader, mqttStr, remainingLength } from './bench/mqttFrames.ts';

const run = promisify(execFile);
const NOW = Date.now();

function closed(c: mqtt.MqttClient): Promise<void> {
  return new Promise((resolve) => (c.connected ? c.once('close', () => resolve()) : resolve()));
}

const metric = (g: TestGateway, name: string, labels: Record<string, string>) =>
  g.gw.metrics.registry.getSingleMetric(name)!.get().then((m) => m.values.filter((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val)).reduce((a, v) => a + v.value, 0));

describe('MQTT ingest through the embedded broker (real aedes, real clients)', () => {
  let g: TestGateway;
  let secret: string;
  let otherSecret: string;

  beforeAll(async () => {
    g = await startGateway();
    secret = await g.device('S1', 'D1');
    otherSecret = await g.device('S2', 'D9', 'sensor', '511302');
  });
  afterAll(async () => g?.stop());

  it('accepts a QoS 1 reading only once it is in the ledger', async () => {
    const c = await g.connect('D1', secret);
    await c.publishAsync('sites/S1/devices/D1/telemetry', JSON.stringify({ id: 'r-1', ts: NOW - 60_000, metrics: { pm10: 132.5, noise_dba: 61 } }), { qos: 1 });
    // PUBACK came back: the record must already be readable from the ledger file.
    const stored = (await g.gw.ledger.readAfter(0, 100)).filter((r) => r.deviceId === 'D1' && r.msgId === 'r-1');
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({ siteId: 'S1', kind: 'reading', ts: NOW - 60_000, body: { metrics: { pm10: 132.5, noise_dba: 61 } } });
    expect(await metric(g, 'sitegate_messages_accepted_total', { kind: 'reading', via: 'mqtt' })).toBeGreaterThanOrEqual(1);
  });

  it('stores and counts a redelivered id once', async () => {
    const c = await g.connect('D1', secret);
    const before = await metric(g, 'sitegate_messages_duplicate_total', { kind: 'checkin' });
    const msg = JSON.stringify({ id: 'T17-000482', workerId: 'W0042', ts: new Date(NOW - 5000).toISOString(), direction: 'in', method: 'card' });
    for (let i = 0; i < 3; i++) await c.publishAsync('sites/S1/devices/D1/checkin', msg, { qos: 1 });
    expect((await g.gw.ledger.readAfter(0, 1000)).filter((r) => r.msgId === 'T17-000482')).toHaveLength(1);
    expect(await metric(g, 'sitegate_messages_duplicate_total', { kind: 'checkin' })).toBe(before + 2);
  });

  it('answers a rejected message on the device\'s errors topic and keeps the connection', async () => {
    const c = await g.connect('D1', secret);
    await c.subscribeAsync('sites/S1/devices/D1/errors', { qos: 1 });
    const err = nextMessage(c, 'sites/S1/devices/D1/errors');
    await c.publishAsync('sites/S1/devices/D1/telemetry', JSON.stringify({ id: 'bad-ts', ts: '2026-11-02T07:58:12', metrics: { pm10: 1 } }), { qos: 1 });
    expect(await err).toMatchObject({ ref: 'bad-ts', reason: 'ts_no_offset' });
    const err2 = nextMessage(c, 'sites/S1/devices/D1/errors');
    await c.publishAsync('sites/S1/devices/D1/telemetry', 'not json', { qos: 1 });
    expect(await err2).toMatchObject({ ref: 'sites/S1/devices/D1/telemetry', reason: 'invalid_json' });
    expect(c.connected).toBe(true);
    expect(await metric(g, 'sitegate_messages_rejected_total', { reason: 'ts_no_offset' })).toBeGreaterThanOrEqual(1);
    // …and a good message right after still goes through.
    await c.publishAsync('sites/S1/devices/D1/telemetry', JSON.stringify({ id: 'r-after', ts: NOW, metrics: { pm10: 2 } }), { qos: 1 });
    expect((await g.gw.ledger.readAfter(0, 1000)).some((r) => r.msgId === 'r-after')).toBe(true);
  });

  it('closes the connection of a device publishing under another device or site (MQTT-3.3.5-2), and counts it', async () => {
    for (const [topic, reason] of [['sites/S1/devices/D9/telemetry', 'wrong_device'], ['sites/S2/devices/D1/telemetry', 'wrong_site'], ['random/topic', 'topic_not_allowed']] as const) {
      const c = await g.connect('D1', secret);
      const before = await metric(g, 'sitegate_acl_refusals_total', { reason, action: 'publish' });
      const gone = closed(c);
      c.publish(topic, JSON.stringify({ id: 'x', ts: NOW, metrics: { pm10: 1 } }), { qos: 1 });
      await gone;
      expect(await metric(g, 'sitegate_acl_refusals_total', { reason, action: 'publish' })).toBe(before + 1);
    }
    expect((await g.gw.ledger.readAfter(0, 1000)).some((r) => r.msgId === 'x')).toBe(false);
  });

  it('refuses subscriptions outside the device\'s own errors topic', async () => {
    const c = await g.connect('D1', secret);
    expect(await grantedCodes(c, ['sites/S1/devices/D1/errors', 'sites/S1/devices/+/telemetry', 'sites/#', '#'])).toEqual([0, 128, 128, 128]);
  });

  it('refuses a wrong password, an unknown device and an empty password', async () => {
    for (const [user, pass] of [['D1', 'wrong'], ['nobody', secret], ['D1', '']]) {
      await expect(mqtt.connectAsync(g.mqttUrl, { username: user, password: pass, reconnectPeriod: 0, protocolVersion: 4 })).rejects.toThrow(/Bad username or password|Not authorized|bad user name or password/i);
    }
    expect(await metric(g, 'sitegate_auth_failures_total', { transport: 'mqtt' })).toBeGreaterThanOrEqual(3);
  });

  it('works with mosquitto_pub, a client nobody here wrote', async () => {
    const port = new URL(g.mqttUrl).port;
    await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, '-u', 'D1', '-P', secret, '-q', '1', '-t', 'sites/S1/devices/D1/telemetry',
      '-m', JSON.stringify({ id: 'mosq-1', ts: NOW, metrics: { pm2_5: 61 } })]);
    expect((await g.gw.ledger.readAfter(0, 1000)).filter((r) => r.msgId === 'mosq-1')).toHaveLength(1);
    const bad = await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, '-u', 'D1', '-P', 'nope', '-q', '1', '-t', 'sites/S1/devices/D1/telemetry', '-m', '{}']).catch((e) => e);
    expect(bad.code).not.toBe(0);
    expect(String(bad.stderr)).toMatch(/not authori[sz]ed|bad user name or password|refused/i);
  });

  it('accepts MQTT over WebSocket', async () => {
    const c = await mqtt.connectAsync(g.wsUrl, { username: 'D1', password: secret, reconnectPeriod: 0, protocolVersion: 4 });
    await c.publishAsync('sites/S1/devices/D1/telemetry', JSON.stringify({ id: 'ws-1', ts: NOW, metrics: { pm10: 3 } }), { qos: 1 });
    await c.endAsync();
    expect((await g.gw.ledger.readAfter(0, 1000)).filter((r) => r.msgId === 'ws-1')).toHaveLength(1);
  });

  it('stores the Last Will as an offline status when a device drops, and keeps the retained status', async () => {
    const will = { topic: 'sites/S1/devices/D1/status', payload: Buffer.from(JSON.stringify({ state: 'offline', ts: NOW + 1 })), qos: 1 as const, retain: true };
    const c = await g.connect('D1', secret, { will, clientId: 'will-test' });
    await c.publishAsync('sites/S1/devices/D1/status', JSON.stringify({ state: 'online', ts: NOW, firmware: '2.1' }), { qos: 1, retain: true });
    const committed = new Promise<void>((resolve) => {
      const off = g.gw.ledger.onCommitted((rs) => { if (rs.some((r) => r.kind === 'status' && (r.body as any).state === 'offline')) { off(); resolve(); } });
    });
    c.stream.destroy(); // an unclean disconnect: the broker publishes the will
    await committed;
    const st = await g.api('GET', '/sites/S1/status');
    expect(st.status).toBe(200);
    const d1 = st.json.devices.find((d: any) => d.deviceId === 'D1');
    expect(d1.status.state).toBe('offline');
  });

  it('lets a regulator token subscribe read-only to the sites of its region, nothing else', async () => {
    const tok = await g.api('POST', '/tokens', { role: 'regulator', scope: { regions: ['3301'] } });
    const reg = await mqtt.connectAsync(g.mqttUrl, { username: 'token', password: tok.json.token, reconnectPeriod: 0, protocolVersion: 4 });
    expect(await grantedCodes(reg, ['sites/S1/devices/+/telemetry', 'sites/S1/alerts', 'sites/S2/devices/+/telemetry', 'sites/+/alerts'])).toEqual([0, 0, 128, 128]);
    const got = nextMessage(reg, 'sites/S1/devices/D1/telemetry');
    const dev = await g.connect('D1', secret);
    await dev.publishAsync('sites/S1/devices/D1/telemetry', JSON.stringify({ id: 'live-1', ts: NOW, metrics: { pm10: 9 } }), { qos: 1 });
    expect(await got).toMatchObject({ id: 'live-1' });
    const gone = closed(reg);
    reg.publish('sites/S1/devices/D1/telemetry', JSON.stringify({ id: 'forged', ts: NOW, metrics: { pm10: 1 } }), { qos: 1 });
    await gone;
    expect((await g.gw.ledger.readAfter(0, 1000)).some((r) => r.msgId === 'forged')).toBe(false);
    await reg.endAsync(true).catch(() => {});
  });

  it('keeps a wholly rejected message from subscribers, even a retained one', async () => {
    const tok = await g.api('POST', '/tokens', { role: 'regulator', scope: { regions: ['3301'] } });
    const reg = await mqtt.connectAsync(g.mqttUrl, { username: 'token', password: tok.json.token, reconnectPeriod: 0, protocolVersion: 4 });
    await reg.subscribeAsync('sites/S1/devices/D1/telemetry', { qos: 1 });
    const first = new Promise<string>((resolve) => reg.once('message', (_t, m) => resolve(m.toString())));
    const dev = await g.connect('D1', secret);
    // Same publisher, same subscriber: delivered in order (MQTT-4.6.0-5), so the first message
    // the regulator sees after the junk tells whether the junk went through.
    await dev.publishAsync('sites/S1/devices/D1/telemetry', '{"id":"junk-fwd",', { qos: 1, retain: true });
    await dev.publishAsync('sites/S1/devices/D1/telemetry', JSON.stringify({ id: 'after-junk', ts: NOW, metrics: { pm10: 3 } }), { qos: 1 });
    expect(JSON.parse(await first)).toMatchObject({ id: 'after-junk' });
    await reg.endAsync(true);
  });

  it('sends the CONNACK first (MQTT-3.2.0-1) when a message for a restored session comes while the client connects, and then that message', async () => {
    const tok = await g.api('POST', '/tokens', { role: 'regulator', scope: { regions: ['3301'] } });
    const first = await mqtt.connectAsync(g.mqttUrl, { username: 'token', password: tok.json.token, clientId: 'connack-first', clean: false, reconnectPeriod: 0, protocolVersion: 4 });
    await first.subscribeAsync('sites/S1/devices/D1/telemetry', { qos: 1 });
    await first.endAsync();

    // A message published inside aedes' connect, after the session's subscriptions are restored
    // and before the CONNACK is written (its will step: the window that Redis widens in region mode).
    const aedes = g.gw.broker.aedes as unknown as { persistence: { delWill(c: { id: string }): Promise<unknown> }; publish(p: object, cb: () => void): void };
    const delWill = aedes.persistence.delWill.bind(aedes.persistence);
    const turn = () => new Promise((resolve) => setImmediate(resolve));
    aedes.persistence.delWill = async (client) => {
      if (client.id === 'connack-first') {
        const payload = Buffer.from(JSON.stringify({ id: 'during-connect', ts: NOW, metrics: { pm10: 4 } }));
        await new Promise<void>((resolve) => aedes.publish({ cmd: 'publish', topic: 'sites/S1/devices/D1/telemetry', payload, qos: 1, retain: false, dup: false }, resolve));
        for (let i = 0; i < 5; i++) await turn(); // the delivery's own turns: without the hold, its PUBLISH is written by now
      }
      return delWill(client);
    };
    try {
      // A raw client, so the order of the packets on the wire is what is seen (mqtt.js hangs on it).
      const sock = net.connect(Number(new URL(g.mqttUrl).port), '127.0.0.1');
      const types: number[] = [];
      const publishAfterConnack = new Promise<string>((resolve) => {
        const reader = new FrameReader((type, body) => {
          types.push(type);
          if (type === 3) resolve(body.subarray(4 + body.readUInt16BE(0)).toString()); // QoS 1: topic, packet id, payload
        });
        sock.on('data', (chunk) => reader.push(chunk));
      });
      const varHeader = Buffer.concat([mqttStr('MQTT'), Buffer.from([4, 0b1100_0000, 0, 60])]); // 3.1.1; username, password, clean session 0
      const body = Buffer.concat([varHeader, mqttStr('connack-first'), mqttStr('token'), mqttStr(tok.json.token)]);
      sock.write(Buffer.concat([Buffer.from([0x10, ...remainingLength(body.length)]), body]));
      expect(JSON.parse(await publishAfterConnack)).toMatchObject({ id: 'during-connect' });
      expect(types[0]).toBe(2); // CONNACK
      sock.destroy();
    } finally {
      aedes.persistence.delWill = delWill;
    }
  });

  it('does not let one device\'s bad messages slow another', async () => {
    const bad = await g.connect('D1', secret);
    const good = await g.connect('D9', otherSecret);
    const flood = Array.from({ length: 300 }, (_, i) => bad.publishAsync('sites/S1/devices/D1/telemetry', `{"id":"junk-${i}",`, { qos: 1 }));
    const goods = Array.from({ length: 100 }, (_, i) => good.publishAsync('sites/S2/devices/D9/telemetry', JSON.stringify({ id: `g-${i}`, ts: NOW, metrics: { pm10: i } }), { qos: 1 }));
    await Promise.all([...flood, ...goods]);
    expect((await g.gw.ledger.readAfter(0, 5000)).filter((r) => r.deviceId === 'D9' && r.msgId.startsWith('g-'))).toHaveLength(100);
    expect(bad.connected && good.connected).toBe(true);
  });
});

