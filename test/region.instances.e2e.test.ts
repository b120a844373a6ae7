import mqtt from 'mqtt';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { TestClock } from './support/clock.ts';
import { ADMIN_TOKEN, startGateway, type TestGateway } from './support/gateway.ts';
import { readEventsUntil } from './support/sse.ts';
import { startPostgres, type Postgres } from './support/postgres.ts';
import { startRedis, type RedisServer } from './support/redis.ts';
import { shardOf } from '../gateway/src/region/shards.ts';

/**
 * Region mode whole (contract §8, issue 14): two gateway instances on one real PostgreSQL (ledger
 * and state) with their brokers joined by a real Redis, in this process. What is shown: the
 * registry is one (a device registered through A connects to B with the secret A issued; a token
 * revoked on A stops working on B); the checks run on exactly one instance, which raises an alert
 * for a message that arrived at the other; when that instance stops, the other takes the checks
 * over at once and goes on from their cursor without raising anything twice. The kill -9 of an
 * instance under load is region.kill.e2e.test.ts.
 */
const T0 = Date.parse('2026-11-02T08:00:00+08:00');
const SITE = 'S-R';

describe('region mode: two instances on one PostgreSQL and Redis', () => {
  const clock = new TestClock(T0);
  let server: Postgres;
  let redis: RedisServer;
  let db: pg.Client;
  let a: TestGateway;
  let b: TestGateway;
  let secret: string;
  const clients: mqtt.MqttClient[] = [];
  const start = (id: string, url: string) => startGateway({
    SITEGATE_DATABASE_URL: url, SITEGATE_REDIS_URL: redis.url, SITEGATE_INSTANCE_ID: id, SITEGATE_REGION_LEASE_MS: '3000', SITEGATE_REGION_SHARDS: '4',
  }, { now: clock.now, commandSweepMs: 0, alertTimerMs: 0 }, undefined, { waitForChecks: false });
  const wind = async (g: TestGateway, clientId: string) => {
    const c = await mqtt.connectAsync(g.mqttUrl, { username: 'WIND-1', password: secret, clientId, protocolVersion: 4, reconnectPeriod: 0 });
    clients.push(c);
    return c;
  };
  const gust = (c: mqtt.MqttClient, id: string, speed: number) =>
    c.publishAsync(`sites/${SITE}/devices/WIND-1/telemetry`, JSON.stringify({ id, ts: clock.now(), metrics: { wind_speed_ms: speed } }), { qos: 1 });
  const windAlerts = async () => (await db.query<{ state: string }>("SELECT state FROM alerts WHERE kind LIKE 'hazard%' ORDER BY opened_at")).rows.map((r) => r.state);
  /** The instance running the checks of the site's shard, and the other. */
  const shardKey = `checks#${shardOf(SITE, 4)}`;
  const roles = () => {
    const holder = [a, b].find((g) => g.gw.region!.held().includes(shardKey));
    if (!holder) throw new Error(`no instance runs ${shardKey}`);
    return { holder, other: holder === a ? b : a };
  };

  beforeAll(async () => {
    [server, redis] = await Promise.all([startPostgres(), startRedis()]);
    const url = await server.createDatabase('region_instances');
    db = new pg.Client({ connectionString: url });
    await db.connect();
    a = await start('gw-a', url);
    b = await start('gw-b', url);
    secret = await a.device(SITE, 'WIND-1', 'sensor');
  }, 90_000);
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})));
    await a?.stop();
    await b?.stop();
    await db?.end();
    await Promise.all([server?.dispose(), redis?.stop()]);
  }, 30_000);

  it('shares out the duties: each shard\'s checks, the alert timers, the webhook outbox, linkage and alert events into the ledger each on exactly one instance, evenly', () => {
    const held = [a.gw.region!.held(), b.gw.region!.held()];
    expect([...held[0]!, ...held[1]!].sort()).toEqual(['alert-ledger', 'checks#0', 'checks#1', 'checks#2', 'checks#3', 'linkage', 'timers', 'webhooks']);
    expect(held.map((h) => h.length)).toEqual([4, 4]); // ceil(8 / 2) each
    // Both instances run checks: the sites are spread, each site's checks in one place.
    expect([a, b].filter((g) => g.gw.checks.state().running)).toHaveLength(2);
  });

  it('has one registry: a device registered through A connects to B; a token revoked on A fails on B', async () => {
    const c = await wind(b, 'wind-on-b');
    expect(c.connected).toBe(true);
    await c.endAsync();
    const token = (await a.api('POST', '/tokens', { role: 'regulator', scope: { regions: ['3301'] } })).json as { id: string; token: string };
    const asB = () => fetch(`${b.httpUrl}/api/v1/sites`, { headers: { authorization: `Bearer ${token.token}` } }).then((r) => r.status);
    expect(await asB()).toBe(200);
    expect((await a.api('DELETE', `/tokens/${token.id}`)).status).toBeLessThan(300);
    // B hears of it through PostgreSQL's NOTIFY and reloads: a round trip, not a restart.
    await vi.waitFor(async () => expect(await asB()).toBe(401), { timeout: 5_000, interval: 25 });
  });

  it('raises the alert for a message that arrived at the instance not running the site\'s checks, once, and that instance\'s live page shows it', async () => {
    const { holder, other } = roles();
    // A regulator's live page on the instance the gust arrives at, which does not run the site's checks.
    const live = await fetch(`${other.httpUrl}/api/v1/live?siteId=${SITE}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(live.status).toBe(200);
    const alertOnPage = readEventsUntil(live, (events) => events.some((e) => e.event === 'alert'));
    const c = await wind(other, 'wind-gusts');
    await gust(c, 'gust-1', 15.2); // beyond the critical limit (13.8 m/s)
    await vi.waitFor(async () => expect(await windAlerts()).toEqual(['open']), { timeout: 10_000, interval: 25 });
    await holder.gw.checks.idle();
    expect(await windAlerts()).toEqual(['open']);
    // Raised on the holder; the live page on the other instance shows it (the ledger in follow mode).
    expect((await alertOnPage).find((e) => e.event === 'alert')).toMatchObject({ data: { event: 'opened', siteId: SITE, severity: 'critical' } });
  });

  it('hands the site\'s checks over at once when their instance stops; the other goes on from the cursor and raises nothing twice', async () => {
    const { holder, other } = roles();
    const stoppedAt = performance.now();
    await holder.stop({ keepDataDir: true });
    await vi.waitFor(() => expect(other.gw.region!.held()).toContain(shardKey), { timeout: 10_000, interval: 10 });
    const handoverMs = performance.now() - stoppedAt;
    await other.gw.checks.idle();
    // Nothing raised again on the takeover (the same records are behind the cursor).
    expect(await windAlerts()).toEqual(['open']);
    // A calm hour later the wind alert clears, decided by the new holder.
    const c = await wind(other, 'wind-calm');
    for (let i = 0; i < 6; i++) {
      clock.advance(10 * 60_000);
      await gust(c, `calm-${i}`, 2.0);
    }
    await other.gw.checks.idle();
    await other.gw.checks.tick(clock.now());
    expect(await windAlerts()).toEqual(['cleared']);
    console.log(`checks handed over ${handoverMs.toFixed(0)} ms after the clean stop began`);
    expect(handoverMs).toBeLessThan(3000); // well under the lease time: a clean stop gives the lease back
    // The stopped instance is started again so afterAll can stop both.
    if (holder === a) a = await start('gw-a', server.url('region_instances'));
    else b = await start('gw-b', server.url('region_instances'));
  });
});
