/**
 * Hazard engine throughput and memory: 1,000 devices × 8 metrics through every default rule, one
 * reading a minute each, for a little more than the 24 h re-evaluation horizon so that every
 * series holds its steady-state window. Then the same engine fed readings that arrive up to
 * 10 minutes late (the default allowed lateness), shuffled, to price re-evaluation. Then the whole
 * pipeline with rules on vs off (test/bench/rules.ts; `pipeline: false` or HAZARD_BENCH_PIPELINE=0 skips it).
 * Then sample density (issue 15): one noise + dust device at 1 s and at 1 ms event-time spacing,
 * 100,000 readings each: the per-reading cost and the rule state held should not depend on it.
 *
 *   npx tsx test/bench/hazard.ts
 */
import { pathToFileURL } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { HazardEngine, type HazardReading } from '../../gateway/src/checks/hazard/engine.ts';
import { mulberry32 } from '../../gateway/src/checks/hazard/testing.ts';
import { runRulesBench } from './rules.ts';

const MIN = 60_000;
const START = Date.parse('2026-09-01T00:00:00+08:00');

export interface HazardBenchOptions {
  devices?: number;
  /** Event time simulated, in hours (one reading per device per minute). */
  hours?: number;
  /** Devices in the late-arrival part. */
  lateDevices?: number;
  /** Readings per device in the spacing part (default 100,000). */
  spacingReadings?: number;
  /** Also measure the full pipeline with rules on vs off (default: yes). */
  pipeline?: boolean;
  log?: (line: string) => void;
}

/** JS heap plus ArrayBuffer backing stores (the sample arrays live outside the JS heap). */
function memory(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

function collectGarbage(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/** One device's reading at minute m: normal levels with rare excursions beyond the limits. */
function reading(deviceId: string, ts: number, random: () => number, pit: { value: number }): HazardReading {
  const spike = random() < 0.002;
  pit.value += random() * 0.01;
  return {
    siteId: 'S-BENCH',
    deviceId,
    ts,
    metrics: {
      noise_dba: 50 + random() * 12 + (spike ? 20 : 0),
      pm10: 60 + random() * 40 + (spike ? 300 : 0),
      pm2_5: 30 + random() * 20 + (spike ? 150 : 0),
      tsp: 200 + random() * 100,
      wind_speed_ms: 3 + random() * 5 + (spike ? 8 : 0),
      crane_moment_pct: 50 + random() * 35 + (spike ? 20 : 0),
      gas_lel_pct: random() * 3,
      pit_displacement_mm: pit.value,
    },
  };
}

export async function runHazardBench(options: HazardBenchOptions = {}): Promise<Record<string, number>> {
  const devices = options.devices ?? 1000;
  const minutes = Math.round((options.hours ?? 25) * 60);
  const lateDevices = options.lateDevices ?? 100;
  const gc = collectGarbage();
  const random = mulberry32(20260901);

  gc();
  const heapBefore = memory();
  const engine = new HazardEngine({ timezone: 'Asia/Shanghai' });
  const ids = Array.from({ length: devices }, (_, i) => `DEV-${String(i).padStart(4, '0')}`);
  const pits = ids.map(() => ({ value: 5 }));
  let signals = 0;
  let readings = 0;
  const started = process.hrtime.bigint();
  for (let m = 0; m < minutes; m++) {
    const ts = START + m * MIN;
    for (let d = 0; d < devices; d++) {
      signals += engine.ingest(reading(ids[d], ts, random, pits[d])).length;
      readings++;
    }
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  gc();
  const heapAfter = memory();
  const stats = engine.stats();

  // Late arrival: each reading delayed by up to 10 min at random, delivered in arrival order.
  const late = new HazardEngine({ timezone: 'Asia/Shanghai' });
  const lateIds = ids.slice(0, lateDevices);
  const latePits = lateIds.map(() => ({ value: 5 }));
  const lateMinutes = Math.min(minutes, 6 * 60);
  const queue: { arrives: number; r: HazardReading }[] = [];
  for (let m = 0; m < lateMinutes; m++) {
    for (let d = 0; d < lateIds.length; d++) {
      const r = reading(lateIds[d], START + m * MIN, random, latePits[d]);
      queue.push({ arrives: r.ts + random() * 10 * MIN, r });
    }
  }
  queue.sort((a, b) => a.arrives - b.arrives);
  const lateStarted = process.hrtime.bigint();
  for (const q of queue) late.ingest(q.r);
  const lateSeconds = Number(process.hrtime.bigint() - lateStarted) / 1e9;

  const spacing = spacingBench(options.spacingReadings ?? Number(process.env.HAZARD_BENCH_SPACING_READINGS ?? 100_000));

  const pipeline = (options.pipeline ?? process.env.HAZARD_BENCH_PIPELINE !== '0')
    ? Object.fromEntries(Object.entries(await runRulesBench(options.log ? { log: options.log } : {})).map(([k, v]) => [`pipeline.${k}`, v]))
    : {};

  return {
    devices,
    metricsPerReading: 8,
    readings,
    seconds: Math.round(seconds * 100) / 100,
    readingsPerSecond: Math.round(readings / seconds),
    samplesPerSecond: Math.round(stats.samples / seconds),
    evaluationsPerReading: Math.round((stats.evaluations / readings) * 100) / 100,
    signals,
    bytesPerDevice: Math.round((heapAfter - heapBefore) / devices),
    lateReadings: queue.length,
    lateOutOfOrderShare: Math.round((late.stats().outOfOrder / late.stats().samples) * 1000) / 1000,
    lateReadingsPerSecond: Math.round(queue.length / lateSeconds),
    lateEvaluationsPerReading: Math.round((late.stats().evaluations / queue.length) * 100) / 100,
    ...spacing,
    ...pipeline,
  };
}

/**
 * Per-reading cost at 1 s and at 1 ms event-time spacing: 4 devices of noise, pm10 and pm2_5 (the
 * windowed rules, whose cost used to grow with the samples in a window), noise loud enough at night
 * to raise alerts. The devices are registered at 1 s (a logger misconfigured, or replaying a backlog
 * with a bad clock, sends faster than it says), so the windows count as filled from the start.
 * Best of 3 rounds of `readings` per device.
 */
function spacingBench(readings: number): Record<string, number> {
  const out: Record<string, number> = {};
  const night = Date.parse('2026-09-01T23:00:00+08:00');
  for (const [name, stepMs] of [['1s', 1000], ['1ms', 1]] as const) {
    let best = Infinity;
    let bytes = 0;
    let signals = 0;
    for (let round = 0; round < 3; round++) {
      const random = mulberry32(7);
      const engine = new HazardEngine({ timezone: 'Asia/Shanghai' });
      const started = process.hrtime.bigint();
      signals = 0;
      for (let i = 0; i < readings; i++) {
        for (let d = 0; d < 4; d++) {
          const r: HazardReading = {
            siteId: 'S-BENCH',
            deviceId: `FAST-${d}`,
            ts: night + i * stepMs,
            metrics: { noise_dba: 48 + random() * 10, pm10: 100 + random() * 80, pm2_5: 50 + random() * 40 },
          };
          signals += engine.ingest(r, { intervalS: 1 }).length;
        }
      }
      const us = Number(process.hrtime.bigint() - started) / 1e3 / (readings * 4);
      best = Math.min(best, us);
      bytes = JSON.stringify(engine.snapshot()).length;
      if (engine.stats().readings !== readings * 4) throw new Error('spacing bench: readings lost');
    }
    out[`spacing${name}.usPerReading`] = Math.round(best * 100) / 100;
    out[`spacing${name}.snapshotBytesPerDevice`] = Math.round(bytes / 4);
    out[`spacing${name}.signals`] = signals;
  }
  out['spacing.costRatio1msTo1s'] = Math.round((out['spacing1ms.usPerReading'] / out['spacing1s.usPerReading']) * 100) / 100;
  return out;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const result = await runHazardBench(process.env.HAZARD_BENCH_SPACING_ONLY === '1' ? { devices: 1, hours: 0.1, lateDevices: 1, pipeline: false } : {});
  console.log(
    `hazard: ${result.readingsPerSecond.toLocaleString('en')} readings/s ` +
      `(${result.samplesPerSecond.toLocaleString('en')} metric samples/s) through all default rules, ` +
      `${result.devices} devices × ${result.metricsPerReading} metrics; ` +
      `≈ ${(result.bytesPerDevice / 1024).toFixed(0)} KiB of rule state per device after 25 h at 1/min; ` +
      `late arrival (≤ 10 min, ${(result.lateOutOfOrderShare * 100).toFixed(0)} % out of order): ` +
      `${result.lateReadingsPerSecond.toLocaleString('en')} readings/s`,
  );
  console.log(JSON.stringify(result, null, 2));
}
