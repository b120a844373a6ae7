import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Config, loadConfig } from '../gateway/src/config/loadConfig.ts';
import { TestClock } from './support/clock.ts';
import { ADMIN_TOKEN, freePort, httpApi, startGateway, type TestGateway } from './support/gateway.ts';
import { HAPROXY_BIN, haproxyStats, runHaproxy, sessionsPerServer, type HaproxyProcess } from './support/haproxy.ts';
import { startRedis, type RedisServer } from './support/redis.ts';

/**
 * docker-compose.region.yml (region mode, contract §8, issue 14) by its parts, as deploy.test.ts
 * does for the single-site compose file (no Docker engine on this machine):
 * - the compose file itself: every gateway's environment is a configuration the gateway accepts
 *   (names from schemas/src/config.ts, values resolved from a stand-in .env), three distinct
 *   instance ids, ports and volumes line up (keys/ and evidence/ shared by every gateway), secrets
 *   have no defaults, SITEGATE_DATABASE_URL points at the compose PostgreSQL;
 * - the shipped deploy/region/haproxy.cfg, checked by the real `haproxy -c` with the compose
 *   file's environment for HAProxy, then run as it is (only its "${VAR}"s differ: loopback
 *   addresses instead of service names) in front of two real gateways joined by a real
 *   redis-server with a password, as the compose file runs it. MQTT, MQTT over WebSocket and
 *   HTTP go through it; HAProxy's /readyz checks mark the third, never started, gateway down,
 *   then the one the test stops, and new connections go to the one left.
 * Not shown here: the images, Docker's DNS and networks, InfluxDB 2.7 and Grafana (their
 * provisioning is shared with docker-compose.yml, checked in deploy.test.ts). The gateways on
 * PostgreSQL run in region.pg.e2e.test.ts.
 */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const COMPOSE_TEXT = fs.readFileSync(path.join(ROOT, 'docker-compose.region.yml'), 'utf8');
// `<<: *gateway` (YAML merge keys, which docker compose reads) needs `merge`.
const compose = parse(COMPOSE_TEXT, { merge: true });
const HAPROXY_CFG = path.join(ROOT, 'deploy/region/haproxy.cfg');
const GATEWAYS = ['gw1', 'gw2', 'gw3'] as const;

/** A stand-in .env: the names deploy/region/env.example lists, with values for a test. */
const envExample = fs.readFileSync(path.join(ROOT, 'deploy/region/env.example'), 'utf8')
  .split('\n').filter((l) => /^[A-Z_]+=/.test(l)).map((l) => l.split('=')[0]!);
const DOT_ENV: Record<string, string> = Object.fromEntries(envExample.map((k) => [k, k === 'SITEGATE_ADMIN_TOKEN' ? ADMIN_TOKEN : `test-${k.toLowerCase().replace(/_/g, '-')}`]));

/** Compose's interpolation as this file uses it: `${VAR:?message}` only (a missing VAR stops compose). */
function interpolate(value: unknown, env = DOT_ENV): string {
  return String(value).replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(:\?[^}]*)?\}/g, (_m, name: string) => {
    const v = env[name];
    if (v === undefined || v === '') throw new Error(`compose would stop: ${name} is unset`);
    return v;
  });
}

describe('docker-compose.region.yml', () => {
  const services = compose.services as Record<string, any>;
  const gwEnv = (name: string) => Object.fromEntries(Object.entries(services[name].environment as Record<string, string>).map(([k, v]) => [k, interpolate(v)]));

  it('has the services of region mode', () => {
    expect(Object.keys(services).sort()).toEqual([...GATEWAYS, 'grafana', 'haproxy', 'influxdb', 'postgres', 'redis'].sort());
    expect(services.postgres.image).toMatch(/^postgres:15(\.|$)/);
    expect(services.influxdb.image).toMatch(/^influxdb:2\.7/);
    // The same major.minor as Debian's haproxy that runs the shipped file below.
    const v = spawnSync(HAPROXY_BIN, ['-v'], { encoding: 'utf8' }).stdout.match(/version (\d+\.\d+)/)![1];
    expect(services.haproxy.image).toBe(`haproxy:${v}`);
  });

  it('gives every gateway a configuration the gateway accepts: names it knows, its own instance id and volume, the Redis and InfluxDB services', () => {
    const known = new Set(Object.keys(Config.shape));
    const ids = new Set<string>();
    const volumes = new Set<string>();
    for (const name of GATEWAYS) {
      const g = services[name];
      for (const key of Object.keys(g.environment)) expect(known.has(key), `${name}: ${key}`).toBe(true);
      const config = loadConfig(gwEnv(name));
      ids.add(config.SITEGATE_INSTANCE_ID!);
      expect(config.SITEGATE_INSTANCE_ID).toBe(name);
      expect(g.hostname).toBe(name);
      const redis = new URL(config.SITEGATE_REDIS_URL!);
      expect([redis.hostname, redis.port, decodeURIComponent(redis.password)]).toEqual(['redis', '6379', DOT_ENV.REDIS_PASSWORD]);
      expect(new URL(config.SITEGATE_INFLUX_URL!).hostname).toBe('influxdb');
      expect(config.SITEGATE_INFLUX_ORG).toBe(services.influxdb.environment.DOCKER_INFLUXDB_INIT_ORG);
      expect(config.SITEGATE_INFLUX_BUCKET).toBe(services.influxdb.environment.DOCKER_INFLUXDB_INIT_BUCKET);
      expect(config.SITEGATE_INFLUX_TOKEN).toBe(interpolate(services.influxdb.environment.DOCKER_INFLUXDB_INIT_ADMIN_TOKEN));
      expect(config.SITEGATE_ADMIN_TOKEN).toBe(ADMIN_TOKEN);
      // Reached only through HAProxy; ledger and state in the compose PostgreSQL; a data directory
      // of its own, with keys/ (the card key) and evidence/ (photos) shared by every gateway.
      expect(g.ports).toBeUndefined();
      expect(new URL(config.SITEGATE_DATABASE_URL!).hostname).toBe('postgres');
      expect(g.volumes).toEqual([`${name}-data:${config.SITEGATE_DATA_DIR}`, `shared-keys:${config.SITEGATE_DATA_DIR}/keys`, `shared-evidence:${config.SITEGATE_DATA_DIR}/evidence`]);
      volumes.add(`${name}-data`);
      for (const [dep, { condition }] of Object.entries(g.depends_on as Record<string, { condition: string }>)) {
        expect(condition).toBe('service_healthy');
        expect(services[dep].healthcheck, dep).toBeDefined();
      }
    }
    expect(ids.size).toBe(3);
    expect(volumes.size).toBe(3);
    for (const v of [...volumes, 'shared-keys', 'shared-evidence', 'redis-data', 'postgres-data', 'influxdb-data', 'grafana-data']) expect(Object.keys(compose.volumes)).toContain(v);
  });

  it('points SITEGATE_DATABASE_URL at the compose PostgreSQL, with its user, password and database', () => {
    const url = new URL(loadConfig(gwEnv('gw1')).SITEGATE_DATABASE_URL!);
    const pgEnv = services.postgres.environment;
    expect([url.protocol, url.hostname, url.port, url.username, decodeURIComponent(url.password), url.pathname])
      .toEqual(['postgres:', 'postgres', '5432', pgEnv.POSTGRES_USER, interpolate(pgEnv.POSTGRES_PASSWORD), `/${pgEnv.POSTGRES_DB}`]);
  });

  it('takes every secret from .env with no default (compose stops while one is unset), each listed in deploy/region/env.example', () => {
    // Comments are not interpolated.
    const live = COMPOSE_TEXT.split('\n').filter((l) => !/^\s*#/.test(l)).join('\n');
    const refs = [...live.matchAll(/\$\{([^}]*)\}/g)].map((m) => m[1]!);
    expect(refs.length).toBeGreaterThan(0);
    for (const ref of refs) expect(ref, `\${${ref}}`).toMatch(/^[A-Z_]+:\?./);
    expect(new Set(refs.map((r) => r.split(':')[0]))).toEqual(new Set(envExample));
    expect(() => interpolate(services.gw1.environment.SITEGATE_ADMIN_TOKEN, {})).toThrow(/SITEGATE_ADMIN_TOKEN is unset/);
    expect(fs.readFileSync(path.join(ROOT, '.gitignore'), 'utf8').split('\n')).toContain('.env');
    expect(fs.readFileSync(path.join(ROOT, '.dockerignore'), 'utf8').split('\n')).toContain('.env');
  });

  it('runs Redis with its password, an append-only file on a volume and no eviction; PostgreSQL 15 on a volume with pg_isready', () => {
    const r = services.redis;
    const cmd = (r.command as string[]).map((a) => interpolate(a));
    expect(cmd[cmd.indexOf('--requirepass') + 1]).toBe(DOT_ENV.REDIS_PASSWORD);
    expect(cmd[cmd.indexOf('--appendonly') + 1]).toBe('yes');
    expect(cmd[cmd.indexOf('--maxmemory-policy') + 1]).toBe('noeviction');
    expect(interpolate(r.environment.REDISCLI_AUTH)).toBe(DOT_ENV.REDIS_PASSWORD); // the healthcheck's redis-cli
    expect(r.volumes).toEqual(['redis-data:/data']);
    expect(r.ports).toBeUndefined();
    const p = services.postgres;
    expect(p.volumes).toEqual(['postgres-data:/var/lib/postgresql/data']);
    expect(p.healthcheck.test).toEqual(['CMD', 'pg_isready', '-U', p.environment.POSTGRES_USER, '-d', p.environment.POSTGRES_DB]);
    expect(p.ports).toBeUndefined();
  });

  it('gives HAProxy the shipped file and an environment naming every "${VAR}" it reads, pointing at the gateways\' services and ports', () => {
    const h = services.haproxy;
    expect(h.volumes).toEqual(['./deploy/region/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro']);
    const cfg = fs.readFileSync(HAPROXY_CFG, 'utf8').split('\n').filter((l) => !/^\s*#/.test(l)).join('\n');
    const read = new Set([...cfg.matchAll(/\$\{([A-Z0-9_]+)\}/g)].map((m) => m[1]!));
    expect(new Set(Object.keys(h.environment))).toEqual(read);
    const gw = gwEnv('gw1');
    expect([h.environment.GW_MQTT_PORT, h.environment.GW_MQTT_WS_PORT, h.environment.GW_HTTP_PORT]).toEqual([gw.SITEGATE_MQTT_PORT, gw.SITEGATE_MQTT_WS_PORT, gw.SITEGATE_HTTP_PORT]);
    expect([h.environment.GW1_HOST, h.environment.GW2_HOST, h.environment.GW3_HOST]).toEqual([...GATEWAYS]);
    // Published: what HAProxy binds, on the same ports as a single gateway; its stats on loopback.
    const published = (h.ports as string[]).map((p) => p.split(':'));
    for (const bind of ['LB_MQTT_BIND', 'LB_MQTT_WS_BIND', 'LB_HTTP_BIND']) {
      const port = h.environment[bind].split(':').at(-1);
      expect(published, bind).toContainEqual([port, port]);
    }
    expect(published).toContainEqual(['127.0.0.1', '8404', h.environment.LB_STATS_BIND.split(':').at(-1)]);
    expect(h.depends_on).toEqual([...GATEWAYS]);
  });

  it('provisions Grafana as docker-compose.yml does, with an admin password from .env', () => {
    const single = parse(fs.readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8')).services.grafana;
    const g = services.grafana;
    expect(g.image).toBe(single.image);
    expect(g.volumes).toEqual(single.volumes);
    expect(interpolate(g.environment.INFLUX_TOKEN)).toBe(DOT_ENV.INFLUX_TOKEN);
    expect(interpolate(g.environment.GF_SECURITY_ADMIN_PASSWORD)).toBe(DOT_ENV.GRAFANA_ADMIN_PASSWORD);
  });
});

describe('deploy/region/haproxy.cfg', () => {
  it('passes `haproxy -c` with the compose file\'s environment (the only warnings: the service names do not resolve outside Docker)', () => {
    const r = spawnSync(HAPROXY_BIN, ['-c', '-f', HAPROXY_CFG], { encoding: 'utf8', env: { PATH: process.env.PATH, ...compose.services.haproxy.environment } });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout + r.stderr).toContain('Configuration file is valid');
    const warnings = (r.stdout + r.stderr).split('\n').filter((l) => l.includes('[WARNING]'));
    for (const w of warnings) expect(w).toMatch(/could not resolve address 'gw[123]'/);
  });
});

// ---- the shipped haproxy.cfg run in front of real gateways ----

const T0 = Date.parse('2026-11-02T08:00:00+08:00');
const REGULATOR = 'regulator-token-region-lb-0123456789';
/** Each gateway on a loopback address of its own, so both listen on the same ports, as gw1..gw3 do in compose. */
const HOSTS = { gw1: '127.0.0.2', gw2: '127.0.0.3', gw3: '127.0.0.4' } as const;

describe('deploy/region/haproxy.cfg in front of two gateways joined by Redis', () => {
  const clock = new TestClock(T0);
  let redis: RedisServer;
  let lb: HaproxyProcess;
  const gws: Partial<Record<'gw1' | 'gw2', TestGateway>> = {};
  const secrets: Record<string, string> = {};
  const clients: mqtt.MqttClient[] = [];
  let ports: { mqtt: number; ws: number; http: number; stats: number; gwMqtt: number; gwWs: number; gwHttp: number };

  const stats = () => haproxyStats(ports.stats);
  const serverStatus = async () => Object.fromEntries((await stats()).filter((r) => r.pxname.startsWith('gw_') && /^gw\d$/.test(r.svname)).map((r) => [`${r.pxname}/${r.svname}`, r.status]));
  /** Polls HAProxy's stats (bounded) until every backend shows these servers in these states. */
  const until = async (want: Record<string, 'UP' | 'DOWN'>) => {
    const expected = Object.fromEntries(['gw_mqtt', 'gw_mqtt_ws', 'gw_http'].flatMap((b) => Object.entries(want).map(([s, st]) => [`${b}/${s}`, st])));
    const deadline = performance.now() + 10_000;
    for (;;) {
      const now = await serverStatus();
      const seen = Object.fromEntries(Object.keys(expected).map((k) => [k, now[k]?.split(' ')[0]]));
      if (JSON.stringify(seen) === JSON.stringify(expected) || performance.now() > deadline) return seen;
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const sessionsTo = (backend: string) => sessionsPerServer(ports.stats, backend);
  const onInstance = (clientId: string) => (Object.keys(gws) as ('gw1' | 'gw2')[]).filter((n) => clientId in (gws[n]!.gw.broker.aedes as unknown as { clients: Record<string, unknown> }).clients);
  const tool = async (url: string, clientId: string) => {
    const c = await mqtt.connectAsync(url, { username: 'token', password: REGULATOR, clientId, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000 });
    clients.push(c);
    return c;
  };
  const nextReading = (c: mqtt.MqttClient) => new Promise<{ id: string }>((resolve) => c.once('message', (_t, m) => resolve(JSON.parse(m.toString()))));
  const lbApi = () => httpApi(`http://127.0.0.1:${ports.http}`);
  /** GET through HAProxy on a connection of its own (fetch would keep one alive, and a connection is balanced once). */
  const getOnce = (p: string) => new Promise<number>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: ports.http, path: p, agent: false }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode!)); }).on('error', reject);
  });

  /** The device on `name`, connected to that instance directly (its secret is that instance's: no shared state yet). */
  const publishOn = async (name: 'gw1' | 'gw2', id: string) => {
    const url = `mqtt://${HOSTS[name]}:${ports.gwMqtt}`;
    const dev = await mqtt.connectAsync(url, { username: 'ENV-1', password: secrets[name]!, clientId: `env-1-${id}`, protocolVersion: 4, reconnectPeriod: 0 });
    clients.push(dev);
    await dev.publishAsync('sites/S1/devices/ENV-1/telemetry', JSON.stringify({ id, ts: clock.now(), metrics: { pm10: 40 } }), { qos: 1 });
    await dev.endAsync();
  };

  beforeAll(async () => {
    // As the compose file runs Redis: with a password, which the gateways' redis:// URL carries.
    redis = await startRedis({ password: 'test-redis-password-0123' });
    for (let attempt = 1; ; attempt++) {
      // Free on 127.0.0.1 right now; each gateway binds them on its own address.
      ports = { mqtt: await freePort(), ws: await freePort(), http: await freePort(), stats: await freePort(), gwMqtt: await freePort(), gwWs: await freePort(), gwHttp: await freePort() };
      try {
        for (const name of ['gw1', 'gw2'] as const) {
          gws[name] = await startGateway({
            SITEGATE_HTTP_HOST: HOSTS[name], SITEGATE_MQTT_HOST: HOSTS[name],
            SITEGATE_HTTP_PORT: String(ports.gwHttp), SITEGATE_MQTT_PORT: String(ports.gwMqtt), SITEGATE_MQTT_WS_PORT: String(ports.gwWs),
            SITEGATE_REDIS_URL: redis.url, SITEGATE_INSTANCE_ID: name,
          }, { now: clock.now, commandSweepMs: 0, alertTimerMs: 0 });
        }
        break;
      } catch (e) {
        await Promise.all(Object.values(gws).map((g) => g.stop()));
        for (const k of Object.keys(gws)) delete gws[k as 'gw1'];
        if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 3) throw e;
      }
    }
    // Registered on each instance (each has its own registry until the state on PostgreSQL lands).
    for (const name of ['gw1', 'gw2'] as const) {
      const api = httpApi(`http://${HOSTS[name]}:${ports.gwHttp}`);
      expect((await api('PUT', '/sites/S1', { name: 'S1', regionCode: '330106' })).status).toBeLessThan(300);
      const d = await api('PUT', '/sites/S1/devices/ENV-1', { kind: 'sensor' });
      expect(d.status).toBe(201);
      secrets[name] = d.json.secret;
      gws[name]!.gw.registry.createToken({ role: 'regulator', scope: { regions: ['3301'] }, label: 'bureau' }, { id: 'bureau', token: REGULATOR });
    }
    lb = await runHaproxy(HAPROXY_CFG, [ports.mqtt, ports.ws, ports.http, ports.stats], {
      LB_MQTT_BIND: `127.0.0.1:${ports.mqtt}`, LB_MQTT_WS_BIND: `127.0.0.1:${ports.ws}`, LB_HTTP_BIND: `127.0.0.1:${ports.http}`, LB_STATS_BIND: `127.0.0.1:${ports.stats}`,
      LB_CHECK_INTER: '200ms', LB_MAXCONN: '1000', // this box's file-descriptor limit is below 2 × 60,000
      GW1_HOST: HOSTS.gw1, GW2_HOST: HOSTS.gw2, GW3_HOST: HOSTS.gw3, // gw3: nothing listens there
      GW_MQTT_PORT: String(ports.gwMqtt), GW_MQTT_WS_PORT: String(ports.gwWs), GW_HTTP_PORT: String(ports.gwHttp),
    });
  }, 30_000);

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})));
    // The gateways hear of those closes through HAProxy a moment later. Stopping a region-mode
    // gateway while clients are still connected to it can leave an unhandled rejection behind
    // (aedes publishes its $SYS disconnect notices through mqemitter-redis after that emitter is
    // closed: "Connection is closed"; seen here about one run in five, reported with issue 14), so
    // the stop waits until they are gone. The stop of gw1 in the test above, with clients on it,
    // has not shown it.
    for (const g of Object.values(gws)) {
      const deadline = performance.now() + 5000;
      while (g.gw.broker.aedes.connectedClients > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    }
    await lb?.stop();
    for (const g of Object.values(gws)) await g.stop();
    await redis?.stop();
  });

  it('checks /readyz on each gateway: gw1 and gw2 up, gw3 (never started) down, in every backend', async () => {
    expect(await until({ gw1: 'UP', gw2: 'UP', gw3: 'DOWN' }), lb.output()).toEqual(
      Object.fromEntries(['gw_mqtt', 'gw_mqtt_ws', 'gw_http'].flatMap((b) => [[`${b}/gw1`, 'UP'], [`${b}/gw2`, 'UP'], [`${b}/gw3`, 'DOWN']])));
    // Its Prometheus exporter answers with the servers' states.
    const prom = await (await fetch(`http://127.0.0.1:${ports.stats}/metrics`)).text();
    expect(prom).toMatch(/haproxy_server_status\{proxy="gw_mqtt",server="gw3",state="DOWN"\} 1/);
  });

  it('HTTP through HAProxy: /healthz and an admin API call answer, from both instances in turn', async () => {
    const before = await sessionsTo('gw_http');
    for (let i = 0; i < 4; i++) expect(await getOnce('/healthz')).toBe(200);
    const sites = await lbApi()('GET', '/sites', undefined, { token: ADMIN_TOKEN });
    expect(sites.status).toBe(200);
    const after = await sessionsTo('gw_http');
    // roundrobin: the four /healthz connections two and two (the API call went to one of them).
    expect([after.gw1! - before.gw1!, after.gw2! - before.gw2!].sort()).toEqual([2, 3]);
    expect(after.gw3).toBe(before.gw3);
  });

  it('MQTT and MQTT over WebSocket through HAProxy: connections spread over both instances, and a reading ingested on gw1 reaches all of them through Redis', async () => {
    const a = await tool(`mqtt://127.0.0.1:${ports.mqtt}`, 'tool-a');
    const b = await tool(`mqtt://127.0.0.1:${ports.mqtt}`, 'tool-b');
    const w = await tool(`ws://127.0.0.1:${ports.ws}`, 'tool-ws');
    // leastconn: the second connection goes to the instance the first did not.
    expect([...onInstance('tool-a'), ...onInstance('tool-b')].sort()).toEqual(['gw1', 'gw2']);
    expect(onInstance('tool-ws')).toHaveLength(1);
    for (const c of [a, b, w]) await c.subscribeAsync('sites/S1/devices/+/telemetry', { qos: 1 });
    const heard = [a, b, w].map(nextReading);
    await publishOn('gw1', 'r-1');
    for (const h of heard) expect(await h).toMatchObject({ id: 'r-1' });
  });

  it('a stopped gateway is marked down, its clients are let go, and new connections and requests go to the other', async () => {
    const onGw1 = clients.filter((c) => c.connected && onInstance(c.options.clientId!).includes('gw1'));
    expect(onGw1.length).toBeGreaterThan(0);
    const closed = onGw1.map((c) => new Promise<void>((r) => c.once('close', () => r())));
    await gws.gw1!.stop(); // a clean stop: /readyz answers 503 while it drains, then nothing listens
    delete gws.gw1;
    await Promise.all(closed);
    expect(await until({ gw1: 'DOWN', gw2: 'UP', gw3: 'DOWN' }), lb.output()).toEqual(
      Object.fromEntries(['gw_mqtt', 'gw_mqtt_ws', 'gw_http'].flatMap((b) => [[`${b}/gw1`, 'DOWN'], [`${b}/gw2`, 'UP'], [`${b}/gw3`, 'DOWN']])));

    const before = await sessionsTo('gw_http');
    for (let i = 0; i < 3; i++) expect(await getOnce('/readyz')).toBe(200);
    const after = await sessionsTo('gw_http');
    expect([after.gw1! - before.gw1!, after.gw2! - before.gw2!]).toEqual([0, 3]);

    const back = [await tool(`mqtt://127.0.0.1:${ports.mqtt}`, 'tool-a'), await tool(`mqtt://127.0.0.1:${ports.mqtt}`, 'tool-c'), await tool(`ws://127.0.0.1:${ports.ws}`, 'tool-ws2')];
    for (const id of ['tool-a', 'tool-c', 'tool-ws2']) expect(onInstance(id)).toEqual(['gw2']);
    for (const c of back) await c.subscribeAsync('sites/S1/devices/+/telemetry', { qos: 1 });
    const heard = back.map(nextReading);
    await publishOn('gw2', 'r-2');
    for (const h of heard) expect(await h).toMatchObject({ id: 'r-2' });
  });
});
