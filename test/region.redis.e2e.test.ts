import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClock } from './support/clock.ts';
import { startGateway, type TestGateway } from './support/gateway.ts';
import { startHaproxy } from './support/haproxy.ts';
import { startRedis, type RedisServer } from './support/redis.ts';

/**
 * Region mode's joined brokers (contract §8, issue 14): two gateway instances, each with its own
 * data directory, joined through a real redis-server by aedes' mqemitter-redis and
 * aedes-persistence-redis. Sites, devices and tokens are registered on both (shared state in
 * PostgreSQL is another part of the issue), so a device has one secret per instance.
 * What is shown: a publish on one instance reaches subscribers on the other (alert events,
 * commands), a device's message is ingested once, where it arrived; a QoS 1 persistent session
 * and the retained status follow a client to the other instance; the ACL holds there too; behind
 * HAProxy, a client whose instance stops (a clean stop, in this process) reconnects to the other
 * and its session goes on.
 */
const T0 = Date.parse('2026-11-02T08:00:00+08:00');
const REGULATOR = 'regulator-token-region-0123456789';

/** The next message on `topic` as text (an event, not a sleep). */
function nextOn(c: mqtt.MqttClient, topic: string): Promise<{ text: string; retain: boolean }> {
  return new Promise((resolve) => {
    const on = (t: string, payload: Buffer, packet: mqtt.IPublishPacket) => {
      if (t !== topic) return;
      c.off('message', on);
      resolve({ text: payload.toString(), retain: packet.retain });
    };
    c.on('message', on);
  });
}

const connectedOn = (g: TestGateway, clientId: string) => clientId in (g.gw.broker.aedes as unknown as { clients: Record<string, unknown> }).clients;

/** The first message `c` receives, whatever its topic. */
const firstMessage = (c: mqtt.MqttClient) => new Promise<{ topic: string; text: string }>((resolve) => c.once('message', (topic, m) => resolve({ topic, text: m.toString() })));

/**
 * Resolves when `g`'s broker has heard of `clientId`'s subscription (aedes-persistence's
 * `$SYS/sub/add` broadcast through Redis), so a publish on `g` finds it for the offline queue.
 */
function subscriptionKnownOn(g: TestGateway, clientId: string): Promise<void> {
  const mq = (g.gw.broker.aedes as unknown as { mq: { on(t: string, f: (p: { payload: Buffer }, done: () => void) => void): void; removeListener(t: string, f: unknown): void } }).mq;
  return new Promise((resolve) => {
    const on = (p: { payload: Buffer }, done: () => void) => {
      done();
      if ((JSON.parse(p.payload.toString()) as { clientId: string }).clientId !== clientId) return;
      mq.removeListener('$SYS/sub/add', on);
      resolve();
    };
    mq.on('$SYS/sub/add', on);
  });
}

describe('region mode: two instances\' brokers joined by Redis', () => {
  const clock = new TestClock(T0);
  let redis: RedisServer;
  let a: TestGateway;
  let b: TestGateway;
  const secrets: Record<'a' | 'b', Record<string, string>> = { a: {}, b: {} };
  const clients: mqtt.MqttClient[] = [];
  const connect = async (g: TestGateway, username: string, password: string, opts: mqtt.IClientOptions) => {
    const c = await mqtt.connectAsync(g.mqttUrl, { username, password, protocolVersion: 4, reconnectPeriod: 0, ...opts });
    clients.push(c);
    return c;
  };
  /** Connects with a listener on from the start: a queued message may come right behind the CONNACK. */
  const connectHearing = (g: TestGateway, username: string, password: string, opts: mqtt.IClientOptions) => {
    const client = mqtt.connect(g.mqttUrl, { username, password, protocolVersion: 4, reconnectPeriod: 0, ...opts });
    clients.push(client);
    const first = firstMessage(client);
    return new Promise<{ client: mqtt.MqttClient; first: typeof first; sessionPresent: boolean }>((resolve, reject) => {
      client.once('connect', (connack) => resolve({ client, first, sessionPresent: connack.sessionPresent }));
      client.once('error', reject);
    });
  };
  const device = (g: TestGateway, deviceId: string, clientId: string) => connect(g, deviceId, secrets[g === a ? 'a' : 'b'][deviceId]!, { clientId });
  const regulator = (g: TestGateway, opts: mqtt.IClientOptions) => connect(g, 'token', REGULATOR, opts);

  beforeAll(async () => {
    redis = await startRedis();
    const env = (id: string) => ({ SITEGATE_REDIS_URL: redis.url, SITEGATE_INSTANCE_ID: id });
    a = await startGateway(env('gw-a'), { now: clock.now, commandSweepMs: 0, alertTimerMs: 0 });
    b = await startGateway(env('gw-b'), { now: clock.now, commandSweepMs: 0, alertTimerMs: 0 });
    for (const [name, g] of [['a', a], ['b', b]] as const) {
      for (const id of ['WIND-1', 'FOG-1']) secrets[name][id] = await g.device('S1', id);
      g.gw.registry.createToken({ role: 'regulator', scope: { regions: ['3301'] }, label: 'bureau' }, { id: 'bureau', token: REGULATOR });
    }
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})));
    await a?.stop();
    await b?.stop();
    await redis?.stop();
  });

  it('an alert raised on B reaches a regulator on A; the gust is ingested once, on B', async () => {
    const tool = await regulator(a, { clientId: 'tool-alerts' });
    await tool.subscribeAsync('sites/S1/alerts', { qos: 1 });
    const opened = nextOn(tool, 'sites/S1/alerts');
    const wind = await device(b, 'WIND-1', 'wind-on-b');
    // A gust beyond the critical limit (13.8 m/s) opens a critical wind alert on B's checks.
    await wind.publishAsync('sites/S1/devices/WIND-1/telemetry', JSON.stringify({ id: 'gust-1', ts: clock.now(), metrics: { wind_speed_ms: 15.2 } }), { qos: 1 });
    expect(JSON.parse((await opened).text)).toMatchObject({ event: 'opened', siteId: 'S1', severity: 'critical' });
    // PUBACK came back: committed on B; A delivered the copy Redis brought it and ingested nothing.
    expect((await b.gw.ledger.readAfter(0, 1000)).filter((r) => r.msgId === 'gust-1')).toHaveLength(1);
    expect((await a.gw.ledger.readAfter(0, 1000)).filter((r) => r.msgId === 'gust-1')).toHaveLength(0);
  });

  it('a command created on B reaches its device connected to A, and only it', async () => {
    const fog = await device(a, 'FOG-1', 'fog-on-a');
    const wind = await device(a, 'WIND-1', 'wind-on-a');
    await fog.subscribeAsync('sites/S1/devices/FOG-1/commands', { qos: 1 });
    await wind.subscribeAsync('sites/S1/devices/WIND-1/commands', { qos: 1 });
    const windHears = firstMessage(wind);
    const got = nextOn(fog, 'sites/S1/devices/FOG-1/commands');
    const created = await b.api('POST', '/sites/S1/devices/FOG-1/commands', { action: 'on', params: { level: 2 }, ttlS: 300 });
    expect(created.status).toBe(201);
    expect(JSON.parse((await got).text)).toMatchObject({ commandId: created.json.commandId, action: 'on' });
    // WIND-1 hears its own command (created after FOG-1's), not FOG-1's.
    const own = await b.api('POST', '/sites/S1/devices/WIND-1/commands', { action: 'stop', ttlS: 300 });
    expect(await windHears).toMatchObject({ topic: 'sites/S1/devices/WIND-1/commands' });
    expect(JSON.parse((await windHears).text).commandId).toBe(own.json.commandId);
  });

  it('a message refused on B reaches no subscriber on A', async () => {
    const tool = await regulator(a, { clientId: 'tool-telemetry' });
    await tool.subscribeAsync('sites/S1/devices/WIND-1/telemetry', { qos: 1 });
    const first = firstMessage(tool);
    const wind = await device(b, 'WIND-1', 'wind-junk-on-b');
    // In order from one publisher to one subscriber (MQTT-4.6.0-5): the first message A's
    // subscriber sees tells whether the junk crossed over.
    await wind.publishAsync('sites/S1/devices/WIND-1/telemetry', '{"id":"junk-region",', { qos: 1, retain: true });
    await wind.publishAsync('sites/S1/devices/WIND-1/telemetry', JSON.stringify({ id: 'calm-1', ts: clock.now(), metrics: { wind_speed_ms: 2.1 } }), { qos: 1 });
    expect(JSON.parse((await first).text)).toMatchObject({ id: 'calm-1' });
  });

  it('a QoS 1 persistent session moves from A to B with what was queued meanwhile; the retained status is seen from B', async () => {
    const known = subscriptionKnownOn(b, 'bureau-tool');
    const tool = await regulator(a, { clientId: 'bureau-tool', clean: false });
    await tool.subscribeAsync('sites/S1/devices/+/status', { qos: 1 });
    await known;
    await tool.endAsync();

    // While it is away, a device on A publishes its retained status: queued for the session in Redis.
    const fog = await device(a, 'FOG-1', 'fog-status-on-a');
    await fog.publishAsync('sites/S1/devices/FOG-1/status', JSON.stringify({ state: 'online', ts: clock.now(), firmware: '3.0' }), { qos: 1, retain: true });

    // Another principal taking the client id on B gets neither the session's subscription nor its
    // queue: the first thing it hears is the answer to its own junk on its own errors topic.
    const thief = await connectHearing(b, 'WIND-1', secrets.b['WIND-1']!, { clientId: 'bureau-tool', clean: false });
    await thief.client.subscribeAsync('sites/S1/devices/WIND-1/errors', { qos: 1 });
    await thief.client.publishAsync('sites/S1/devices/WIND-1/telemetry', '{"id":"thief",', { qos: 1 });
    expect((await thief.first).topic).toBe('sites/S1/devices/WIND-1/errors');
    await thief.client.endAsync();

    // The session's owner comes back on B: its subscription is restored and the status published
    // while it was away is delivered.
    await fog.publishAsync('sites/S1/devices/FOG-1/status', JSON.stringify({ state: 'online', ts: clock.now() + 1000, batteryPct: 80 }), { qos: 1, retain: true });
    const back = await connectHearing(b, 'token', REGULATOR, { clientId: 'bureau-tool', clean: false });
    expect(back.sessionPresent).toBe(true);
    expect((await back.first).topic).toBe('sites/S1/devices/FOG-1/status');
    expect(JSON.parse((await back.first).text)).toMatchObject({ state: 'online', batteryPct: 80 });

    // A new subscriber on B gets the retained status a device published on A.
    const fresh = await regulator(b, { clientId: 'bureau-fresh' });
    const retained = nextOn(fresh, 'sites/S1/devices/FOG-1/status');
    await fresh.subscribeAsync('sites/S1/devices/FOG-1/status', { qos: 1 });
    const r = await retained;
    expect(r.retain).toBe(true);
    expect(JSON.parse(r.text)).toMatchObject({ state: 'online', batteryPct: 80 });
  });
  it('behind HAProxy: A stops, the client reconnects through the balancer to B and its session goes on', async () => {
    const lb = await startHaproxy([{ port: Number(new URL(a.mqttUrl).port) }, { port: Number(new URL(b.mqttUrl).port) }]);
    try {
      const tool = mqtt.connect(lb.url, { username: 'token', password: REGULATOR, protocolVersion: 4, clientId: 'bureau-lb', clean: false, reconnectPeriod: 100 });
      clients.push(tool);
      await new Promise<void>((resolve) => tool.once('connect', () => resolve()));
      expect(connectedOn(a, 'bureau-lb')).toBe(true); // A is HAProxy's first choice
      await tool.subscribeAsync('sites/S1/alerts', { qos: 1 });
      const moved = new Promise<{ sessionPresent: boolean }>((resolve) => tool.once('close', () => tool.once('connect', (c) => resolve(c))));
      await a.stop(); // A goes away; its clients' connections close
      expect((await moved).sessionPresent).toBe(true);
      expect(connectedOn(b, 'bureau-lb')).toBe(true);
      // The restored subscription hears an alert event B publishes.
      const heard = nextOn(tool, 'sites/S1/alerts');
      const wind = await device(b, 'WIND-1', 'wind-lb-on-b');
      clock.advance(60 * 60_000); // a new gust an hour later: a new alert
      await wind.publishAsync('sites/S1/devices/WIND-1/telemetry', JSON.stringify({ id: 'gust-lb', ts: clock.now(), metrics: { wind_speed_ms: 16.4 } }), { qos: 1 });
      expect(JSON.parse((await heard).text)).toMatchObject({ siteId: 'S1' });
    } finally {
      await lb.stop();
    }
  });
});
