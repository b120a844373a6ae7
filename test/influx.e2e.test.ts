/**
 * End to end through the whole gateway into a real influxd (InfluxDB 1.6.7, v1 /write): real
 * `mqtt` clients with QoS 1 and real HTTP in, InfluxQL out. Contract §4 (measurements, tags,
 * float fields, event times in ms, no card numbers), the ledger as the spool across an influxd
 * outage, dead letters for points InfluxDB refuses, and a gateway restart resuming from the
 * sink cursor it saved.
 */
import type mqtt from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { influxdAvailable, rows, startInfluxd, type Influxd } from './support/influxd.ts';
import { startGateway, tempDir, type TestGateway } from './support/gateway.ts';
import fs from 'node:fs';

let influx: Influxd;
let dbCount = 0;
const gateways: TestGateway[] = [];

beforeAll(async () => {
  const available = influxdAvailable();
  if (!available.ok) throw new Error(available.reason);
  influx = await startInfluxd();
});

afterEach(async () => {
  for (const g of gateways.splice(0)) await g.stop().catch(() => {});
  if (influx && !influx.running) await influx.restart();
});

afterAll(async () => {
  await influx?.dispose();
});

/** Each test writes into its own database of the shared influxd. */
async function freshDb(): Promise<string> {
  const db = `e2e_${process.pid}_${++dbCount}`;
  await influx.query(`CREATE DATABASE "${db}"`);
  return db;
}

async function gateway(db: string, dataDir?: string): Promise<TestGateway> {
  const g = await startGateway({ SITEGATE_INFLUX_URL: influx.url, SITEGATE_INFLUX_DB: db, SITEGATE_INFLUX_FLUSH_MS: '50' }, {}, dataDir);
  gateways.push(g);
  return g;
}

/** No event says "the sink caught up": poll the condition, with a bounded deadline. */
async function until<T>(what: string, probe: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T;
  for (;;) {
    last = await probe();
    if (ok(last)) return last;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

type SinkState = { name: string; cursor: number; lagRecords: number; healthy: boolean; deadLetters: number; lastError?: string };
const sinkState = async (g: TestGateway): Promise<SinkState> => {
  const r = await g.api('GET', '/readyz');
  expect(r.status).toBe(200); // a sink that is down never makes the gateway unready: the ledger spools
  return r.json.sinks[0];
};
const caughtUp = (g: TestGateway) => until('sink lag 0', () => sinkState(g), (s) => s.lagRecords === 0);

/** A sample of /metrics (Prometheus text), 0 when the series does not exist yet. */
async function metric(g: TestGateway, name: string, labels = 'sink="influx-v1"'): Promise<number> {
  const r = await g.api('GET', '/metrics');
  expect(r.status).toBe(200);
  const line = r.text.split('\n').find((l) => l.startsWith(`${name}{${labels}} `));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

const select = async (db: string, q: string) => rows(await influx.query(q, { db }));
const count = async (db: string, measurement: string, field: string) => {
  const r = await select(db, `SELECT count("${field}") FROM "${measurement}"`);
  return r.length ? Number(r[0]!.count) : 0;
};
/** SHOW FIELD KEYS as {field: type}. */
const fieldTypes = async (db: string, measurement: string) =>
  Object.fromEntries((await select(db, `SHOW FIELD KEYS FROM "${measurement}"`)).map((r) => [r.fieldKey, r.fieldType]));
const tagKeys = async (db: string, measurement: string) =>
  (await select(db, `SHOW TAG KEYS FROM "${measurement}"`)).map((r) => r.tagKey).sort();

/** Publishes readings ts0+from … ts0+to-1 with QoS 1, `window` in flight at a time; resolves when every PUBACK came. */
async function publishReadings(c: mqtt.MqttClient, topic: string, ts0: number, from: number, to: number, window = 100): Promise<void> {
  for (let start = from; start < to; start += window) {
    const end = Math.min(to, start + window);
    const acks: Promise<unknown>[] = [];
    for (let i = start; i < end; i++) {
      acks.push(c.publishAsync(topic, JSON.stringify({ id: `r-${i}`, ts: ts0 + i, metrics: { pm10: (i % 300) + 0.5 } }), { qos: 1 }));
    }
    await Promise.all(acks);
  }
}

/** A card number with a valid Luhn check digit (ISO/IEC 7812). */
function luhnCard(body: string): string {
  let sum = 0;
  for (let i = 0; i < body.length; i++) {
    let d = Number(body[body.length - 1 - i]);
    if (i % 2 === 0) { d *= 2; if (d > 9) d -= 9; }
    sum += d;
  }
  return body + String((10 - (sum % 10)) % 10);
}

/** RFC 3339 in site time (+08:00), as a terminal sends it. */
function rfc3339Plus8(ms: number): string {
  return new Date(ms + 8 * 3_600_000).toISOString().replace(/\.(\d{3})Z$/, '.$1+08:00');
}

describe('InfluxDB end to end (real influxd 1.6.7)', () => {
  it('(a) readings, check-in, status over MQTT and a wage payment over HTTP land as contract §4 says, with no card number', async () => {
    const db = await freshDb();
    const g = await gateway(db);
    const site = 'S-HZ-001';
    const sensor = await g.device(site, 'D-DUST-1', 'sensor');
    const terminal = await g.device(site, 'T17', 'face_terminal');
    const card = luhnCard('622202020011223');
    const w = await g.api('PUT', `/sites/${site}/workers/W0042`, { name: 'Li Wei', employer: 'Acme Build', trade: 'rebar', wageCard: card });
    expect(w.status).toBe(201);

    const t0 = Math.floor(Date.now() / 1000) * 1000 - 600_000;
    const s = await g.connect('D-DUST-1', sensor);
    // pm10 = 132 is an integer in JSON: it must still be a float in InfluxDB.
    await s.publishAsync(`sites/${site}/devices/D-DUST-1/telemetry`, JSON.stringify({ id: 'D3-1', ts: t0, metrics: { pm10: 132, pm2_5: 61.0, noise_dba: 72.1 } }), { qos: 1 });
    await s.publishAsync(`sites/${site}/devices/D-DUST-1/telemetry`, JSON.stringify({ batch: [
      { id: 'D3-2', ts: t0 + 1000, metrics: { pm10: 140.5, pm2_5: 62, noise_dba: 70 } },
      { id: 'D3-3', ts: rfc3339Plus8(t0 + 2000), metrics: { pm10: 150.25, pm2_5: 63.5, noise_dba: 69.9 } },
      { id: 'D3-4', ts: t0 + 3000, metrics: { pm10: 1e21, pm2_5: 64, noise_dba: 68 } },
    ] }), { qos: 1 });
    await s.publishAsync(`sites/${site}/devices/D-DUST-1/status`, JSON.stringify({ state: 'online', ts: t0 + 500, firmware: '2.1.0', batteryPct: 87 }), { qos: 1, retain: true });
    const t = await g.connect('T17', terminal);
    const checkinTs = t0 + 4321;
    await t.publishAsync(`sites/${site}/devices/T17/checkin`, JSON.stringify({ id: 'T17-000482', workerId: 'W0042', ts: rfc3339Plus8(checkinTs), direction: 'in', method: 'face', terminalScore: 0.91 }), { qos: 1 });
    const paidAt = t0 + 7000;
    const pay = await g.api('POST', `/sites/${site}/wage-payments`, [{ id: 'P-2026-10-0042', workerId: 'W0042', period: '2026-10', amount: 3200, paidAt: rfc3339Plus8(paidAt), card, status: 'paid' }]);
    expect(pay.status).toBe(200);
    expect(pay.json).toMatchObject({ accepted: 1, duplicate: 0, rejected: 0 });

    const st = await caughtUp(g);
    expect(st).toMatchObject({ healthy: true, deadLetters: 0 });

    // reading: tags site, device; one float field per metric; time = the reading's ts.
    expect(await tagKeys(db, 'reading')).toEqual(['device', 'site']);
    expect(await fieldTypes(db, 'reading')).toEqual({ noise_dba: 'float', pm10: 'float', pm2_5: 'float' });
    expect(await select(db, 'SELECT * FROM reading')).toEqual([
      { time: t0, site, device: 'D-DUST-1', pm10: 132, pm2_5: 61, noise_dba: 72.1 },
      { time: t0 + 1000, site, device: 'D-DUST-1', pm10: 140.5, pm2_5: 62, noise_dba: 70 },
      { time: t0 + 2000, site, device: 'D-DUST-1', pm10: 150.25, pm2_5: 63.5, noise_dba: 69.9 },
      { time: t0 + 3000, site, device: 'D-DUST-1', pm10: 1e21, pm2_5: 64, noise_dba: 68 },
    ]);

    // checkin: tags site, device, worker, direction, method; verdict, id (similarity, photo_sha256 when there is a photo).
    expect(await tagKeys(db, 'checkin')).toEqual(['device', 'direction', 'method', 'site', 'worker']);
    const checkins = await select(db, 'SELECT * FROM checkin');
    expect(checkins).toHaveLength(1);
    expect(checkins[0]).toMatchObject({ time: checkinTs, site, device: 'T17', worker: 'W0042', direction: 'in', method: 'face', id: 'T17-000482' });
    expect(['verified', 'face_mismatch', 'no_face', 'unverified']).toContain(checkins[0]!.verdict);
    const checkinFields = await fieldTypes(db, 'checkin');
    expect(checkinFields).toMatchObject({ verdict: 'string', id: 'string' });
    if (checkinFields.similarity) expect(checkinFields.similarity).toBe('float');

    // device_status: tags site, device, kind; online (boolean), battery_pct (float).
    expect(await tagKeys(db, 'device_status')).toEqual(['device', 'kind', 'site']);
    expect(await fieldTypes(db, 'device_status')).toEqual({ battery_pct: 'float', online: 'boolean' });
    expect(await select(db, 'SELECT * FROM device_status')).toEqual([{ time: t0 + 500, site, device: 'D-DUST-1', kind: 'sensor', online: true, battery_pct: 87 }]);

    // wage_payment: tags site, worker, status; amount (float), period, card_last4, id; time = paidAt.
    expect(await tagKeys(db, 'wage_payment')).toEqual(['site', 'status', 'worker']);
    expect(await fieldTypes(db, 'wage_payment')).toEqual({ amount: 'float', card_last4: 'string', id: 'string', period: 'string' });
    expect(await select(db, 'SELECT * FROM wage_payment')).toEqual([
      { time: paidAt, site, worker: 'W0042', status: 'paid', amount: 3200, period: '2026-10', card_last4: card.slice(-4), id: 'P-2026-10-0042' },
    ]);

    // No card number anywhere in InfluxDB: not in series keys, field keys, tag values or any value.
    const everything = JSON.stringify([
      await influx.query('SHOW SERIES', { db }), await influx.query('SHOW FIELD KEYS', { db }),
      await influx.query('SHOW TAG KEYS', { db }), await influx.query('SELECT * FROM /.*/', { db }),
    ]);
    expect(everything).toContain(card.slice(-4));
    expect(everything).not.toContain(card);
    expect(everything).not.toContain(card.slice(0, 12));
    expect(everything).not.toMatch(/card_hash|cardHash/);
  });

  it('(b) influxd outage: every PUBACK arrives, the ledger spools, and after the restart each of N points is there exactly once', async () => {
    const db = await freshDb();
    const g = await gateway(db);
    const site = 'S-OUTAGE';
    const c = await g.connect('D-O1', await g.device(site, 'D-O1'));
    const topic = `sites/${site}/devices/D-O1/telemetry`;
    const N = 3000;
    const ts0 = Date.now() - 3_600_000;

    await publishReadings(c, topic, ts0, 0, 1000);
    await influx.stop();
    // influxd is down: the QoS 1 PUBACKs still come, because durability is the ledger's, not InfluxDB's.
    await publishReadings(c, topic, ts0, 1000, 2000);
    const down = await until('the sink to notice the outage', () => sinkState(g), (s) => !s.healthy);
    expect(down.lagRecords).toBeGreaterThan(0);
    expect(down.lastError).toMatch(/influx v1 write/);
    expect(g.gw.ledger.lastSeq).toBe(2000);

    await influx.restart();
    await publishReadings(c, topic, ts0, 2000, N);
    const st = await caughtUp(g);
    expect(st).toMatchObject({ healthy: true, deadLetters: 0, cursor: N });
    expect(await count(db, 'reading', 'pm10')).toBe(N);
    // Every point at its own event time, once: N distinct times from ts0 to ts0+N-1.
    const span = await select(db, 'SELECT count(pm10), min(pm10), max(pm10) FROM reading WHERE time >= ' + `${ts0}ms AND time < ${ts0 + N}ms`);
    expect(span[0]).toMatchObject({ count: N, min: 0.5, max: 299.5 });
    // The outage was seen as retryable failures (backed off and retried), never as bad data.
    expect(await metric(g, 'sitegate_sink_errors_total', 'sink="influx-v1",class="retryable"')).toBeGreaterThan(0);
    expect(await metric(g, 'sitegate_sink_errors_total', 'sink="influx-v1",class="bad_data"')).toBe(0);
    expect(await metric(g, 'sitegate_sink_dead_letters_total')).toBe(0);
  });

  it('(c) a point InfluxDB refuses becomes a dead letter; the rest of its batch lands', async () => {
    const db = await freshDb();
    const site = 'S-BAD';
    const ts0 = Date.now() - 1_800_000;
    // Before the gateway writes anything: noise_dba is a string field in this shard, so the
    // gateway's float noise_dba conflicts (field type conflict, a 400 partial write).
    const direct = await fetch(`${influx.url}/write?db=${db}&precision=ms`, { method: 'POST', body: `reading,device=D-B0,site=${site} noise_dba="loud" ${ts0 - 1}` });
    expect(direct.status).toBe(204);

    const g = await gateway(db);
    const c = await g.connect('D-B1', await g.device(site, 'D-B1'));
    const batch = Array.from({ length: 20 }, (_, i) => ({ id: `b-${i}`, ts: ts0 + i, metrics: i === 7 ? { noise_dba: 70.5 } : { pm10: 10 + i } }));
    await c.publishAsync(`sites/${site}/devices/D-B1/telemetry`, JSON.stringify({ batch }), { qos: 1 });

    const st = await until('the dead letter', () => sinkState(g), (s) => s.lagRecords === 0 && s.deadLetters === 1);
    expect(st.healthy).toBe(true);
    expect(await count(db, 'reading', 'pm10')).toBe(19);
    expect((await select(db, `SELECT * FROM reading WHERE device = 'D-B1'`)).map((r) => r.time)).toEqual(batch.filter((_, i) => i !== 7).map((b) => b.ts));

    const dl = await g.api('GET', '/api/v1/dead-letters');
    expect(dl.status).toBe(200);
    expect(dl.json.items).toHaveLength(1);
    expect(dl.json.items[0]).toMatchObject({ sink: 'influx-v1', line: `reading,device=D-B1,site=${site} noise_dba=70.5 ${ts0 + 7}` });
    expect(dl.json.items[0].error).toMatch(/field type conflict/);
    expect(await metric(g, 'sitegate_sink_dead_letters_total')).toBe(1);
  });

  it('(d) a gateway restart on the same data directory resumes from the saved cursor: nothing missing, nothing resent', async () => {
    const db = await freshDb();
    const dataDir = tempDir();
    try {
      const site = 'S-RESTART';
      const topic = `sites/${site}/devices/D-R1/telemetry`;
      const ts0 = Date.now() - 2_400_000;

      const g1 = await gateway(db, dataDir);
      const secret = await g1.device(site, 'D-R1');
      const c1 = await g1.connect('D-R1', secret);
      await publishReadings(c1, topic, ts0, 0, 500);
      const confirmed = await caughtUp(g1);
      expect(confirmed.cursor).toBe(500);
      // InfluxDB down while 500 more arrive: the gateway stops with them unconfirmed.
      await influx.stop();
      await publishReadings(c1, topic, ts0, 500, 1000);
      await until('the sink to notice the outage', () => sinkState(g1), (s) => !s.healthy);
      gateways.splice(gateways.indexOf(g1), 1);
      await g1.stop({ keepDataDir: true });

      await influx.restart();
      const g2 = await gateway(db, dataDir);
      expect(g2.gw.ledger.lastSeq).toBe(1000);
      const c2 = await g2.connect('D-R1', secret);
      // The device replays its last window (same ids) — stored once — and sends 200 new readings.
      await publishReadings(c2, topic, ts0, 900, 1200);
      const st = await caughtUp(g2);
      expect(st).toMatchObject({ cursor: 1200, healthy: true, deadLetters: 0 });
      expect(await count(db, 'reading', 'pm10')).toBe(1200);
      // Resumed at 500: this process wrote the 500 spooled points and the 200 new ones, not the 500 confirmed before.
      expect(await metric(g2, 'sitegate_sink_points_written_total')).toBe(700);
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
