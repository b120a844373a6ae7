/**
 * Both InfluxDB sinks against a real influxd (Debian's 1.6.7, started by test/support/influxd.ts).
 *
 * InfluxV2Sink speaks /api/v2/write, which InfluxDB 2.x would serve; InfluxDB 2.x cannot run on
 * this machine and influxd 1.6.7 has no /api/v2. So its suite goes through
 * test/support/influxV2Shim.ts, a stand-in that only translates: it checks the token, un-gzips
 * the body and forwards it to the real influxd's v1 /write, returning influxd's own status and
 * body. The points land in (and are refused by) a real influxd; only the URL shape is translated.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, influxdAvailable, rows, startInfluxd, type Influxd } from '../../../test/support/influxd.ts';
import { startInfluxV2Shim, type InfluxV2Shim } from '../../../test/support/influxV2Shim.ts';
import { InfluxV1Sink } from './influxV1.ts';
import { InfluxV2Sink } from './influxV2.ts';
import { record, sinkContract, type SinkHarness } from './sinkContract.ts';

let influx: Influxd;
let shim: InfluxV2Shim;
let closedPort: number;
let dbCount = 0;

beforeAll(async () => {
  const available = influxdAvailable();
  if (!available.ok) throw new Error(available.reason);
  influx = await startInfluxd();
  shim = await startInfluxV2Shim(influx.url);
  closedPort = await freePort();
});

afterAll(async () => {
  await shim?.close();
  await influx?.dispose();
});

/** A fresh database per test, so each contract test starts from an empty store. */
async function freshDb(): Promise<string> {
  const db = `contract_${process.pid}_${++dbCount}`;
  await influx.query(`CREATE DATABASE "${db}"`);
  return db;
}

function harness(db: string, sink: SinkHarness['sink'], unreachable: SinkHarness['unreachable']): SinkHarness {
  return {
    sink,
    unreachable,
    query: async (measurement) => rows(await influx.query(`SELECT * FROM "${measurement}"`, { db })) as never,
    async teardown() {
      await sink.close();
      await influx.query(`DROP DATABASE "${db}"`);
    },
  };
}

describe('InfluxV1Sink (real influxd, v1 /write)', () => {
  sinkContract('influx-v1', async () => {
    const db = await freshDb();
    return harness(db, new InfluxV1Sink({ url: influx.url, db, deviceKind: () => 'sensor' }), () => new InfluxV1Sink({ url: `http://127.0.0.1:${closedPort}`, db }));
  });
});

describe('InfluxV2Sink (v2 shim in front of the real influxd)', () => {
  sinkContract('influx-v2', async () => {
    const db = await freshDb();
    return harness(db,
      new InfluxV2Sink({ url: shim.url, token: shim.token, org: shim.org, bucket: db, deviceKind: () => 'sensor' }),
      () => new InfluxV2Sink({ url: `http://127.0.0.1:${closedPort}`, token: shim.token, org: shim.org, bucket: db }));
  });

  it('influx-v2: sends the token and gzips large bodies (what the shim saw)', async () => {
    const db = await freshDb();
    const sink = new InfluxV2Sink({ url: shim.url, token: shim.token, org: shim.org, bucket: db });
    const before = shim.requests.length;
    const t0 = Date.parse('2026-11-02T08:00:00Z');
    await sink.write([record('reading', t0, { metrics: { pm10: 1 } })]);
    await sink.write(Array.from({ length: 100 }, (_, i) => record('reading', t0 - 1000 - i, { metrics: { pm10: i + 0.5 } })));
    expect(shim.requests.slice(before)).toEqual([{ bucket: db, gzip: false, status: 204 }, { bucket: db, gzip: true, status: 204 }]);
    const wrongToken = new InfluxV2Sink({ url: shim.url, token: 'wrong', org: shim.org, bucket: db });
    // 401 is not the points' fault: retried, never dead-lettered.
    await expect(wrongToken.write([record('reading', t0, { metrics: { pm10: 1 } })])).rejects.toMatchObject({ kind: 'retryable', status: 401 });
    await influx.query(`DROP DATABASE "${db}"`);
  });
});
