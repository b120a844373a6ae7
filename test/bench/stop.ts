/**
 * Stop and restart under a check backlog (issue 15): a gateway process with a real influxd as its
 * sink, one device registered as reporting once a second publishing QoS 1 batches of readings 1 ms
 * apart in event time, as fast as the gateway acknowledges them (6 batches of 1,000 in flight).
 *
 *   stop      fresh data directory; `readings` acknowledged, then SIGTERM at once: how long until
 *             the process exits, how far behind the checks were, and the process's peak RSS (VmHWM).
 *   restart   fresh data directory; `readings` acknowledged, then SIGKILL; a new process on the
 *             same data: how long until "listening", and a SIGTERM right then: how long to exit.
 *
 * `SITEGATE_BENCH_TREE=<dir>` runs another checkout's gateway (e.g. the parent of the issue-15
 * merge, with node_modules symlinked) with this file, so before and after are measured alike.
 * A stop or start that takes longer than `capMs` is cut short with SIGKILL and reported as `> cap`.
 *
 *   npx tsx test/bench/stop.ts                      (BENCH_STOP_READINGS=100000, BENCH_STOP_CAP_MS=240000)
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { freePort, tempDir } from '../support/gateway.ts';
import { startInfluxd, type Influxd } from '../support/influxd.ts';
import { spawnGateway, type GatewayProcess } from '../support/process.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const ADMIN = 'bench-stop-admin-token-0123456789abcdef';
const SITE = 'S-STOP';
const T0 = Date.parse('2026-09-01T08:00:00+08:00');
const BATCH = 1000;
const WINDOW = 6;

export interface StopBenchOptions {
  readings?: number;
  capMs?: number;
  tree?: string;
  log?: (line: string) => void;
}

/** Peak resident set of a process so far (VmHWM, bytes), 0 once it is gone. */
function peakRss(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

const MiB = 2 ** 20;

/** A gateway process of `tree` on fixed ports; its peak RSS is sampled until it exits. */
class Target {
  gw!: GatewayProcess;
  peak = 0;
  private timer?: NodeJS.Timeout;

  constructor(private readonly tree: string, readonly env: Record<string, string>) {}

  async start(capMs: number): Promise<number | undefined> {
    const t0 = performance.now();
    this.gw = spawnGateway(this.env, { argv: [process.execPath, '--import', 'tsx', path.join(this.tree, 'gateway/src/main.ts')], cwd: this.tree });
    const pid = this.gw.proc.pid!;
    this.peak = 0;
    this.timer = setInterval(() => { this.peak = Math.max(this.peak, peakRss(pid)); }, 100);
    const cap = new Promise<'cap'>((r) => setTimeout(() => r('cap'), capMs).unref());
    if ((await Promise.race([this.gw.ready.then(() => 'ok' as const), cap])) === 'cap') {
      await this.kill();
      return undefined;
    }
    return performance.now() - t0;
  }

  /** SIGTERM; ms until the process exited (undefined: cut short at `capMs`). */
  async terminate(capMs: number): Promise<{ ms: number | undefined; code: number | null }> {
    this.peak = Math.max(this.peak, peakRss(this.gw.proc.pid!));
    const t0 = performance.now();
    this.gw.proc.kill('SIGTERM');
    const cap = new Promise<'cap'>((r) => setTimeout(() => r('cap'), capMs).unref());
    const res = await Promise.race([this.gw.exited, cap]);
    if (res === 'cap') {
      await this.kill();
      return { ms: undefined, code: null };
    }
    clearInterval(this.timer);
    return { ms: performance.now() - t0, code: res.code };
  }

  async kill(): Promise<void> {
    this.peak = Math.max(this.peak, peakRss(this.gw.proc.pid!));
    clearInterval(this.timer);
    this.gw.proc.kill('SIGKILL');
    await this.gw.exited;
  }

  async api(method: string, p: string, body?: unknown): Promise<{ status: number; json: any }> {
    const res = await fetch(`http://127.0.0.1:${this.env.SITEGATE_HTTP_PORT}${p}`, {
      method, headers: { authorization: `Bearer ${ADMIN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, json: await res.json() };
  }
}

/** Registers the fast device (its ingest rate raised where the gateway has one) and publishes `readings` QoS 1. */
async function flood(t: Target, readings: number): Promise<number> {
  // Without the raise the default 200 readings/s would throttle it (issue 15b); the tree before it has no such key (400).
  const raised = await t.api('PUT', `/api/v1/sites/${SITE}`, { name: SITE, regionCode: '330106', settings: { devices: { FAST: { ingestRate: { readingsPerS: 1e6, burst: 1e6 } } } } });
  if (raised.status === 400) await t.api('PUT', `/api/v1/sites/${SITE}`, { name: SITE, regionCode: '330106' });
  // Registered as a sensor reporting once a second, it sends 1 ms apart (the misconfigured
  // logger): the windowed rules judge its windows as full, so they evaluate every one.
  const { json } = await t.api('PUT', `/api/v1/sites/${SITE}/devices/FAST`, { kind: 'sensor', intervalS: 1 });
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${t.env.SITEGATE_MQTT_PORT}`, { username: 'FAST', password: json.secret, protocolVersion: 4, reconnectPeriod: 0 });
  client.on('error', () => {});
  const t0 = performance.now();
  const inflight = new Set<Promise<unknown>>();
  for (let b = 0; b < readings / BATCH; b++) {
    const batch = Array.from({ length: BATCH }, (_, i) => {
      const n = b * BATCH + i;
      return { id: `f${n}`, ts: T0 + n, metrics: { noise_dba: 50 + (n % 11), pm10: 40 + (n % 23) } };
    });
    const p = client.publishAsync(`sites/${SITE}/devices/FAST/telemetry`, JSON.stringify({ batch }), { qos: 1 });
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
    if (inflight.size >= WINDOW) await Promise.race(inflight);
  }
  await Promise.all(inflight);
  const ms = performance.now() - t0;
  client.end(true);
  return ms;
}

/** How far behind the checks are, as /readyz says (the tree before issue 15 does not say). */
async function checksLag(t: Target): Promise<number | undefined> {
  const { json } = await t.api('GET', '/readyz');
  const c = json.checks;
  if (!c) return undefined;
  return Math.max(c.lagRecords ?? 0, ...Object.values((c.checks ?? {}) as Record<string, { lagRecords: number }>).map((x) => x.lagRecords));
}

export async function runStopBench(o: StopBenchOptions = {}): Promise<Record<string, number | string>> {
  const readings = o.readings ?? Number(process.env.BENCH_STOP_READINGS ?? 100_000);
  const capMs = o.capMs ?? Number(process.env.BENCH_STOP_CAP_MS ?? 240_000);
  const tree = path.resolve(o.tree ?? process.env.SITEGATE_BENCH_TREE ?? ROOT);
  const log = o.log ?? console.log;
  const s = (ms: number | undefined) => (ms === undefined ? `> ${capMs / 1000} s` : `${(ms / 1000).toFixed(1)} s`);
  const influx: Influxd = await startInfluxd({ db: 'bench_stop' });
  const dirs: string[] = [];
  const target = async (db: string) => {
    await influx.query(`CREATE DATABASE "${db}"`);
    const dataDir = tempDir('sitegate-bench-stop-');
    dirs.push(dataDir);
    return new Target(tree, {
      SITEGATE_DATA_DIR: dataDir, SITEGATE_HTTP_HOST: '127.0.0.1', SITEGATE_MQTT_HOST: '127.0.0.1',
      SITEGATE_HTTP_PORT: String(await freePort()), SITEGATE_MQTT_PORT: String(await freePort()), SITEGATE_MQTT_WS_PORT: '0',
      SITEGATE_ADMIN_TOKEN: ADMIN, SITEGATE_SECRET_SCRYPT_N: '1024', SITEGATE_LOG_LEVEL: 'info',
      SITEGATE_INFLUX_URL: influx.url, SITEGATE_INFLUX_DB: db,
    });
  };
  const out: Record<string, number | string> = { tree: path.relative(ROOT, tree) || '.', readings };
  try {
    log(`tree ${tree}: ${readings} readings 1 ms apart, QoS 1`);
    // stop: SIGTERM right after the last PUBACK.
    const a = await target('bench_stop_a');
    await a.start(capMs);
    const floodMs = await flood(a, readings);
    const lagAtStop = await checksLag(a);
    const stop = await a.terminate(capMs);
    out.floodReadingsPerS = Math.round(readings / (floodMs / 1000));
    out.checksLagAtSigterm = lagAtStop ?? 'not reported';
    out.sigtermS = stop.ms === undefined ? `> ${capMs / 1000}` : stop.ms / 1000;
    out.peakRssMiB = Math.round(a.peak / MiB);
    log(`stop: ${out.floodReadingsPerS} readings/s acknowledged; SIGTERM with the checks ${out.checksLagAtSigterm} records behind: ${s(stop.ms)} (exit ${stop.code}); peak RSS ${out.peakRssMiB} MiB`);

    // restart: SIGKILL right after the last PUBACK, start again, SIGTERM as soon as it listens.
    const b = await target('bench_stop_b');
    await b.start(capMs);
    await flood(b, readings);
    await b.kill();
    const firstPeak = b.peak;
    const listenMs = await b.start(capMs);
    out.restartListenS = listenMs === undefined ? `> ${capMs / 1000}` : listenMs / 1000;
    if (listenMs !== undefined) {
      const lag = await checksLag(b);
      const stop2 = await b.terminate(capMs);
      out.checksLagAtListen = lag ?? 'not reported';
      out.sigtermAfterRestartS = stop2.ms === undefined ? `> ${capMs / 1000}` : stop2.ms / 1000;
      log(`restart after SIGKILL: listening after ${s(listenMs)}; SIGTERM then (checks ${out.checksLagAtListen} behind): ${s(stop2.ms)} (exit ${stop2.code})`);
    } else {
      log(`restart after SIGKILL: not listening within ${s(undefined)}`);
    }
    out.peakRssRestartMiB = Math.round(Math.max(firstPeak, b.peak) / MiB);
    log(`peak RSS (flood and restart) ${out.peakRssRestartMiB} MiB`);
  } finally {
    await influx.dispose();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  }
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await runStopBench(), null, 2));
}
