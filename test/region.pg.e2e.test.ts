import fs from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClock } from './support/clock.ts';
import { startGateway, tempDir, type TestGateway } from './support/gateway.ts';
import { startPostgres, type Postgres } from './support/postgres.ts';

/**
 * The gateway on PostgreSQL (contract §8, issue 14): `SITEGATE_DATABASE_URL` puts the ledger and
 * the state in a real PostgreSQL 15 started by the test. One instance here; what it shows is that
 * every path the embedded default has works there too — QoS 1 ingest committed in PostgreSQL
 * before the PUBACK, dedupe, an alert raised by the check runner and kept with its audit trail,
 * a month report computed by the report thread from PostgreSQL, and a restart that finds all of
 * it (and nothing in SQLite).
 */
const T0 = Date.parse('2026-11-02T08:00:00+08:00');
const SITE = 'S-PG';

describe('the gateway on PostgreSQL (ledger and state)', () => {
  const clock = new TestClock(T0);
  let server: Postgres;
  let url: string;
  let db: pg.Client;
  let g: TestGateway;
  const dataDir = tempDir('sitegate-pg-');
  let secret: string;
  const start = () => startGateway({ SITEGATE_DATABASE_URL: url, SITEGATE_INSTANCE_ID: 'gw1' }, { now: clock.now }, dataDir);

  beforeAll(async () => {
    server = await startPostgres();
    url = await server.createDatabase('region_e2e');
    db = new pg.Client({ connectionString: url });
    await db.connect();
    g = await start();
    secret = await g.device(SITE, 'ENV-1', 'sensor');
    await g.device(SITE, 'T1', 'face_terminal');
    for (const w of ['W1', 'W2']) expect((await g.api('PUT', `/sites/${SITE}/workers/${w}`, { name: w })).status).toBe(201);
    expect((await g.api('PUT', `/sites/${SITE}/workers/K1`, { name: 'K1', keyRole: 'project_manager' })).status).toBe(201);
  }, 90_000);
  afterAll(async () => {
    await g?.stop();
    await db?.end();
    await server?.dispose();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }, 30_000);

  it('acknowledges a QoS 1 reading only once it is a row in PostgreSQL, and stores a repeat once', async () => {
    const c = await g.connect('ENV-1', secret, { clientId: 'env-1' });
    const body = JSON.stringify({ id: 'r1', ts: T0, metrics: { pm10: 40 } });
    await c.publishAsync(`sites/${SITE}/devices/ENV-1/telemetry`, body, { qos: 1 });
    // The PUBACK came back: the row must already be there, without waiting for anything.
    const rows = await db.query("SELECT kind, msg_id FROM ledger_records WHERE device_id = 'ENV-1'");
    expect(rows.rows).toEqual([{ kind: 'reading', msg_id: 'r1' }]);
    await c.publishAsync(`sites/${SITE}/devices/ENV-1/telemetry`, body, { qos: 1 });
    expect((await db.query("SELECT count(*)::int AS n FROM ledger_records WHERE device_id = 'ENV-1'")).rows[0].n).toBe(1);
    await c.endAsync();
  });

  it('refuses a flood of different unknown device ids asking PostgreSQL within a budget, and /metrics counts the rest', async () => {
    // An MQTT CONNECT with an unknown username asks the registry exactly this (registry.verifyDevice).
    const t0 = performance.now();
    for (let i = 0; i < 1000; i++) expect(g.gw.registry.device(`SCAN-${i}`)).toBeUndefined();
    const refilled = ((performance.now() - t0) / 1000) * 50; // the budget: a burst of 200, then 50 a second
    const m = await g.api('GET', '/metrics');
    const shed = Number(/^sitegate_registry_lookups_shed_total (\d+)/m.exec(m.text)?.[1]);
    expect(shed).toBeGreaterThanOrEqual(Math.floor(1000 - 200 - refilled - 1));
    expect(shed).toBeLessThanOrEqual(800);
    expect(g.gw.registry.device('ENV-1')?.siteId).toBe(SITE); // a known device is in memory: no budget
  });

  it('raises an alert through the check runner and keeps it, with its audit trail, in PostgreSQL', async () => {
    const c = await g.connect('ENV-1', secret, { clientId: 'env-1-will', will: {
      topic: `sites/${SITE}/devices/ENV-1/status`, payload: Buffer.from(JSON.stringify({ state: 'offline', ts: T0 + 60_000 })), qos: 1, retain: true,
    } });
    const willStored = new Promise<void>((resolve) => {
      const off = g.gw.ledger.onCommitted((rs) => { if (rs.some((r) => r.kind === 'status')) { off(); resolve(); } });
    });
    c.stream.destroy(); // unclean: the broker publishes the will
    await willStored;
    await g.gw.checks.idle();
    const stored = await db.query("SELECT kind, state, site_id FROM alerts WHERE kind = 'device.offline' AND subject::jsonb ->> 'deviceId' = 'ENV-1'");
    expect(stored.rows).toEqual([{ kind: 'device.offline', state: 'open', site_id: SITE }]);
    const audit = await db.query("SELECT type FROM audit_log WHERE subject LIKE 'alert:%' ORDER BY seq");
    expect(audit.rows.map((r) => r.type)).toContain('alert.opened');
    expect(g.gw.audit.verify().ok).toBe(true);
  });

  it('answers a month report from the report thread reading PostgreSQL, and keystaff reads its days there', async () => {
    const c = (workerId: string, id: string, ts: string, direction: string) => ({ id, workerId, ts, direction, method: 'card' });
    clock.set('2026-11-02T18:00:00+08:00');
    const r = await g.api('POST', `/sites/${SITE}/devices/T1/checkins`, [
      c('W1', 'a', '2026-11-02T08:00:00+08:00', 'in'), c('W1', 'b', '2026-11-02T17:00:00+08:00', 'out'),
      c('K1', 'k', '2026-11-02T08:10:00+08:00', 'in'),
    ]);
    expect(r.json.accepted, r.text).toBe(3);
    await g.gw.checks.idle();
    // Keystaff decided the key person's day from the day's check-ins, read inside its step (stepReads):
    // a read it could not answer would have failed the step.
    await g.gw.checks.tick(Date.parse('2026-11-03T12:00:00+08:00'));
    expect(await g.gw.metrics.checkFailures.get()).toMatchObject({ values: [] });
    const att = await g.api('GET', `/sites/${SITE}/attendance?month=2026-11`);
    expect(att.status, att.text).toBe(200);
    expect(att.json.workers.map((w: { workerId: string; daysPresent: number }) => [w.workerId, w.daysPresent])).toEqual([['K1', 1], ['W1', 1], ['W2', 0]]);
    expect(await g.api('GET', '/readyz', undefined, { token: null })).toMatchObject({ status: 200 });
  });

  it('starts again on the same database with everything it had, and nothing of it in SQLite', async () => {
    await g.stop({ keepDataDir: true });
    expect(fs.readdirSync(dataDir).filter((f) => f.endsWith('.db'))).toEqual([]);
    g = await start();
    expect(g.gw.registry.device('ENV-1')).toMatchObject({ siteId: SITE, kind: 'sensor' });
    const envOffline = () => g.gw.alerts.list({ kind: 'device.offline', limit: 10 }).items.filter((a) => a.subject.deviceId === 'ENV-1');
    expect(envOffline().map((a) => a.state)).toEqual(['open']);
    // The same message again after the restart: acknowledged, stored once (dedupe lives in PostgreSQL).
    const c = await g.connect('ENV-1', secret, { clientId: 'env-1' });
    await c.publishAsync(`sites/${SITE}/devices/ENV-1/telemetry`, JSON.stringify({ id: 'r1', ts: T0, metrics: { pm10: 40 } }), { qos: 1 });
    await c.publishAsync(`sites/${SITE}/devices/ENV-1/telemetry`, JSON.stringify({ id: 'r2', ts: T0 + 120_000, metrics: { pm10: 41 } }), { qos: 1 });
    expect((await db.query("SELECT msg_id FROM ledger_records WHERE device_id = 'ENV-1' AND kind = 'reading' ORDER BY seq")).rows.map((r) => r.msg_id)).toEqual(['r1', 'r2']);
    await g.gw.checks.idle();
    // The device spoke again: its offline alert clears, in PostgreSQL.
    expect((await db.query("SELECT state FROM alerts WHERE kind = 'device.offline' AND subject::jsonb ->> 'deviceId' = 'ENV-1'")).rows).toEqual([{ state: 'cleared' }]);
    expect(envOffline().map((a) => a.state)).toEqual(['cleared']);
  });
});
