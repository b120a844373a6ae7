import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { HazardCheck } from '../gateway/src/checks/hazard/hazardCheck.ts';
import { freePort, httpApi, startGateway, tempDir, type TestGateway } from './support/gateway.ts';
import { haproxyStats, runHaproxy, sessionsPerServer, type HaproxyProcess } from './support/haproxy.ts';
import {
  attendance, expectHazardFindings, expectKeyStaffFindings, expectPayrollAccepted, expectSiteStatus, expectStoredOnce, expectWageAlerts, expectWageFindings, hazardFindings,
  passWageDueDate, wageAlerts,
} from './support/monthExpectations.ts';
import { startPostgres, type Postgres } from './support/postgres.ts';
import { startRedis, type RedisServer } from './support/redis.ts';
import { allAlerts, loadScenario, registerScenario, replayScenario, type ListedAlert, type ReplayResult, type Scenario } from './support/scenario.ts';
import { settled } from './support/settle.ts';

/**
 * Region mode on the public month (issue 14, contract §8: "three instances behind HAProxy replay
 * the public month: exactly the results of one instance"). Three gateways in this process on one
 * real PostgreSQL and one real Redis, behind the shipped deploy/region/haproxy.cfg run by Debian's
 * HAProxy (leastconn for MQTT, round robin for HTTP, /readyz health checks), each gateway on a
 * loopback address of its own as gw1..gw3 are in docker-compose.region.yml, with keys/ and
 * evidence/ shared as the compose volumes share them. The month is registered and replayed through
 * HAProxy only, faces enrolled; the results are checked with the very expectations of the
 * single-instance month tests (test/support/monthExpectations.ts), plus what only a region can get
 * wrong: the traffic really spread over the three, and no alert raised twice in PostgreSQL.
 */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const HAPROXY_CFG = path.join(ROOT, 'deploy/region/haproxy.cfg');
const NAMES = ['gw1', 'gw2', 'gw3'] as const;
type Name = typeof NAMES[number];
const HOSTS: Record<Name, string> = { gw1: '127.0.0.2', gw2: '127.0.0.3', gw3: '127.0.0.4' };

/** Shards of the sites' checks: more than instances, so that each instance runs some. */
const SHARDS = 4;

describe('region mode: three instances behind HAProxy replay the public month', () => {
  let server: Postgres;
  let redis: RedisServer;
  let db: pg.Client;
  let lb: HaproxyProcess;
  const gws = {} as Record<Name, TestGateway>;
  const shared = tempDir('sitegate-region-shared-');
  let ports: { mqtt: number; ws: number; http: number; stats: number; gwMqtt: number; gwWs: number; gwHttp: number };
  let s: Scenario;
  let replay: ReplayResult;
  let alerts: ListedAlert[];
  let att: Record<string, any>;
  /** MQTT connections each instance accepted during the replay. */
  const connections: Record<Name, string[]> = { gw1: [], gw2: [], gw3: [] };
  /** The instances that ran checks (of some shard), sampled through the replay. */
  const holders = new Set<Name>();
  /** Samples at which one duty (a shard's checks, webhooks …) ran on more than one instance at once (must stay empty). */
  const overlaps: string[] = [];
  let seconds = 0;
  /** HAProxy's MQTT sessions per server before the replay (its start-up probe of the frontend is one). */
  let sessionsBefore: Record<string, number>;
  let httpBefore: Record<string, number>;

  /** The region as its clients see it: HAProxy's MQTT and HTTP; each API request on a connection of its own, so round robin spreads them. */
  const through = () => ({ api: httpApi(`http://127.0.0.1:${ports.http}`, undefined, { connectionPerRequest: true }), mqttUrl: `mqtt://127.0.0.1:${ports.mqtt}` });
  const stats = () => haproxyStats(ports.stats);
  const sessionsTo = (backend: string) => sessionsPerServer(ports.stats, backend);
  /** One instance's API, not through HAProxy. */
  const direct = (n: Name) => ({ api: httpApi(`http://${HOSTS[n]}:${ports.gwHttp}`) });
  /** The instances running checks now (each the shards it holds); every shard is held somewhere. */
  const checkHolders = () => {
    const running = NAMES.filter((n) => gws[n].gw.checks.state().running);
    const shards = NAMES.flatMap((n) => gws[n].gw.region!.held().filter((k) => k.startsWith('checks#')));
    if (new Set(shards).size !== SHARDS) throw new Error(`${new Set(shards).size} of ${SHARDS} check shards held`);
    return running;
  };
  /** Duties held by two instances at once (sampled). */
  const doubled = () => {
    const keys = NAMES.flatMap((n) => gws[n].gw.region?.held() ?? []);
    return keys.filter((k, i) => keys.indexOf(k) !== i);
  };
  const maxSeq = async () => Number((await db.query<{ n: string }>('SELECT coalesce(max(seq), 0) AS n FROM ledger_records')).rows[0]!.n);
  /**
   * Every record in PostgreSQL has been through every check and heard by every instance (its live
   * state): each has heard the last seq (follow mode: the other instances' commits come by
   * polling), the holder's checks are idle, and the records they appended meanwhile (face
   * verdicts) are through too: until nothing new appears.
   */
  const regionSettled = async () => {
    for (let last = -1; ;) {
      const seq = await maxSeq();
      if (seq === last) return;
      for (const n of NAMES) await vi.waitFor(() => expect(gws[n].gw.ledger.lastSeq, n).toBeGreaterThanOrEqual(seq), { timeout: 10_000, interval: 20 });
      for (const n of checkHolders()) await settled(gws[n].gw);
      last = seq;
    }
  };

  beforeAll(async () => {
    s = loadScenario();
    [server, redis] = await Promise.all([startPostgres(), startRedis()]);
    const url = await server.createDatabase('region_month');
    db = new pg.Client({ connectionString: url });
    await db.connect();
    // As the compose volumes: the card-number key and the evidence (check-in photos) are one for the region.
    for (const d of ['keys', 'evidence']) fs.mkdirSync(path.join(shared, d));
    for (let attempt = 1; ; attempt++) {
      ports = { mqtt: await freePort(), ws: await freePort(), http: await freePort(), stats: await freePort(), gwMqtt: await freePort(), gwWs: await freePort(), gwHttp: await freePort() };
      try {
        for (const name of NAMES) {
          const dataDir = tempDir(`sitegate-${name}-`);
          for (const d of ['keys', 'evidence']) fs.symlinkSync(path.join(shared, d), path.join(dataDir, d));
          gws[name] = await startGateway({
            SITEGATE_HTTP_HOST: HOSTS[name], SITEGATE_MQTT_HOST: HOSTS[name],
            SITEGATE_HTTP_PORT: String(ports.gwHttp), SITEGATE_MQTT_PORT: String(ports.gwMqtt), SITEGATE_MQTT_WS_PORT: String(ports.gwWs),
            SITEGATE_DATABASE_URL: url, SITEGATE_REDIS_URL: redis.url, SITEGATE_INSTANCE_ID: name, SITEGATE_REGION_LEASE_MS: '5000', SITEGATE_REGION_SHARDS: String(SHARDS),
          }, {}, dataDir, { waitForChecks: false });
          gws[name].gw.broker.aedes.on('client', (c) => connections[name].push(c.id));
        }
        break;
      } catch (e) {
        for (const n of NAMES) {
          await gws[n]?.stop();
          delete gws[n];
        }
        if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 3) throw e;
      }
    }
    lb = await runHaproxy(HAPROXY_CFG, [ports.mqtt, ports.ws, ports.http, ports.stats], {
      LB_MQTT_BIND: `127.0.0.1:${ports.mqtt}`, LB_MQTT_WS_BIND: `127.0.0.1:${ports.ws}`, LB_HTTP_BIND: `127.0.0.1:${ports.http}`, LB_STATS_BIND: `127.0.0.1:${ports.stats}`,
      LB_CHECK_INTER: '200ms', LB_MAXCONN: '1000',
      GW1_HOST: HOSTS.gw1, GW2_HOST: HOSTS.gw2, GW3_HOST: HOSTS.gw3,
      GW_MQTT_PORT: String(ports.gwMqtt), GW_MQTT_WS_PORT: String(ports.gwWs), GW_HTTP_PORT: String(ports.gwHttp),
    });
    // Every instance up in HAProxy's eyes (its /readyz checks) before any device connects.
    await vi.waitFor(async () => {
      const up = (await stats()).filter((r) => r.pxname === 'gw_mqtt' && /^gw\d$/.test(r.svname) && r.status.startsWith('UP'));
      expect(up.map((r) => r.svname).sort()).toEqual([...NAMES]);
    }, { timeout: 10_000, interval: 50 });
    await vi.waitFor(() => checkHolders(), { timeout: 10_000, interval: 20 });

    [sessionsBefore, httpBefore] = [await sessionsTo('gw_mqtt'), await sessionsTo('gw_http')];
    const t0 = performance.now();
    const lbSide = through();
    const secrets = await registerScenario(lbSide, s, { faces: true });
    const sampler = setInterval(() => {
      overlaps.push(...doubled());
      for (const n of NAMES) if (gws[n].gw.checks.state().running) holders.add(n);
    }, 100);
    try {
      replay = await replayScenario(lbSide, s, secrets);
      await regionSettled();
      for (const n of checkHolders()) holders.add(n);
    } finally {
      clearInterval(sampler);
    }
    seconds = (performance.now() - t0) / 1000;
    alerts = await allAlerts(lbSide);
    att = await attendance(lbSide, s);
    console.info(`region month: registered, replayed (${replay.published} messages, ${replay.seconds.toFixed(1)} s) and settled in ${seconds.toFixed(1)} s; ` +
      `checks on ${[...holders].join(', ')}; MQTT connections ${NAMES.map((n) => `${n} ${connections[n].length}`).join(', ')}`);
  }, 240_000);

  afterAll(async () => {
    // Stopping a region-mode gateway with clients still on it can leave an unhandled rejection
    // behind (deploy.region.test.ts): wait until HAProxy has passed the replay's closes on.
    for (const n of NAMES) {
      const deadline = performance.now() + 5000;
      while (gws[n] && gws[n].gw.broker.aedes.connectedClients > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    }
    await lb?.stop();
    for (const n of NAMES) await gws[n]?.stop();
    await db?.end();
    await Promise.all([server?.dispose(), redis?.stop()]);
    fs.rmSync(shared, { recursive: true, force: true });
  }, 60_000);

  it('ran each shard\'s checks on one instance at a time, shared the duties out, each held once, and spread the checks', () => {
    expect(overlaps).toEqual([]);
    expect(NAMES.flatMap((n) => gws[n].gw.region!.held()).sort())
      .toEqual(['alert-ledger', ...Array.from({ length: SHARDS }, (_, k) => `checks#${k}`), 'linkage', 'timers', 'webhooks']);
    expect(holders.size).toBeGreaterThan(1); // the sites' checks ran on more than one instance
  });

  it('spread the devices over all three instances, each device on one', async () => {
    const replayed = (n: Name) => connections[n].filter((id) => id.startsWith('replay-'));
    for (const n of NAMES) expect(replayed(n).length, n).toBeGreaterThan(0);
    const all = NAMES.flatMap(replayed);
    const publishing = new Set(s.events.filter((e) => e.via === 'mqtt').map((e) => e.topic!.split('/')[3]!)); // the cameras send nothing
    expect(all.sort()).toEqual([...publishing].map((d) => `replay-${d}`).sort());
    // HAProxy saw it the same way (leastconn), and each instance ingested its devices' messages.
    const sessions = await sessionsTo('gw_mqtt');
    for (const n of NAMES) expect(sessions[n]! - sessionsBefore[n]!, n).toBe(replayed(n).length);
    const counted = (metric: string) => Promise.all(NAMES.map(async (n) => {
      const m = await gws[n].gw.metrics.registry.getSingleMetric(metric)!.get();
      return m.values.reduce((a, v) => a + v.value, 0);
    }));
    const accepted = await counted('sitegate_messages_accepted_total');
    for (const [i, n] of NAMES.entries()) expect(accepted[i], n).toBeGreaterThan(0);
    // Every message accepted by exactly one instance: the MQTT ones and the payroll CSVs' rows.
    const rows = s.events.filter((e) => e.via === 'http').reduce((n, e) => n + e.body!.trim().split('\n').length - 1, 0);
    expect(accepted.reduce((a, b) => a + b)).toBe(replay.published + rows);
    expect(await counted('sitegate_messages_duplicate_total')).toEqual([0, 0, 0]);
    expect(await counted('sitegate_messages_rejected_total')).toEqual([0, 0, 0]);
    // The registry calls, the face enrolments, the payroll CSVs and the reads: round robin over the three.
    const httpAfter = await sessionsTo('gw_http');
    const requests = NAMES.map((n) => httpAfter[n]! - httpBefore[n]!);
    for (const [i, n] of NAMES.entries()) expect(requests[i], n).toBeGreaterThan(0);
    console.info(NAMES.map((n, i) => `${n}: ${replayed(n).map((id) => id.slice('replay-'.length)).join(' ')}, ${accepted[i]} messages, ${requests[i]} HTTP requests`).join('; '));
  });

  it('stores every reading and check-in sent once, and the payroll CSVs row by row', async () => {
    for (const n of NAMES) {
      const counts = await gws[n].gw.ledger.countByKind();
      expectStoredOnce(replay, counts);
      expectPayrollAccepted(s, replay, counts);
    }
  });

  it('raises every expected hazard alert on its day and severity, none of the noAlerts, and nothing else', () => {
    const found = hazardFindings(s, alerts);
    expectHazardFindings(found);
    // The hazard check saw every reading once, wherever it arrived (when the checks never moved).
    if (holders.size === 1) expect(gws[[...holders][0]!].gw.checks.get<HazardCheck>('hazard')!.stats().readings).toBe(replay.readingsSent);
  });

  it('computes the attendance days and key-staff rates, raises every expected key-staff and check-in alert and no false positive', async () => {
    expectKeyStaffFindings(s, att, alerts);
  });

  it('shows key staff present today, people on site now and open alerts in the site status, the same on every instance', async () => {
    // Each instance's live state, built from every instance's commits (the ledger's follow mode).
    for (const n of NAMES) await expectSiteStatus(direct(n), s, att, alerts);
  });

  it('gives exactly the expected wage findings, wherever the request lands', async () => {
    for (const n of NAMES) await expectWageFindings(direct(n), s);
  });

  it('raises no alert twice: one row per key and opening in PostgreSQL, and every instance lists the same alerts', async () => {
    const twice = await db.query('SELECT key, opened_at, count(*)::int AS n FROM alerts GROUP BY key, opened_at HAVING count(*) > 1');
    expect(twice.rows).toEqual([]);
    const rows = (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM alerts WHERE withdrawn = 0')).rows[0]!.n;
    expect(alerts).toHaveLength(rows);
    const ids = (list: ListedAlert[]) => list.map((a) => a.id).sort();
    for (const n of NAMES) expect(ids(await allAlerts(direct(n))), n).toEqual(ids(alerts));
  });

  // Last: the sites' watermarks move into November, after which other checks have more to say.
  it('raises the wage alerts only when the sites\' watermarks pass the due date, once per site + worker + period', async () => {
    const tick = () => Promise.all(checkHolders().map((n) => gws[n].gw.checks.tick(Date.now()))); // the wall clock is past the end of October
    await tick();
    expect(await wageAlerts(through())).toEqual([]);
    await passWageDueDate(through(), s);
    await regionSettled();
    await tick();
    const raised = await wageAlerts(through());
    expectWageAlerts(s, raised);
    await tick();
    expect(await wageAlerts(through())).toHaveLength(raised.length);
    expect((await db.query("SELECT count(*)::int AS n FROM alerts WHERE kind LIKE 'wage.%'")).rows[0].n).toBe(raised.length);
  });
});
