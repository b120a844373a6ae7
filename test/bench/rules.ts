/**
 * What the rules cost the whole pipeline: the same load — N sensors publishing QoS 1 readings of 8
 * metrics over MQTT — into a gateway built with `deps.checks = []` (rules off), with the hazard
 * and device.offline checks only, and with the default registry (every check). The rate is end to
 * end: from the first publish until every reading is PUBACKed *and* every check has seen it
 * (`checks.idle()`), so rules that fall behind count against them. Also the gateway's CPU time per
 * reading, and the memory of the rule state per device.
 *
 * Each gateway runs in a child process of its own (this file, RULES_BENCH_CHILD=mode); the load
 * comes from this process. Modes alternate over `rounds`; the median round of each is reported.
 *
 *   npx tsx test/bench/rules.ts      (also part of `npm run bench`, through test/bench/hazard.ts)
 *
 * Knobs: RULES_BENCH_DEVICES (200), RULES_BENCH_READINGS (250 per device, one per minute of event
 * time), RULES_BENCH_WINDOW (10 in flight per device), RULES_BENCH_ROUNDS (2).
 */
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import mqtt from 'mqtt';
import { mulberry32 } from '../../gateway/src/checks/hazard/testing.ts';

type Mode = 'off' | 'rules' | 'default';
const MODES: Mode[] = ['off', 'rules', 'default'];
const SITE = 'S-BENCH';
const START = Date.parse('2026-09-01T00:00:00+08:00');
const MIN = 60_000;
const clock = () => performance.timeOrigin + performance.now();
/** Share of readings with an excursion beyond the limits (as in hazard.ts); RULES_BENCH_SPIKES overrides. */
const SPIKE_RATE = Number(process.env.RULES_BENCH_SPIKES ?? 0.002);

type ChildCommand = { type: 'begin' } | { type: 'wait'; readings: number } | { type: 'stop' };
type ChildReply =
  | { type: 'ready'; mqttPort: number; devices: { deviceId: string; secret: string }[] }
  | { type: 'begun' }
  | { type: 'done'; committedAt: number; idleAt: number; signals: number; flushes: number; cpuUs: number; mainCpuUs: number; workerBusyMs: number; memBytes: number; workerBytes: number; snapshotBytes: number }
  | { type: 'stopped' };

export interface RulesBenchOptions {
  devices?: number;
  readingsPerDevice?: number;
  window?: number;
  rounds?: number;
  log?: (line: string) => void;
}

interface RunFigures {
  mode: Mode;
  readings: number;
  ackPerS: number;
  /** Through every check: first publish → all PUBACKed and `checks.idle()`. */
  endToEndPerS: number;
  /** Time the checks ran behind the last PUBACK. */
  checksLagMs: number;
  /** Alert signals the rules applied, and the alert-store transactions that carried them. */
  signals: number;
  flushes: number;
  cpuUsPerReading: number;
  /** Main-thread CPU (MQTT, ingest, checks' bookkeeping, alert store) per reading, from /proc. */
  mainUsPerReading: number;
  /** Hazard worker busy time per reading. */
  workerUsPerReading: number;
  memBytes: number;
  /** Growth of the hazard worker's memory over the run (the engines' state). */
  workerBytes: number;
  snapshotBytes: number;
}

/** One reading of 8 metrics, as hazard.ts generates them: normal levels, rare excursions. */
function payload(deviceId: string, i: number, random: () => number, pit: { value: number }): string {
  const spike = random() < SPIKE_RATE;
  pit.value += random() * 0.01;
  const r1 = (x: number) => Math.round(x * 10) / 10;
  return JSON.stringify({
    id: `${deviceId}-${i}`,
    ts: START + i * MIN,
    metrics: {
      noise_dba: r1(50 + random() * 12 + (spike ? 20 : 0)),
      pm10: r1(60 + random() * 40 + (spike ? 300 : 0)),
      pm2_5: r1(30 + random() * 20 + (spike ? 150 : 0)),
      tsp: r1(200 + random() * 100),
      wind_speed_ms: r1(3 + random() * 5 + (spike ? 8 : 0)),
      crane_moment_pct: r1(50 + random() * 35 + (spike ? 20 : 0)),
      gas_lel_pct: r1(random() * 3),
      pit_displacement_mm: Math.round(pit.value * 1000) / 1000,
    },
  });
}

function request(child: ChildProcess, cmd: ChildCommand): Promise<ChildReply> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: ChildReply) => { child.off('exit', onExit); resolve(m); };
    const onExit = (code: number | null) => { child.off('message', onMessage); reject(new Error(`bench gateway exited with ${code}`)); };
    child.once('message', onMessage);
    child.once('exit', onExit);
    child.send(cmd);
  });
}

async function runOnce(mode: Mode, o: Required<Omit<RulesBenchOptions, 'log'>>): Promise<RunFigures> {
  const child = fork(fileURLToPath(import.meta.url), [], {
    execArgv: ['--import', 'tsx', '--expose-gc', ...(process.env.RULES_BENCH_EXEC_ARGV ?? '').split(' ').filter(Boolean)],
    env: { ...process.env, RULES_BENCH_CHILD: mode, RULES_BENCH_DEVICES: String(o.devices) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  try {
    const ready = await new Promise<Extract<ChildReply, { type: 'ready' }>>((resolve, reject) => {
      child.once('message', (m: ChildReply) => (m.type === 'ready' ? resolve(m) : reject(new Error(`unexpected ${m.type}`))));
      child.once('exit', (code) => reject(new Error(`bench gateway exited with ${code} before it was ready`)));
    });
    const url = `mqtt://127.0.0.1:${ready.mqttPort}`;
    const clients = await Promise.all(ready.devices.map((d) => mqtt.connectAsync(url, {
      username: d.deviceId, password: d.secret, clientId: `bench-${d.deviceId}`, protocolVersion: 4, reconnectPeriod: 0,
    })));
    // Payloads prepared before the clock starts; the same seed for every mode.
    const random = mulberry32(20260901);
    const messages = ready.devices.map((d) => {
      const pit = { value: 5 };
      return Array.from({ length: o.readingsPerDevice }, (_, i) => payload(d.deviceId, i, random, pit));
    });
    const readings = ready.devices.length * o.readingsPerDevice;
    await request(child, { type: 'begin' });
    const done = request(child, { type: 'wait', readings });
    const t0 = clock();
    await Promise.all(clients.map(async (c, k) => {
      const topic = `sites/${SITE}/devices/${ready.devices[k]!.deviceId}/telemetry`;
      const list = messages[k]!;
      let next = 0;
      const lane = async () => {
        while (next < list.length) await c.publishAsync(topic, list[next++]!, { qos: 1 });
      };
      await Promise.all(Array.from({ length: o.window }, lane));
    }));
    const acked = clock();
    const d = (await done) as Extract<ChildReply, { type: 'done' }>;
    await Promise.all(clients.map((c) => c.endAsync()));
    return {
      mode, readings,
      ackPerS: Math.round(readings / ((acked - t0) / 1000)),
      endToEndPerS: Math.round(readings / ((Math.max(d.idleAt, acked) - t0) / 1000)),
      checksLagMs: Math.max(0, Math.round(d.idleAt - acked)),
      signals: d.signals,
      flushes: d.flushes,
      cpuUsPerReading: Math.round((d.cpuUs / readings) * 10) / 10,
      mainUsPerReading: Math.round((d.mainCpuUs / readings) * 10) / 10,
      workerUsPerReading: Math.round((d.workerBusyMs * 1000 / readings) * 10) / 10,
      memBytes: d.memBytes,
      workerBytes: d.workerBytes,
      snapshotBytes: d.snapshotBytes,
    };
  } finally {
    await request(child, { type: 'stop' }).catch(() => {});
    if (child.exitCode === null) await new Promise((r) => child.once('exit', r));
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;

export async function runRulesBench(options: RulesBenchOptions = {}): Promise<Record<string, number>> {
  const o = {
    devices: options.devices ?? Number(process.env.RULES_BENCH_DEVICES ?? 200),
    readingsPerDevice: options.readingsPerDevice ?? Number(process.env.RULES_BENCH_READINGS ?? 250),
    window: options.window ?? Number(process.env.RULES_BENCH_WINDOW ?? 10),
    rounds: options.rounds ?? Number(process.env.RULES_BENCH_ROUNDS ?? 2),
  };
  const log = options.log ?? ((s: string) => console.log(s));
  const runs: RunFigures[] = [];
  for (let round = 0; round < o.rounds; round++) {
    for (const mode of MODES) {
      const r = await runOnce(mode, o);
      runs.push(r);
      log(`rules ${mode.padEnd(7)} round ${round + 1}: ${r.endToEndPerS} readings/s end to end (acks ${r.ackPerS}/s, checks lag ${r.checksLagMs} ms); ` +
        `per reading: ${r.cpuUsPerReading} µs CPU, main thread ${r.mainUsPerReading} µs, hazard worker busy ${r.workerUsPerReading} µs; ${r.signals} alert signals in ${r.flushes} transactions`);
    }
  }
  const pick = (mode: Mode) => runs.filter((r) => r.mode === mode);
  const of = (mode: Mode, f: (r: RunFigures) => number) => median(pick(mode).map(f));
  // Rates: the best round of each mode, the one least disturbed by whatever else the machine runs.
  const rate = (m: Mode) => Math.max(...pick(m).map((r) => r.endToEndPerS));
  const cpu = (m: Mode) => of(m, (r) => r.cpuUsPerReading);
  const main = (m: Mode) => of(m, (r) => r.mainUsPerReading);
  const round3 = (x: number) => Math.round(x * 1000) / 1000;
  const out = {
    devices: o.devices,
    readings: o.devices * o.readingsPerDevice,
    offPerS: rate('off'),
    rulesPerS: rate('rules'),
    defaultPerS: rate('default'),
    /** Rules on ÷ off, end-to-end throughput: the target is ≥ 0.9 (rules cost ≤ 10 %). */
    ratioRules: round3(rate('rules') / rate('off')),
    ratioDefault: round3(rate('default') / rate('off')),
    rulesChecksLagMs: of('rules', (r) => r.checksLagMs),
    /** Main-thread CPU µs per reading (MQTT, ingest, checks' bookkeeping, alert store): the pipeline's bottleneck. */
    offMainUsPerReading: main('off'),
    rulesMainUsPerReading: main('rules'),
    defaultMainUsPerReading: main('default'),
    /** What the rules add on the main thread, as a share of the rules-off pipeline's. */
    rulesMainShare: round3((main('rules') - main('off')) / main('off')),
    /** Hazard engines' busy µs per reading, on their worker thread. */
    rulesWorkerUsPerReading: of('rules', (r) => r.workerUsPerReading),
    offCpuUsPerReading: cpu('off'),
    rulesCpuUsPerReading: cpu('rules'),
    defaultCpuUsPerReading: cpu('default'),
    /** Extra process CPU per reading for the rules (all threads), as a share of the rules-off pipeline's. */
    rulesCpuShare: round3((cpu('rules') - cpu('off')) / cpu('off')),
    /** The engines' memory (worker heap + typed arrays) per device after the run. */
    ruleStateBytesPerDevice: Math.round(of('rules', (r) => r.workerBytes) / o.devices),
    /** Main-thread memory beyond the rules-off gateway's (device.offline state, queues), per device. */
    mainThreadBytesPerDevice: Math.round((of('rules', (r) => r.memBytes) - of('off', (r) => r.memBytes)) / o.devices),
    snapshotBytesPerDevice: Math.round(of('rules', (r) => r.snapshotBytes) / o.devices),
  };
  log(`rules on/off: ${out.rulesPerS} vs ${out.offPerS} readings/s end to end = ${out.ratioRules} (default checks ${out.ratioDefault}); ` +
    `main thread ${out.rulesMainUsPerReading} vs ${out.offMainUsPerReading} µs/reading (+${(out.rulesMainShare * 100).toFixed(1)} %), ` +
    `hazard worker ${out.rulesWorkerUsPerReading} µs/reading; process CPU ${out.rulesCpuUsPerReading} vs ${out.offCpuUsPerReading} µs/reading (+${(out.rulesCpuShare * 100).toFixed(1)} %); ` +
    `rule state ≈ ${(out.ruleStateBytesPerDevice / 1024).toFixed(0)} KiB/device in memory (main thread +${(out.mainThreadBytesPerDevice / 1024).toFixed(0)} KiB), ` +
    `${(out.snapshotBytesPerDevice / 1024).toFixed(0)} KiB/device as snapshot, after ${o.readingsPerDevice} min of data`);
  return out;
}

/** CPU time of this process's main thread (Linux: /proc/self/task/<pid>/stat utime + stime, 100 Hz ticks), in µs. */
function mainThreadCpuUs(): number {
  try {
    const stat = fs.readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * 10_000;
  } catch {
    return NaN;
  }
}

/** The gateway under test, in its own process. */
async function child(mode: Mode): Promise<void> {
  const { buildApp } = await import('../../gateway/src/app.ts');
  const { loadConfig } = await import('../../gateway/src/config/loadConfig.ts');
  const { hazardCheck } = await import('../../gateway/src/checks/hazard/hazardCheck.ts');
  const { deviceOfflineCheck } = await import('../../gateway/src/checks/device-offline/deviceOffline.ts');
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `sitegate-rules-bench-${mode}-`));
  const config = loadConfig({
    SITEGATE_DATA_DIR: dataDir, SITEGATE_HTTP_HOST: '127.0.0.1', SITEGATE_MQTT_HOST: '127.0.0.1',
    SITEGATE_HTTP_PORT: '0', SITEGATE_MQTT_PORT: '0', SITEGATE_MQTT_WS_PORT: '0',
    SITEGATE_ADMIN_TOKEN: 'bench-admin-token-0123456789abcdef', SITEGATE_LOG_LEVEL: 'warn', SITEGATE_SECRET_SCRYPT_N: '1024',
  });
  const checks = mode === 'off' ? [] : mode === 'rules' ? [hazardCheck(), deviceOfflineCheck()] : undefined;
  const gw = await buildApp(config, checks ? { checks } : {});
  gw.registry.putSite(SITE, { name: 'bench', regionCode: '330106' });
  const devices: { deviceId: string; secret: string }[] = [];
  for (let i = 0; i < Number(process.env.RULES_BENCH_DEVICES ?? 200); i++) {
    const deviceId = `SENS-${String(i).padStart(4, '0')}`;
    devices.push({ deviceId, secret: (await gw.registry.putDevice(SITE, deviceId, { kind: 'sensor' }, 1024)).secret! });
  }
  const { mqttPort } = await gw.listen();
  let committed = 0;
  let waiting: { readings: number; resolve: () => void } | undefined;
  gw.ledger.onCommitted((records) => {
    for (const r of records) if (r.kind === 'reading') committed++;
    if (waiting && committed >= waiting.readings) waiting.resolve();
  });
  const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
  let cpu0 = process.cpuUsage();
  type Hazard = import('../../gateway/src/checks/hazard/hazardCheck.ts').HazardCheck;
  const hazard = gw.checks.get<Hazard>('hazard');
  let worker0 = 0;
  let main0 = mainThreadCpuUs();
  let workerBusy0 = 0;
  process.on('message', async (cmd: ChildCommand) => {
    if (cmd.type === 'begin') {
      worker0 = hazard ? await hazard.memory() : 0;
      gc();
      main0 = mainThreadCpuUs();
      workerBusy0 = hazard?.workerBusyMs() ?? 0;
      cpu0 = process.cpuUsage();
      process.send!({ type: 'begun' } satisfies ChildReply);
    } else if (cmd.type === 'wait') {
      if (committed < cmd.readings) await new Promise<void>((resolve) => { waiting = { readings: cmd.readings, resolve }; });
      const committedAt = clock();
      await gw.checks.idle();
      const idleAt = clock();
      const used = process.cpuUsage(cpu0);
      const mainCpuUs = mainThreadCpuUs() - main0;
      const workerBusyMs = (hazard?.workerBusyMs() ?? 0) - workerBusy0;
      gc();
      const m = process.memoryUsage();
      const hs = hazard?.stats();
      const workerBytes = hazard ? (await hazard.memory()) - worker0 : 0;
      const snapshotBytes = hazard ? (await hazard.snapshot()).bytes : 0;
      process.send!({ type: 'done', committedAt, idleAt, signals: hs?.signals ?? 0, flushes: hs?.flushes ?? 0, cpuUs: used.user + used.system, mainCpuUs, workerBusyMs, memBytes: m.heapUsed + m.arrayBuffers, workerBytes, snapshotBytes } satisfies ChildReply);
    } else if (cmd.type === 'stop') {
      await gw.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
      process.send!({ type: 'stopped' } satisfies ChildReply, () => process.exit(0));
    }
  });
  process.send!({ type: 'ready', mqttPort, devices } satisfies ChildReply);
}

const childMode = process.env.RULES_BENCH_CHILD as Mode | undefined;
if (childMode && process.send) {
  await child(childMode);
} else if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const r = await runRulesBench();
  console.log(JSON.stringify(r, null, 2));
}
