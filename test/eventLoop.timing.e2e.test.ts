import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, tempDir, type TestGateway } from './support/gateway.ts';
import { daysOf, historyKeyStaffId, seedHistory } from './support/history.ts';
import { settled } from './support/settle.ts';

/**
 * Issue 16: nothing on the event loop may grow with history. A site with a month of check-ins
 * (with their face verdicts) and the alerts they raised; one more check-in arrives — the key
 * staff's first of a new day, which moves the site's watermark past the end of the previous day
 * (every daily decision runs then). A sensor of the same site publishing QoS 1 all along must
 * have every PUBACK within 200 ms, before, during and after that check-in's processing.
 */
const SITE = 'S-LOOP';
const TERMINAL = 'T-LOOP';
const SENSOR = 'ENV-LOOP';
const WORKERS = 400;
const EVENING = Date.parse('2026-10-30T18:30:00+08:00');

describe('a month of history on the event loop', () => {
  let g: TestGateway;
  let clock = Date.parse('2026-10-31T07:30:00+08:00');

  beforeAll(async () => {
    const dataDir = tempDir();
    await seedHistory({ dataDir, siteId: SITE, days: daysOf('2026-10', 1, 30), workers: WORKERS, keyStaff: 6, terminalId: TERMINAL, now: clock });
    g = await startGateway({}, { now: () => clock }, dataDir);
    await settled(g.gw);
  }, 300_000);

  afterAll(async () => {
    await g?.stop();
  });

  it('has the month and its alerts', async () => {
    const att = await g.api('GET', `/sites/${SITE}/attendance?month=2026-10`);
    expect(att.status).toBe(200);
    expect(att.json.workers).toHaveLength(WORKERS + 6);
    expect(att.json.workers.find((w: any) => w.workerId === 'W0000').daysPresent).toBe(30);
    const alerts = await g.api('GET', `/alerts?siteId=${SITE}&kind=keystaff.absent&limit=1000`);
    expect(alerts.json.items.length).toBeGreaterThan(20);
    const unknown = await g.api('GET', `/alerts?siteId=${SITE}&kind=checkin.unknown_worker&limit=1000`);
    expect(unknown.json.items.length).toBe(30);
  });

  it('one more check-in: a parallel QoS 1 publish of another device is acknowledged within 200 ms', async () => {
    const secret = await g.device(SITE, SENSOR, 'sensor');
    const sensor = await g.connect(SENSOR, secret);
    const latencies: number[] = [];
    let n = 0;
    const publishOne = async () => {
      const t0 = performance.now();
      // Stamped in the last evening of the history (an edge agent catching up): the check-in, not
      // the sensor, is what moves the site into the new day.
      await sensor.publishAsync(`sites/${SITE}/devices/${SENSOR}/telemetry`, JSON.stringify({ id: `r${n}`, ts: EVENING + n * 1000, metrics: { pm10: 40 } }), { qos: 1 });
      n++;
      latencies.push(performance.now() - t0);
    };
    let publishing = true;
    // One publish always in flight, from before the check-in until its effects are all processed.
    const publisher = (async () => { while (publishing) await publishOne(); })();
    while (latencies.length < 5) await publishOne();

    clock = Date.parse('2026-10-31T07:45:00+08:00');
    const checkin = { id: 'late-arrival-1', workerId: historyKeyStaffId(0), ts: '2026-10-31T07:44:00+08:00', direction: 'in', method: 'card' };
    const res = await g.api('POST', `/sites/${SITE}/devices/${TERMINAL}/checkins`, checkin);
    expect(res.status, res.text).toBe(200);
    expect(res.json.accepted).toBe(1);
    await settled(g.gw);
    const during = latencies.length;
    while (latencies.length < during + 5) await publishOne();
    publishing = false;
    await publisher;

    // The check-in was taken into account: the new day counts in the attendance.
    const att = await g.api('GET', `/sites/${SITE}/attendance?month=2026-10`);
    expect(att.json.workers.find((w: any) => w.workerId === historyKeyStaffId(0)).days).toContain('2026-10-31');
    expect(latencies.length).toBeGreaterThan(10);
    // The delay is measured and exported: /readyz (no token) and the Prometheus gauges.
    const ready = await g.api('GET', '/readyz', undefined, { token: null });
    expect(ready.json.eventLoop).toMatchObject({ p99Ms: expect.any(Number), maxMs: expect.any(Number), maxEverMs: expect.any(Number) });
    const metrics = await g.api('GET', '/metrics');
    expect(metrics.text).toMatch(/^sitegate_event_loop_delay_max_seconds \d/m);
    expect(metrics.text).toMatch(/^sitegate_event_loop_delay_p99_seconds \d/m);
    expect(Math.max(...latencies), `PUBACK latencies (ms): ${latencies.map((l) => l.toFixed(0)).join(' ')}`).toBeLessThan(200);
  });
});
