import mqtt from 'mqtt';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ChildClock } from './support/clock.ts';
import { tempDir } from './support/gateway.ts';
import { startHaproxy, type Haproxy } from './support/haproxy.ts';
import { startPostgres, type Postgres } from './support/postgres.ts';
import { startRedis, type RedisServer } from './support/redis.ts';
import { restartableGateway, type RestartableGateway } from './support/restartable.ts';
import { shardOf } from '../gateway/src/region/shards.ts';

/**
 * Region mode's failover (contract §8, issue 14): two gateway processes on one real PostgreSQL
 * and Redis behind a real HAProxy (round robin), sharing a wall clock the test sets (libfaketime:
 * both instances' alert timers see the same "now"). Devices publish QoS 1 readings through
 * HAProxy without pause; a gust opens a critical alert and its first escalation fires; then the
 * instance running the checks is killed with SIGKILL in the middle of the load. Shown: its devices
 * reconnect through HAProxy to the other instance and their unacknowledged messages go again;
 * every acknowledged message is in PostgreSQL exactly once; the checks resume on the survivor
 * within the lease time (measured) from their cursor; the alert is not raised again by the gust
 * that follows, and its second escalation fires exactly once, by the survivor.
 */
const T0 = Date.parse('2026-11-02T08:00:00Z');
const SITE = 'S-K';
const LEASE_MS = 2000;
const SENSORS = 6;
const SHARDS = 4;

describe('region mode: kill -9 of the instance running a site\'s checks, under QoS 1 load', () => {
  const clock = new ChildClock(T0, tempDir('sitegate-clock-'));
  let server: Postgres;
  let redis: RedisServer;
  let db: pg.Client;
  let lb: Haproxy;
  const gws: RestartableGateway[] = [];
  const clients: mqtt.MqttClient[] = [];
  const acked = new Set<string>();
  let loading = true;

  /** The duties an instance runs now (its /readyz says), `[]` when it does not answer. */
  const duties = async (g: RestartableGateway) => {
    const r = await g.api('GET', '/readyz', undefined, { token: null }).catch(() => undefined);
    return (r?.json as { duties?: string[] } | undefined)?.duties ?? [];
  };
  const shardKey = `checks#${shardOf(SITE, SHARDS)}`;
  const holderOf = async () => {
    for (const g of gws) if ((await duties(g)).includes(shardKey)) return g;
    return undefined;
  };
  const hazardAlerts = async () => (await db.query<{ state: string; level: number; id: string }>("SELECT id, state, level::int AS level FROM alerts WHERE kind LIKE 'hazard%'")).rows;

  beforeAll(async () => {
    [server, redis] = await Promise.all([startPostgres(), startRedis()]);
    const url = await server.createDatabase('region_kill');
    db = new pg.Client({ connectionString: url });
    await db.connect();
    for (const id of ['gw-k1', 'gw-k2']) {
      gws.push(await restartableGateway(tempDir(`sitegate-${id}-`), {
        clock,
        env: {
          SITEGATE_DATABASE_URL: url, SITEGATE_REDIS_URL: redis.url, SITEGATE_INSTANCE_ID: id,
          SITEGATE_REGION_LEASE_MS: String(LEASE_MS), SITEGATE_REGION_SHARDS: String(SHARDS), SITEGATE_ALERT_TIMER_MS: '100',
        },
      }));
    }
    for (const g of gws) await g.start();
    lb = await startHaproxy(gws.map((g) => ({ port: g.mqttPort })), { balance: 'roundrobin' });
  }, 120_000);
  afterAll(async () => {
    loading = false;
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})));
    await lb?.stop();
    for (const g of gws) await g.stop();
    await db?.end();
    await Promise.all([server?.dispose(), redis?.stop()]);
  }, 30_000);

  it('loses no acknowledged message, counts none twice, moves the checks within the lease time, raises once and escalates once', async () => {
    const api = gws[0]!.api;
    expect((await api('PUT', `/sites/${SITE}`, { name: SITE, regionCode: '330106', settings: { escalationS: { critical: [60, 120] } } })).status).toBe(201);
    const secrets: Record<string, string> = {};
    let connects = 0;
    for (const id of ['WIND-1', ...Array.from({ length: SENSORS }, (_, i) => `ENV-${i}`)]) {
      const r = await api('PUT', `/sites/${SITE}/devices/${id}`, { kind: 'sensor' });
      expect(r.status).toBe(201);
      secrets[id] = r.json.secret;
    }
    const connect = (id: string) => {
      // Reconnects on its own (through HAProxy, to whichever instance is up) and sends again what was not acknowledged.
      const c = mqtt.connect(lb.url, { username: id, password: secrets[id], clientId: `${id}-c`, protocolVersion: 4, reconnectPeriod: 100, connectTimeout: 2000 });
      clients.push(c);
      c.on('connect', () => { connects++; });
      return new Promise<mqtt.MqttClient>((resolve) => c.once('connect', () => resolve(c)));
    };
    const sensors = await Promise.all(Array.from({ length: SENSORS }, (_, i) => connect(`ENV-${i}`)));
    const wind = await connect('WIND-1');

    // The load: each sensor keeps 10 QoS 1 readings in flight, until told to stop.
    let n = 0;
    const load = sensors.map(async (c, i) => {
      const inflight = new Set<Promise<void>>();
      while (loading) {
        const id = `ENV-${i}-${n++}`;
        const p = c.publishAsync(`sites/${SITE}/devices/ENV-${i}/telemetry`, JSON.stringify({ id, ts: clock.now, metrics: { pm10: 30 } }), { qos: 1 })
          .then(() => { acked.add(id); }).finally(() => inflight.delete(p));
        inflight.add(p);
        if (inflight.size >= 10) await Promise.race(inflight);
      }
      await Promise.all(inflight);
    });
    const gust = (id: string) => wind.publishAsync(`sites/${SITE}/devices/WIND-1/telemetry`, JSON.stringify({ id, ts: clock.now, metrics: { wind_speed_ms: 15.2 } }), { qos: 1 });

    // A gust beyond the critical limit: one alert; a minute later its first escalation.
    await gust('gust-1');
    await vi.waitFor(async () => expect(await hazardAlerts()).toMatchObject([{ state: 'open', level: 1 }]), { timeout: 15_000, interval: 50 });
    clock.advance(60_000);
    await vi.waitFor(async () => expect(await hazardAlerts()).toMatchObject([{ level: 2 }]), { timeout: 15_000, interval: 50 });

    // Kill the instance running the site's checks (its shard's), under load.
    const holder = await vi.waitFor(async () => {
      const h = await holderOf();
      if (!h) throw new Error('no instance says it runs the checks');
      return h;
    }, { timeout: 10_000, interval: 50 });
    const survivor = gws.find((g) => g !== holder)!;
    const ackedBeforeKill = acked.size;
    expect(ackedBeforeKill).toBeGreaterThan(0);
    const killedAt = performance.now();
    expect(await holder.kill9()).toBe('SIGKILL');
    await vi.waitFor(async () => expect(await duties(survivor)).toContain(shardKey), { timeout: 4 * LEASE_MS, interval: 20 });
    const takeoverMs = performance.now() - killedAt;

    // The load goes on through the survivor; another gust does not raise the alert again.
    await vi.waitFor(() => expect(acked.size).toBeGreaterThan(ackedBeforeKill + 200), { timeout: 20_000, interval: 50 });
    await gust('gust-2');
    // Its second escalation (120 s at level 2), by the survivor's timers.
    clock.advance(120_000);
    await vi.waitFor(async () => expect(await hazardAlerts()).toMatchObject([{ level: 3 }]), { timeout: 15_000, interval: 50 });
    loading = false;
    await Promise.all(load);

    // Round robin put some of the devices on the killed instance: they reconnected (to the survivor).
    expect(connects).toBeGreaterThan(SENSORS + 1);
    // Every acknowledged message is in PostgreSQL, once (the dedupe key is unique there, so a
    // resent message that was committed before the kill is a duplicate, not a second row).
    const ids = [...acked];
    const stored = await db.query<{ n: number; distinct: number }>(
      "SELECT count(*)::int AS n, count(DISTINCT msg_id)::int AS distinct FROM ledger_records WHERE kind = 'reading' AND msg_id = ANY($1)", [ids]);
    expect(stored.rows[0]).toEqual({ n: ids.length, distinct: ids.length });
    // One alert, two escalations recorded once each (the audit trail says who did what, in order).
    const alerts = await hazardAlerts();
    expect(alerts).toHaveLength(1);
    const trail = await db.query<{ type: string }>('SELECT type FROM audit_log WHERE subject = $1 ORDER BY seq', [`alert:${alerts[0]!.id}`]);
    expect(trail.rows.map((r) => r.type).filter((t) => t === 'alert.escalated')).toHaveLength(2);
    console.log(`kill -9 under load: ${ids.length} acknowledged readings (${ackedBeforeKill} before the kill), all stored once; ${connects - SENSORS - 1} reconnections; checks resumed on the survivor ${takeoverMs.toFixed(0)} ms after the kill (lease ${LEASE_MS} ms)`);
    // Within the lease time plus one renew period (leases.ts's bound), with room for a loaded
    // 2-core box to start the checks and answer /readyz.
    expect(takeoverMs).toBeLessThan(LEASE_MS + LEASE_MS / 3 + 1500);
  }, 120_000);
});
