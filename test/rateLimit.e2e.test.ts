/**
 * Issue 15 (b): one device at 1 ms event-time spacing beside ordinary devices. The fast device is
 * above its ingest rate, so its connection is read more slowly: it is throttled (counted per
 * device) and loses nothing. The ordinary devices' PUBACKs stay prompt and their alerts are raised.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DeviceRateLimit } from '../gateway/src/broker/deviceRateLimit.ts';
import { startGateway, type TestGateway } from './support/gateway.ts';

const SITE = 'S-FAST';
const NIGHT = Date.parse('2026-09-01T23:00:00+08:00');
const FAST_READINGS = 12_000;
const BATCH = 500;

let g: TestGateway | undefined;
afterEach(async () => {
  await g?.stop();
  g = undefined;
});

describe('DeviceRateLimit', () => {
  it('a token bucket in readings: within the burst no wait, beyond it the wait that the rate gives back', () => {
    let now = 0;
    const limit = new DeviceRateLimit(() => now);
    const rate = { readingsPerS: 100, burst: 50 };
    expect(limit.take('A', 50, rate)).toBe(0);
    expect(limit.take('A', 10, rate)).toBeCloseTo(100); // 10 readings at 100/s
    expect(limit.take('B', 10, rate)).toBe(0); // per device
    now += 1000;
    expect(limit.take('A', 10, rate)).toBe(0);
  });
});

describe('a fast device beside ordinary ones', () => {
  it('is throttled and loses nothing; the others keep prompt PUBACKs and their alerts', async () => {
    g = await startGateway();
    const fastSecret = await g.device(SITE, 'FAST');
    const site = g.gw.registry.site(SITE)!;
    const put = await g.api('PUT', `/sites/${SITE}`, { name: site.name, regionCode: site.regionCode, settings: { devices: { FAST: { ingestRate: { readingsPerS: 4000, burst: 1000 } } } } });
    expect(put.status).toBe(200);
    const ordinary = ['ENV-A', 'ENV-B', 'ENV-C'];
    const secrets = await Promise.all(ordinary.map((d) => g!.device(SITE, d)));
    const fast = await g.connect('FAST', fastSecret);
    const others = await Promise.all(ordinary.map((d, i) => g!.connect(d, secrets[i]!)));

    // The fast device: batches of 500 readings 1 ms apart, 4 publishes in flight.
    const fastStarted = performance.now();
    const flood = (async () => {
      const inflight = new Set<Promise<unknown>>();
      for (let b = 0; b < FAST_READINGS / BATCH; b++) {
        const batch = Array.from({ length: BATCH }, (_, i) => {
          const n = b * BATCH + i;
          return { id: `f${n}`, ts: NIGHT + n, metrics: { noise_dba: 50 + (n % 10) } };
        });
        const p = fast.publishAsync(`sites/${SITE}/devices/FAST/telemetry`, JSON.stringify({ batch }), { qos: 1 });
        inflight.add(p);
        void p.finally(() => inflight.delete(p));
        if (inflight.size >= 4) await Promise.race(inflight);
      }
      await Promise.all(inflight);
      return performance.now() - fastStarted;
    })();

    // Ordinary devices: one reading a minute of event time, sent one after another while the
    // flood runs; the third is above the night maximum (critical, GB 12523-2011).
    const latencies: number[] = [];
    for (let m = 0; m < 12; m++) {
      await Promise.all(others.map(async (c, i) => {
        const t0 = performance.now();
        await c.publishAsync(`sites/${SITE}/devices/${ordinary[i]}/telemetry`, JSON.stringify({ id: `o${m}`, ts: NIGHT + m * 60_000, metrics: { noise_dba: m === 3 ? 80 : 45 } }), { qos: 1 });
        latencies.push(performance.now() - t0);
      }));
    }
    const fastMs = await flood;

    console.log(`rate limit: fast device ${FAST_READINGS} readings in ${Math.round(fastMs)} ms (limit 4000/s), ordinary PUBACK max ${Math.round(Math.max(...latencies))} ms`);
    // Throttled: 12,000 readings at 4,000/s after a burst of 1,000 take at least ~2.7 s.
    expect(fastMs).toBeGreaterThan(2500);
    const metrics = await g.api('GET', '/metrics');
    const throttled = /sitegate_device_throttled_total\{device="FAST"\} (\d+)/.exec(metrics.text);
    expect(Number(throttled?.[1])).toBeGreaterThan(0);
    expect(metrics.text).not.toMatch(/sitegate_device_throttled_total\{device="ENV-/);
    // Nothing lost: every fast reading is in the ledger, once.
    const fastRecords = (await g.gw.ledger.readAfter(0, 100_000, ['reading'])).filter((r) => r.deviceId === 'FAST');
    expect(fastRecords.length).toBe(FAST_READINGS);
    // The ordinary devices were never made to wait for the fast one.
    expect(Math.max(...latencies)).toBeLessThan(1000);
    await g.gw.checks.idle();
    const alerts = (await g.api('GET', `/alerts?siteId=${SITE}`)).json.items as { subject: { deviceId: string }; severity: string; openedAt: string; evidence: { rule: string } }[];
    for (const d of ordinary) {
      const max = alerts.filter((a) => a.subject.deviceId === d && a.evidence.rule === 'noise-night-max');
      expect(max.map((a) => [a.severity, a.openedAt])).toEqual([['critical', new Date(NIGHT + 3 * 60_000).toISOString()]]);
    }
  }, 60_000);
});
