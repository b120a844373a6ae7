/**
 * Issue 16 bench: a site with three months of history (August–October 2026: 400 workers and 6
 * key staff checking in and out every day, with verdicts; ~75,000 check-ins), then a morning of
 * mixed load on 1 November, in two phases:
 *
 *   wave     every worker checks in over MQTT (QoS 1, with a photo), 20 in flight;
 *   reports  attendance and wage checks of the three months, evidence (JSON and CSV) of 30
 *            workers × 3 months, and a 5,000-row wage CSV upload, 4 requests in flight.
 *
 * Throughout both, a sensor of the site publishes QoS 1 readings one after the other (PUBACK
 * latency) and /healthz is polled every 20 ms (answer latency); the gateway's event-loop delay
 * comes from its own monitor (what /readyz and the gauges report). The gateway runs in this
 * process, so the load generator's own work is included in the loop delay: the figures are an
 * upper bound. The calendar is the injected clock throughout (no wall-clock dates).
 */
import fs from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { testCard } from '../support/cards.ts';
import { startGateway, tempDir } from '../support/gateway.ts';
import { daysOf, historyKeyStaffId, historyWorkerId, seedHistory } from '../support/history.ts';
import { settled } from '../support/settle.ts';

const SITE = 'S-HIST';
const TERMINAL = 'T-HIST';
const SENSOR = 'ENV-HIST';
const WORKERS = Number(process.env.BENCH_HISTORY_WORKERS ?? 400);
const PHOTO = fs.readFileSync(new URL('../fixtures/faces/cady_coleman_1.jpg', import.meta.url)).toString('base64');

const q = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]! : NaN;
};
const r1 = (x: number) => Math.round(x * 10) / 10;

export async function runHistoryBench(o: { log: (s: string) => void } = { log: console.log }): Promise<Record<string, number>> {
  let clock = Date.parse('2026-11-01T06:50:00+08:00');
  const dataDir = tempDir('sitegate-bench-history-');
  let t = performance.now();
  const days = [...daysOf('2026-08', 1, 31), ...daysOf('2026-09', 1, 30), ...daysOf('2026-10', 1, 31)];
  const { checkins, terminalSecret } = await seedHistory({ dataDir, siteId: SITE, days, workers: WORKERS, keyStaff: 6, terminalId: TERMINAL, now: clock });
  const seedS = (performance.now() - t) / 1000;
  o.log(`seeded ${checkins} check-ins over ${days.length} days in ${seedS.toFixed(1)} s`);
  t = performance.now();
  const g = await startGateway({}, { now: () => clock }, dataDir);
  await settled(g.gw);
  const startS = (performance.now() - t) / 1000;
  o.log(`gateway started and caught up on the history in ${startS.toFixed(1)} s`);
  try {
    const terminal = await g.connect(TERMINAL, terminalSecret);
    const sensor = await g.connect(SENSOR, await g.device(SITE, SENSOR, 'sensor'));
    await g.api('PUT', `/sites/${SITE}/workers/${historyWorkerId(0)}`, { name: 'Worker 0', employer: 'Sub', trade: 'rebar', wageCard: testCard(0) });

    /** Runs `work` while the sensor publishes and /healthz is polled; returns the figures of that window. */
    const during = async (name: string, work: () => Promise<void>) => {
      const pubacks: number[] = [];
      const health: number[] = [];
      const loop = monitorEventLoopDelay({ resolution: 5 });
      let on = true;
      let n = 0;
      const publisher = (async () => {
        while (on) {
          const t0 = performance.now();
          await sensor.publishAsync(`sites/${SITE}/devices/${SENSOR}/telemetry`, JSON.stringify({ id: `${name}-${n++}`, ts: clock - 30_000, metrics: { pm10: 40, noise_dba: 55 } }), { qos: 1 });
          pubacks.push(performance.now() - t0);
        }
      })();
      const poller = (async () => {
        while (on) {
          const t0 = performance.now();
          await fetch(`${g.httpUrl}/healthz`).then((r) => r.text());
          health.push(performance.now() - t0);
          await new Promise((r) => setTimeout(r, 20));
        }
      })();
      loop.enable();
      const t0 = performance.now();
      const monoUs = () => Number(process.hrtime.bigint() / 1000n);
      const fromUs = monoUs();
      await work();
      await settled(g.gw);
      const seconds = (performance.now() - t0) / 1000;
      const toUs = monoUs();
      on = false;
      await Promise.all([publisher, poller]);
      loop.disable();
      const f = {
        [`${name} seconds`]: r1(seconds), [`${name} PUBACK p99 ms`]: r1(q(pubacks, 0.99)), [`${name} PUBACK max ms`]: r1(Math.max(...pubacks)),
        [`${name} healthz max ms`]: r1(Math.max(...health)), [`${name} loop delay max ms`]: r1(loop.max / 1e6), [`${name} publishes`]: pubacks.length,
      };
      o.log(JSON.stringify(f));
      // The window in CLOCK_MONOTONIC µs, the time base of a --cpu-prof profile's samples.
      o.log(`${name} window (monotonic µs, for node --cpu-prof): ${fromUs}–${toUs}`);
      return f;
    };

    // The morning: the clock moves into 1 November and every worker checks in with a photo.
    clock = Date.parse('2026-11-01T08:30:00+08:00');
    const wave = await during('check-in wave', async () => {
      const ids = [...Array.from({ length: 6 }, (_, k) => historyKeyStaffId(k)), ...Array.from({ length: WORKERS }, (_, i) => historyWorkerId(i))];
      let next = 0;
      await Promise.all(Array.from({ length: 20 }, async () => {
        while (next < ids.length) {
          const i = next++;
          const payload = { id: `2026-11-01-${ids[i]}-in`, workerId: ids[i], ts: Date.parse('2026-11-01T07:30:00+08:00') + i * 1000, direction: 'in', method: 'face', terminalScore: 0.9, photo: PHOTO };
          await terminal.publishAsync(`sites/${SITE}/devices/${TERMINAL}/checkin`, JSON.stringify(payload), { qos: 1 });
        }
      }));
    });

    const reports = await during('reports', async () => {
      const jobs: (() => Promise<unknown>)[] = [];
      for (const month of ['2026-08', '2026-09', '2026-10']) {
        jobs.push(() => g.api('GET', `/sites/${SITE}/attendance?month=${month}`));
        jobs.push(() => g.api('GET', `/sites/${SITE}/wage-check?month=${month}`));
        for (let i = 0; i < 30; i++) {
          jobs.push(() => g.api('GET', `/sites/${SITE}/workers/${historyWorkerId(i * 13 % WORKERS)}/evidence?month=${month}${i % 2 ? '&format=csv' : ''}`));
        }
      }
      const rows = ['id,workerId,period,amount,paidAt,card,status'];
      for (let i = 0; i < 5000; i++) rows.push(`P-${i},${historyWorkerId(i % WORKERS)},2026-10,${3000 + (i % 7)},2026-10-31T10:00:00+08:00,${testCard(i % WORKERS)},paid`);
      jobs.push(() => g.api('POST', `/sites/${SITE}/wage-payments`, rows.join('\r\n') + '\r\n', { contentType: 'text/csv' }));
      let next = 0;
      await Promise.all(Array.from({ length: 4 }, async () => {
        while (next < jobs.length) {
          const r = (await jobs[next++]!()) as { status: number; text: string };
          if (r.status !== 200) throw new Error(`report request failed: ${r.status} ${r.text.slice(0, 200)}`);
        }
      }));
    });

    return { 'history check-ins': checkins, 'seed s': r1(seedS), 'start + replay s': r1(startS), ...wave, ...reports };
  } finally {
    await g.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await runHistoryBench();
  for (const [k, v] of Object.entries(r)) console.log(`${k.padEnd(36)} ${v}`);
}
