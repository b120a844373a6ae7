/**
 * Ingest benchmark: bare aedes (no auth, a `published` that only counts) and the peer a site would
 * otherwise deploy (Mosquitto → one QoS 1 subscriber, no storage) against the full durable
 * pipeline (buildApp: auth, ACL, zod validation, group-committed SQLite ledger with fsync before
 * every PUBACK, InfluxDB v1 sink to a real influxd), driven by one load generator
 * (test/bench/loadgen.ts) in its own process. Each target runs in its own child process
 * (test/bench/gatewayProcess.ts), so all are measured the same way and none shares an event
 * loop with the generator.
 *
 *   npx tsx test/bench/ingest.ts        (or `npm run bench`, which runs the other benches too)
 *
 * Environment knobs (all bounded): BENCH_DEVICES (20), BENCH_WINDOW (50), BENCH_MESSAGES (100000),
 * BENCH_WARMUP (10000), BENCH_PROFILE_MESSAGES (30000, 0 = no profile), BENCH_IDLE (5000, 0 = skip),
 * BENCH_PHASES (throughput,mqttjs,profile,idle; qos1 or qos0 alone run half of throughput; `devices` — not in the default —
 * runs BENCH_FEW_DEVICES (200) against BENCH_MANY_DEVICES (2000) connected devices at the same total in flight
 * BENCH_DEVICES_INFLIGHT (2000) and BENCH_MESSAGES per run), BENCH_MOSQUITTO (off leaves the Mosquitto peer out),
 * BENCH_MOSQUITTO_BIN (/usr/sbin/mosquitto).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { countPoints, startInfluxd, type Influxd } from '../support/influxd.ts';
import type { ClientKind, Command as LoadCommand, DeviceCreds, Reply as LoadReply } from './loadgen.ts';
import type { CommitStats, TargetCommand, TargetReply } from './gatewayProcess.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ADMIN_TOKEN = 'bench-admin-token-0123456789abcdef';
const SCRYPT_N = 1024;
const CLK_TCK = 100; // USER_HZ on Linux
/** Debian's Mosquitto, the peer broker (BENCH_MOSQUITTO=off leaves it out). */
const MOSQUITTO_BIN = process.env.BENCH_MOSQUITTO_BIN ?? '/usr/sbin/mosquitto';

export interface IngestBenchOptions {
  devices?: number;
  window?: number;
  messages?: number;
  warmup?: number;
  profileMessages?: number;
  idle?: number;
  /** Measured runs per side in each comparison, alternating bare and pipeline (default 3). */
  rounds?: number;
  /** Which parts to run: `throughput` (bare vs pipeline, QoS 1 and 0), `mqttjs` (QoS 1 again with mqtt.js clients), `profile`, `idle` (all by default). */
  phases?: string;
  log?: (line: string) => void;
}

export interface RunFigures {
  messages: number;
  seconds: number;
  msgPerS: number;
  ackP50Ms?: number;
  ackP95Ms?: number;
  ackP99Ms?: number;
  /** CPU cores busy during the run, per process (utime+stime / wall). */
  cpu: Record<string, number>;
  /** CPU µs per message, per process. */
  cpuUsPerMsg: Record<string, number>;
}

export interface PipelineFigures extends RunFigures {
  commit?: CommitStats;
  prometheus?: { groupMean: number; commitMeanMs: number; commitP50Ms: number; commitP95Ms: number };
  sinkLagAtEnd: number;
  influxCatchUpS: number;
  influxCount: number;
  influxExpected: number;
  ledgerCount: number;
}

export interface Comparison {
  qos: 0 | 1;
  client: ClientKind;
  rounds: number;
  /** The median run of each side (by msg/s). */
  bare: RunFigures;
  pipeline: PipelineFigures;
  /** The peer a user would otherwise deploy: Mosquitto → one QoS 1 subscriber (absent when the binary is not there). */
  mosquitto?: RunFigures;
  /** Median pipeline msg/s ÷ median bare msg/s. */
  ratio: number;
  roundRatios: number[];
  /** Median pipeline msg/s ÷ median Mosquitto msg/s (issue 11's goal: ≥ 1.0 at QoS 1, ≥ 0.7 at QoS 0). */
  ratioMosquitto?: number;
  roundRatiosMosquitto?: number[];
  /**
   * Bare CPU µs/msg ÷ pipeline CPU µs/msg (medians): the throughput ratio both would reach if
   * each had its CPU to itself — steadier than msg/s on a shared machine.
   */
  cpuRatio: { mainThread: number; process: number };
  runs: { bare: RunFigures[]; pipeline: RunFigures[]; mosquitto?: RunFigures[] };
}

export interface DevicesComparison {
  few: number; many: number; inflight: number; messages: number; rounds: number;
  /** Median runs of each side, gateway and bare aedes. */
  gateway: { few: RunFigures; many: RunFigures; ratio: number; roundRatios: number[]; runs: { few: RunFigures[]; many: RunFigures[] } };
  bare: { few: RunFigures; many: RunFigures; ratio: number; roundRatios: number[] };
  loadavg: number[];
}

export interface CpuSplit { thread: string; activeMs: number; stages: [string, number][]; categories: [string, number][]; functions: [string, number][] }

export interface IngestResults {
  machine: { cpus: number; node: string; influxd: string; nofile: number };
  params: { devices: number; window: number; messages: number; warmup: number; rounds: number; scryptN: number };
  loadavg: { start: number[]; end: number[] };
  /** QoS 1 and QoS 0 with the raw-socket clients; QoS 1 again with mqtt.js clients in the same generator process. */
  qos1?: Comparison;
  qos0?: Comparison;
  mqttjs?: Comparison;
  profile?: { messages: number; bare: CpuSplit[]; gateway: CpuSplit[] };
  /** Many connected devices against few at the same total in flight (issue 11: ≥ 0.9). */
  devices?: DevicesComparison;
  idle?: {
    devices: number; registerS: number; connectS: number; connected: number;
    rssBeforeMiB: number; rssAfterMiB: number; perConnectionBytes: number;
    bare?: { rssBeforeMiB: number; rssAfterMiB: number; perConnectionBytes: number; connected: number };
  };
}

// — child processes —

interface Rpc<C, R> {
  readonly pid: number;
  request(cmd: C, timeoutMs?: number): Promise<R>;
  exited: Promise<number | null>;
  kill(): void;
}

export function softNofile(): number {
  const line = fs.readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
  return Number(line?.split(/\s+/)[3] ?? 1024);
}

/**
 * Starts a TypeScript child with an IPC channel, through `sh -c 'ulimit -n …; exec node'` so that
 * thousands of sockets fit (exec keeps the pid, so /proc/<pid> is the node process).
 */
export function spawnTs<C extends { type: string }, R extends { type: string }>(entry: string, opts: { env?: NodeJS.ProcessEnv; execArgv?: string[]; nofile?: number } = {}): Rpc<C, R> {
  const args = [...(opts.execArgv ?? []), '--import', 'tsx', entry];
  const nofile = opts.nofile ?? 0;
  const child: ChildProcess = spawn('/bin/sh', ['-c', `${nofile ? `ulimit -n ${nofile} 2>/dev/null; ` : ''}exec "$0" "$@"`, process.execPath, ...args], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: opts.env ?? process.env,
  });
  const pending = new Map<number, { resolve: (r: R) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  let rid = 0;
  let exitCode: number | null | undefined;
  child.on('message', (m: R & { rid?: number }) => {
    const p = m.rid !== undefined ? pending.get(m.rid) : undefined;
    if (!p) { ready.resolve(m); return; }
    pending.delete(m.rid!);
    clearTimeout(p.timer);
    if (m.type === 'error') p.reject(new Error(`${path.basename(entry)}: ${(m as unknown as { message: string }).message}`));
    else p.resolve(m);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => {
    exitCode = code;
    for (const p of pending.values()) { clearTimeout(p.timer); p.reject(new Error(`${path.basename(entry)} exited (code ${code})`)); }
    pending.clear();
    resolve(code);
  }));
  const ready: { resolve: (m: R) => void } = { resolve: () => {} };
  return {
    pid: child.pid!,
    exited,
    kill: () => { if (exitCode === undefined) child.kill('SIGKILL'); },
    request(cmd, timeoutMs = 300_000) {
      if (exitCode !== undefined) return Promise.reject(new Error(`${path.basename(entry)} has exited`));
      return new Promise<R>((resolve, reject) => {
        const id = ++rid;
        const timer = setTimeout(() => { pending.delete(id); reject(new Error(`${path.basename(entry)}: no answer to ${cmd.type} in ${timeoutMs} ms`)); }, timeoutMs);
        pending.set(id, { resolve, reject, timer });
        child.send({ rid: id, ...cmd });
      });
    },
    ...{ waitReady: (timeoutMs: number) => new Promise<R>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${path.basename(entry)} not ready in ${timeoutMs} ms`)), timeoutMs);
      ready.resolve = (m) => { clearTimeout(t); resolve(m); };
      child.once('exit', (code) => { clearTimeout(t); reject(new Error(`${path.basename(entry)} exited during start (code ${code})`)); });
    }) },
  } as Rpc<C, R> & { waitReady(ms: number): Promise<R> };
}

export type Target = Rpc<TargetCommand, TargetReply> & { mqttPort: number; httpUrl?: string; dataDir?: string; profileDir?: string; brokerPid?: number };
export type LoadGen = Rpc<LoadCommand, LoadReply>;

/** The gateway runs with the V8 flags `npm start` gives it (BENCH_GATEWAY_NODE_ARGS overrides them, for A/B runs). */
function gatewayNodeArgs(): string[] {
  if (process.env.BENCH_GATEWAY_NODE_ARGS !== undefined) return process.env.BENCH_GATEWAY_NODE_ARGS.split(' ').filter(Boolean);
  const start = (JSON.parse(fs.readFileSync(path.resolve(HERE, '../../package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start;
  return start.split(' ').filter((a) => a.startsWith('--max-') || a.startsWith('--v8-') || a === '--single-threaded-gc');
}

/** `env`: more SITEGATE_* settings for the gateway (region mode: SITEGATE_DATABASE_URL, …). */
export async function startTarget(mode: 'bare' | 'mosquitto' | 'gateway', o: { influx?: { url: string; db: string }; profileDir?: string; nofile: number; env?: Record<string, string> }): Promise<Target> {
  const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SITEGATE_')));
  env.BENCH_TARGET = mode;
  env.BENCH_MOSQUITTO_BIN = MOSQUITTO_BIN;
  let dataDir: string | undefined;
  if (mode === 'gateway') {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sitegate-bench-'));
    Object.assign(env, {
      SITEGATE_DATA_DIR: dataDir, SITEGATE_HTTP_HOST: '127.0.0.1', SITEGATE_MQTT_HOST: '127.0.0.1',
      SITEGATE_HTTP_PORT: '0', SITEGATE_MQTT_PORT: '0', SITEGATE_MQTT_WS_PORT: '0',
      SITEGATE_ADMIN_TOKEN: ADMIN_TOKEN, SITEGATE_LOG_LEVEL: 'warn', SITEGATE_SECRET_SCRYPT_N: String(SCRYPT_N),
      ...(o.influx ? { SITEGATE_INFLUX_URL: o.influx.url, SITEGATE_INFLUX_DB: o.influx.db } : {}),
      ...o.env,
    });
  }
  const execArgv = ['--expose-gc', ...(mode === 'gateway' ? gatewayNodeArgs() : []), ...(o.profileDir ? ['--cpu-prof', '--cpu-prof-dir', o.profileDir] : [])];
  const rpc = spawnTs<TargetCommand, TargetReply>(path.join(HERE, 'gatewayProcess.ts'), { env, execArgv, nofile: o.nofile }) as Rpc<TargetCommand, TargetReply> & { waitReady(ms: number): Promise<TargetReply> };
  const ready = await rpc.waitReady(60_000);
  if (ready.type !== 'ready') throw new Error(`target: unexpected ${ready.type}`);
  return Object.assign(rpc, {
    mqttPort: ready.mqttPort, ...(ready.httpPort ? { httpUrl: `http://127.0.0.1:${ready.httpPort}` } : {}), ...(ready.brokerPid ? { brokerPid: ready.brokerPid } : {}),
    ...(dataDir ? { dataDir } : {}), ...(o.profileDir ? { profileDir: o.profileDir } : {}),
  });
}

export async function stopTarget(t: Target): Promise<void> {
  await t.request({ type: 'stop' }, 60_000).catch(() => t.kill());
  const timer = setTimeout(() => t.kill(), 15_000);
  await t.exited;
  clearTimeout(timer);
  if (t.dataDir) fs.rmSync(t.dataDir, { recursive: true, force: true });
}

// — /proc —

export function threadTicks(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  let tids: string[] = [];
  try { tids = fs.readdirSync(`/proc/${pid}/task`); } catch { return out; }
  for (const tid of tids) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(tid), Number(f[11]) + Number(f[12])); // utime + stime (fields 14, 15)
    } catch { /* thread ended */ }
  }
  return out;
}

function vmRssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

/** Our own child processes named `comm` (influxd is started by test/support/influxd.ts, which keeps its pid to itself). */
export function childrenNamed(comm: string): number[] {
  const out: number[] = [];
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (name === comm && ppid === process.pid) out.push(Number(p));
    } catch { /* gone */ }
  }
  return out;
}

/** CPU ticks of the processes watched during a run: the target split into its main thread and the rest. */
export class CpuMeter {
  private before = new Map<string, Map<number, number>>();
  constructor(private readonly procs: Record<string, number>) {}
  start(): void {
    for (const [name, pid] of Object.entries(this.procs)) this.before.set(name, threadTicks(pid));
  }
  /**
   * CPU per process over the run: cores busy (utime+stime / wall) and CPU µs per message, which
   * is steadier than msg/s when other work shares the machine. For the target also its main
   * thread, its busiest other thread (the ledger writer, in the gateway) and the remaining threads.
   */
  stop(seconds: number, messages: number): { cores: Record<string, number>; usPerMsg: Record<string, number> } {
    const cores: Record<string, number> = {};
    const usPerMsg: Record<string, number> = {};
    const put = (k: string, ticks: number) => {
      cores[k] = round(ticks / CLK_TCK / seconds);
      usPerMsg[k] = round((ticks / CLK_TCK / messages) * 1e6, 1);
    };
    for (const [name, pid] of Object.entries(this.procs)) {
      const b = this.before.get(name)!;
      const deltas = [...threadTicks(pid)].map(([tid, t]) => [tid, t - (b.get(tid) ?? 0)] as const);
      put(name, deltas.reduce((a, [, d]) => a + d, 0));
      if (name === 'gateway' || name === 'bare') {
        const others = deltas.filter(([tid]) => tid !== pid).map(([, d]) => d).sort((x, y) => y - x);
        put(`${name}.main-thread`, deltas.find(([tid]) => tid === pid)?.[1] ?? 0);
        put(`${name}.busiest-other-thread`, others[0] ?? 0);
        put(`${name}.other-threads`, others.slice(1).reduce((a, d) => a + d, 0));
      }
    }
    return { cores, usPerMsg };
  }
}

// — gateway API and metrics —

async function api(t: Target, method: string, p: string, body?: unknown): Promise<any> {
  const res = await fetch(`${t.httpUrl}${p}`, {
    method, headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}), signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${p}: ${res.status} ${text}`);
  return p === '/metrics' ? text : JSON.parse(text);
}

export async function registerDevices(t: Target, siteId: string, ids: string[], concurrency = 16): Promise<DeviceCreds[]> {
  await api(t, 'PUT', `/api/v1/sites/${siteId}`, { name: `bench ${siteId}`, regionCode: '330106' });
  const out: DeviceCreds[] = new Array(ids.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(concurrency, ids.length) }, async () => {
    while (next < ids.length) {
      const i = next++;
      const r = await api(t, 'PUT', `/api/v1/sites/${siteId}/devices/${ids[i]}`, { kind: 'sensor' });
      out[i] = { siteId, deviceId: ids[i]!, secret: r.secret as string };
    }
  }));
  return out;
}

type Histogram = { buckets: [number, number][]; sum: number; count: number };

function histogram(text: string, name: string): Histogram {
  const buckets: [number, number][] = [];
  let sum = 0, count = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}_bucket{`)) {
      const le = /le="([^"]+)"/.exec(line)![1]!;
      buckets.push([le === '+Inf' ? Infinity : Number(le), Number(line.slice(line.lastIndexOf(' ') + 1))]);
    } else if (line.startsWith(`${name}_sum`)) sum = Number(line.slice(line.lastIndexOf(' ') + 1));
    else if (line.startsWith(`${name}_count`)) count = Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return { buckets, sum, count };
}

const diff = (a: Histogram, b: Histogram): Histogram => ({
  buckets: b.buckets.map(([le, n], i) => [le, n - (a.buckets[i]?.[1] ?? 0)]), sum: b.sum - a.sum, count: b.count - a.count,
});

/** Prometheus' histogram_quantile: linear interpolation inside the bucket. */
function histogramQuantile(h: Histogram, q: number): number {
  const rank = q * h.count;
  let prevLe = 0, prevN = 0;
  for (const [le, n] of h.buckets) {
    if (n >= rank) {
      if (le === Infinity) return prevLe;
      return prevLe + ((le - prevLe) * (rank - prevN)) / Math.max(1, n - prevN);
    }
    prevLe = le; prevN = n;
  }
  return NaN;
}

// — CPU profiles —

interface ProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number; children?: number[] }
interface CpuProfile { nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[]; timeDeltas: number[] }

function category(url: string, fn: string): string {
  if (!url) {
    if (fn === '(garbage collector)') return 'V8 garbage collector';
    if (fn === '(program)') return 'V8/native (program)';
    return 'native builtins';
  }
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 14).split('/');
    const pkg = rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
    return `npm ${pkg}`;
  }
  if (url.startsWith('node:')) {
    const m = url.slice(5);
    if (/streams|stream_base|^net|^stream/.test(m)) return 'node streams/net';
    if (/worker|messageport/.test(m)) return 'node worker messaging';
    if (/timers|process\/task_queues|async_hooks/.test(m)) return 'node timers/ticks';
    return 'node core (other)';
  }
  const g = /\/(gateway\/src\/[^/]+|schemas\/src|test\/bench)\//.exec(url);
  if (g) return g[1]!;
  return url.replace(/^file:\/\//, '').replace(process.cwd() + '/', '');
}

/**
 * Where the gateway's own stages sit in a stack: the innermost gateway/src frame of a sample names
 * the stage it works for (zod called by validate.ts counts for ingest); samples with none are the
 * broker and the runtime (aedes, mqtt-packet, sockets, timers), GC is its own line.
 */
function stageOf(url: string, functionName: string): string | undefined {
  if (functionName === '(garbage collector)') return 'GC';
  const m = /\/gateway\/src\/([^/]+)\//.exec(url);
  return m ? m[1] : undefined;
}

/** Self time by category, by function and by gateway stage inside [fromUs, toUs] (CLOCK_MONOTONIC µs), idle excluded. */
function summariseProfile(file: string, fromUs: number, toUs: number): { activeMs: number; url: string[]; categories: [string, number][]; functions: [string, number][]; stages: [string, number][] } {
  const p = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const stageOfNode = new Map<number, string>();
  const stageFor = (id: number): string => {
    const cached = stageOfNode.get(id);
    if (cached) return cached;
    let stage: string | undefined;
    for (let x: number | undefined = id; x !== undefined && !stage; x = parent.get(x)) {
      const cf = byId.get(x)!.callFrame;
      stage = stageOf(cf.url.replace(/\?.*$/, ''), cf.functionName);
    }
    const out = stage ?? 'outside gateway/src (aedes, mqtt-packet, net, timers)';
    stageOfNode.set(id, out);
    return out;
  };
  const cat = new Map<string, number>();
  const fns = new Map<string, number>();
  const stages = new Map<string, number>();
  const urls = new Set<string>();
  let t = p.startTime, activeUs = 0;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i]!;
    const dt = p.timeDeltas[i + 1] ?? 0;
    if (t < fromUs || t > toUs) continue;
    const n = byId.get(p.samples[i]!)!;
    const { functionName, lineNumber } = n.callFrame;
    const url = n.callFrame.url.replace(/\?.*$/, ''); // tsx appends ?tsx-namespace=…
    if (functionName === '(idle)' || functionName === '(root)') continue;
    activeUs += dt;
    if (url) urls.add(url);
    const c = category(url, functionName);
    cat.set(c, (cat.get(c) ?? 0) + dt);
    const key = `${functionName || '(anonymous)'} ${url ? `${category(url, functionName)}:${path.basename(url)}:${lineNumber + 1}` : ''}`.trim();
    fns.set(key, (fns.get(key) ?? 0) + dt);
    const st = stageFor(n.id);
    stages.set(st, (stages.get(st) ?? 0) + dt);
  }
  const top = (m: Map<string, number>, n: number) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, v]) => [k, Math.round(v / 100) / 10] as [string, number]);
  return { activeMs: Math.round(activeUs / 1000), url: [...urls], categories: top(cat, 14), functions: top(fns, 14), stages: top(stages, 14) };
}

function threadName(urls: string[], i: number): string {
  if (urls.some((u) => u.includes('ledgerWorker'))) return 'ledger writer thread';
  if (urls.some((u) => u.includes('gatewayProcess') || u.includes('/aedes/'))) return 'main thread';
  return `thread ${i}`;
}

export function splitProfiles(dir: string, fromUs: number, toUs: number): CpuSplit[] {
  const out: CpuSplit[] = [];
  fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).forEach((f, i) => {
    const s = summariseProfile(path.join(dir, f), fromUs, toUs);
    if (s.activeMs < 20) return; // the tsx loader thread and other bystanders
    out.push({ thread: threadName(s.url, i), activeMs: s.activeMs, stages: s.stages, categories: s.categories, functions: s.functions });
  });
  return out.sort((a, b) => b.activeMs - a.activeMs);
}

// — the runs —

/** Event time of the readings: each device reports every TS_STEP_MS, runs follow one another, all in the past. */
const TS_STEP_MS = 10_000;
let tsCursor = Date.now() - 45 * 86_400_000;

async function runLoad(load: LoadGen, target: Target, o: { devices: DeviceCreds[]; perDevice: number; qos: 0 | 1; window: number; tag: string; meter?: CpuMeter; client?: ClientKind }): Promise<{ figures: RunFigures; endAt: number; startMonoUs: number; endMonoUs: number }> {
  const tsBase = tsCursor;
  tsCursor += (o.perDevice + 1) * TS_STEP_MS;
  if (tsCursor > Date.now()) throw new Error('bench event time ran into the present: fewer messages per run, or a smaller TS_STEP_MS');
  const prep = await load.request({ type: 'prepare', port: target.mqttPort, devices: o.devices, perDevice: o.perDevice, tag: o.tag, tsBase, tsStepMs: TS_STEP_MS, qos: o.qos, client: o.client ?? 'raw' });
  if (prep.type !== 'prepared') throw new Error(`loadgen: ${prep.type}`);
  const before = await target.request({ type: 'stats' });
  if (before.type !== 'stats') throw new Error('stats');
  const total = o.devices.length * o.perDevice;
  const reached = target.request({ type: 'waitCount', target: before.count + total, timeoutMs: 600_000 }, 660_000);
  reached.catch(() => {}); // awaited below; a failed run must not leave it unhandled
  o.meter?.start();
  const done = await load.request({ type: 'run', window: o.window }, 660_000);
  if (done.type !== 'done') throw new Error(`loadgen: ${done.type}`);
  let endAt = done.endedAt, endMonoUs = done.endedMonoUs;
  if (o.qos === 0) {
    // No PUBACK for QoS 0: the run ends when the target has taken in every message (ledger lastSeq / published count).
    const r = await reached;
    if (r.type !== 'reached' || r.timedOut) throw new Error(`QoS 0: target reached only ${r.type === 'reached' ? r.count - before.count : '?'} of ${total}`);
    endAt = r.at; endMonoUs = r.atMonoUs;
  } else {
    // Every PUBACK follows the commit, so the count is there already; a shortfall means rejections.
    const r = await Promise.race([reached, new Promise<null>((res) => setTimeout(() => res(null), 10_000))]);
    if (!r || r.type !== 'reached' || r.timedOut) throw new Error(`QoS 1: ${done.acked} acked but the target did not count ${total} (rejected messages?)`);
  }
  const seconds = (endAt - done.startedAt) / 1000;
  const messages = o.qos === 1 ? done.acked : total;
  const { cores: cpu, usPerMsg: cpuUsPerMsg } = o.meter?.stop(seconds, messages) ?? { cores: {}, usPerMsg: {} };
  return {
    figures: {
      messages, seconds: Math.round(seconds * 1000) / 1000, msgPerS: Math.round(messages / seconds), cpu, cpuUsPerMsg,
      ...(done.ackLatencyMs ? { ackP50Ms: round(done.ackLatencyMs.p50), ackP95Ms: round(done.ackLatencyMs.p95), ackP99Ms: round(done.ackLatencyMs.p99) } : {}),
    },
    endAt, startMonoUs: done.startedMonoUs, endMonoUs,
  };
}

const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
const MiB = 1024 * 1024;

function benchDevices(n: number, prefix: string): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(String(n - 1).length, '0')}`);
}

type Opts = Required<Omit<IngestBenchOptions, 'log' | 'phases' | 'rounds'>>;

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[xs.length >> 1]!;
const loadavg = () => round(os.loadavg()[0]!, 1);

/**
 * One comparison, bare aedes against the full pipeline, with both targets running (in their own
 * processes) and measured runs alternating between them, `rounds` times: the box is shared, so
 * other work hits both sides alike, and the median run of each side is reported.
 */
async function comparePhase(load: LoadGen, influx: Influxd, o: Opts, c: { qos: 0 | 1; client: ClientKind; rounds: number }, nofile: number, log: (s: string) => void): Promise<Comparison> {
  const db = `bench_q${c.qos}_${c.client}_${Date.now()}`;
  await influx.query(`CREATE DATABASE "${db}"`);
  const bare = await startTarget('bare', { nofile });
  const withMosquitto = process.env.BENCH_MOSQUITTO !== 'off' && fs.existsSync(MOSQUITTO_BIN);
  if (!withMosquitto) log(`  (no Mosquitto peer: ${process.env.BENCH_MOSQUITTO === 'off' ? 'BENCH_MOSQUITTO=off' : `${MOSQUITTO_BIN} is not there`})`);
  const mosq = withMosquitto ? await startTarget('mosquitto', { nofile }) : undefined;
  const gw = await startTarget('gateway', { influx: { url: influx.url, db }, nofile });
  try {
    const ids = benchDevices(o.devices, 'dev-');
    const bareDevices: DeviceCreds[] = ids.map((deviceId) => ({ siteId: 'S-BENCH', deviceId }));
    const gwDevices = await registerDevices(gw, 'S-BENCH', ids);
    const influxPid = childrenNamed('influxd')[0];
    const bareMeter = new CpuMeter({ bare: bare.pid, loadgen: load.pid });
    const gwMeter = new CpuMeter({ gateway: gw.pid, loadgen: load.pid, ...(influxPid ? { influxd: influxPid } : {}) });
    // The peer's CPU: the broker process and the subscriber's (a Node process, like the gateway).
    const mosqMeter = mosq ? new CpuMeter({ mosquitto: mosq.brokerPid!, subscriber: mosq.pid, loadgen: load.pid }) : undefined;
    const warmPer = Math.ceil(o.warmup / o.devices);
    const per = Math.ceil(o.messages / o.devices);
    const base = { qos: c.qos, window: o.window, client: c.client };
    await runLoad(load, bare, { ...base, devices: bareDevices, perDevice: warmPer, tag: 'warm' });
    if (mosq) await runLoad(load, mosq, { ...base, devices: bareDevices, perDevice: warmPer, tag: 'warm' });
    await runLoad(load, gw, { ...base, devices: gwDevices, perDevice: warmPer, tag: 'warm' });
    await gw.request({ type: 'waitSinkIdle', timeoutMs: 120_000 }, 130_000);
    await gw.request({ type: 'resetStats' });
    const metricsBefore = await api(gw, 'GET', '/metrics') as string;
    const bareRuns: RunFigures[] = [];
    const gwRuns: RunFigures[] = [];
    const mosqRuns: RunFigures[] = [];
    let lastEnd = 0;
    const sides = ['bare', ...(mosq ? ['mosquitto'] as const : []), 'gateway'] as const;
    for (let r = 0; r < c.rounds; r++) {
      const la = loadavg();
      // Rotate who goes first, so a trend in the background load favours none.
      for (let k = 0; k < sides.length; k++) {
        const side = sides[(k + r) % sides.length]!;
        const run = side === 'bare'
          ? await runLoad(load, bare, { ...base, devices: bareDevices, perDevice: per, tag: `r${r}`, meter: bareMeter })
          : side === 'mosquitto'
            ? await runLoad(load, mosq!, { ...base, devices: bareDevices, perDevice: per, tag: `r${r}`, meter: mosqMeter! })
            : await runLoad(load, gw, { ...base, devices: gwDevices, perDevice: per, tag: `r${r}`, meter: gwMeter });
        (side === 'bare' ? bareRuns : side === 'mosquitto' ? mosqRuns : gwRuns).push(run.figures);
        if (side === 'gateway') lastEnd = run.endAt;
      }
      const b = bareRuns[r]!, g = gwRuns[r]!, m = mosqRuns[r];
      log(`  QoS ${c.qos} ${c.client} round ${r + 1}/${c.rounds}: bare ${b.msgPerS} msg/s, ${m ? `mosquitto ${m.msgPerS} msg/s, ` : ''}pipeline ${g.msgPerS} msg/s (÷bare ${round(g.msgPerS / b.msgPerS, 3)}` +
        `${m ? `, ÷mosquitto ${round(g.msgPerS / m.msgPerS, 3)}` : ''}; gateway CPU ${g.cpuUsPerMsg.gateway} µs/msg (main thread ${g.cpuUsPerMsg['gateway.main-thread']}), ` +
        `bare ${b.cpuUsPerMsg.bare}${m ? `, mosquitto ${m.cpuUsPerMsg.mosquitto} + subscriber ${m.cpuUsPerMsg.subscriber}` : ''}; PUBACK p50 ${g.ackP50Ms ?? '–'} ms; load average ${la})`);
    }
    const stats = await gw.request({ type: 'stats' });
    if (stats.type !== 'stats') throw new Error('stats');
    const metricsAfter = await api(gw, 'GET', '/metrics') as string;
    // InfluxDB catches up after the load: how far behind it was at the end of the last run, how long it took.
    const lagAtEnd = Number(/sitegate_sink_lag_records\{[^}]*\} (\d+)/.exec(metricsAfter)?.[1] ?? NaN);
    const idle = await gw.request({ type: 'waitSinkIdle', timeoutMs: 300_000 }, 310_000);
    if (idle.type !== 'sinkIdle') throw new Error('sinkIdle');
    if (idle.timedOut) log(`  ! sink still ${idle.lagRecords} records behind after 300 s (${idle.lastError ?? 'no error'})`);
    const expected = o.devices * (warmPer + c.rounds * per);
    const influxCount = await countPoints(influx, 'reading', '*', { db }); // every point has temperature_c: count(*) = points
    const g = diff(histogram(metricsBefore, 'sitegate_ledger_group_size'), histogram(metricsAfter, 'sitegate_ledger_group_size'));
    const cm = diff(histogram(metricsBefore, 'sitegate_ledger_commit_seconds'), histogram(metricsAfter, 'sitegate_ledger_commit_seconds'));
    const pick = (runs: RunFigures[]) => runs.find((x) => x.msgPerS === median(runs.map((y) => y.msgPerS)))!;
    const pipeline: PipelineFigures = {
      ...pick(gwRuns),
      ...(stats.commit ? { commit: stats.commit } : {}),
      prometheus: { groupMean: round(g.sum / g.count, 1), commitMeanMs: round((cm.sum / cm.count) * 1000), commitP50Ms: round(histogramQuantile(cm, 0.5) * 1000), commitP95Ms: round(histogramQuantile(cm, 0.95) * 1000) },
      sinkLagAtEnd: lagAtEnd, influxCatchUpS: round(Math.max(0, (idle.at - lastEnd) / 1000), 3), influxCount, influxExpected: expected, ledgerCount: stats.count,
    };
    const out: Comparison = {
      qos: c.qos, client: c.client, rounds: c.rounds, bare: pick(bareRuns), pipeline,
      ratio: round(median(gwRuns.map((x) => x.msgPerS)) / median(bareRuns.map((x) => x.msgPerS)), 3),
      roundRatios: gwRuns.map((x, i) => round(x.msgPerS / bareRuns[i]!.msgPerS, 3)),
      ...(mosqRuns.length ? {
        mosquitto: pick(mosqRuns),
        ratioMosquitto: round(median(gwRuns.map((x) => x.msgPerS)) / median(mosqRuns.map((x) => x.msgPerS)), 3),
        roundRatiosMosquitto: gwRuns.map((x, i) => round(x.msgPerS / mosqRuns[i]!.msgPerS, 3)),
      } : {}),
      cpuRatio: {
        mainThread: round(median(bareRuns.map((x) => x.cpuUsPerMsg['bare.main-thread']!)) / median(gwRuns.map((x) => x.cpuUsPerMsg['gateway.main-thread']!)), 3),
        process: round(median(bareRuns.map((x) => x.cpuUsPerMsg.bare!)) / median(gwRuns.map((x) => x.cpuUsPerMsg.gateway!)), 3),
      },
      runs: { bare: bareRuns, pipeline: gwRuns, ...(mosqRuns.length ? { mosquitto: mosqRuns } : {}) },
    };
    log(`  QoS ${c.qos} ${c.client}: ratio of medians ${out.ratio} (rounds ${out.roundRatios.join(', ')})${out.ratioMosquitto !== undefined ? `, ÷mosquitto ${out.ratioMosquitto} (rounds ${out.roundRatiosMosquitto!.join(', ')})` : ''}; CPU-cost ratio, main thread ${out.cpuRatio.mainThread}, whole process ${out.cpuRatio.process}; ` +
      `${pipeline.prometheus!.groupMean} records/fsync, commit p50 ${pipeline.commit?.commitMsP50.toFixed(2)} ms p95 ${pipeline.commit?.commitMsP95.toFixed(2)} ms; ` +
      `influx ${lagAtEnd} behind at end, caught up ${pipeline.influxCatchUpS} s later; count(*) ${influxCount}/${expected}${influxCount === expected ? ' ✓' : ' ✗'}`);
    return out;
  } finally {
    await Promise.all([stopTarget(bare), stopTarget(gw), ...(mosq ? [stopTarget(mosq)] : [])]);
  }
}

/**
 * Issue 11: throughput with many connected devices against few at the same total load. Both
 * sides keep the same number of QoS 1 publishes in flight in all (few × window = many × window)
 * and send the same number of messages per run, so what differs is the number of connections the
 * broker serves (and the per-connection state: sessions, rate-limit buckets, ACL lookups).
 * Gateway and bare aedes each run few and many alternately, `rounds` times.
 */
async function devicesPhase(load: LoadGen, influx: Influxd, o: Opts, rounds: number, nofile: number, log: (s: string) => void): Promise<DevicesComparison> {
  const few = envInt('BENCH_FEW_DEVICES', 200), many = envInt('BENCH_MANY_DEVICES', 2000), inflight = envInt('BENCH_DEVICES_INFLIGHT', 2000);
  if (inflight % few || inflight % many) throw new Error(`BENCH_DEVICES_INFLIGHT ${inflight} must be a multiple of ${few} and ${many}`);
  const db = `bench_devices_${Date.now()}`;
  await influx.query(`CREATE DATABASE "${db}"`);
  const bare = await startTarget('bare', { nofile });
  const gw = await startTarget('gateway', { influx: { url: influx.url, db }, nofile });
  try {
    const ids = benchDevices(many, 'dev-');
    const t0 = performance.now();
    const gwAll = await registerDevices(gw, 'S-BENCH', ids, 32);
    log(`  devices: registered ${many} in ${((performance.now() - t0) / 1000).toFixed(1)} s; ${few} vs ${many} connected, ${inflight} in flight in all, ${o.messages} messages per run`);
    const bareAll: DeviceCreds[] = ids.map((deviceId) => ({ siteId: 'S-BENCH', deviceId }));
    const influxPid = childrenNamed('influxd')[0];
    const gwMeter = new CpuMeter({ gateway: gw.pid, loadgen: load.pid, ...(influxPid ? { influxd: influxPid } : {}) });
    const bareMeter = new CpuMeter({ bare: bare.pid, loadgen: load.pid });
    const side = (n: number) => ({ n, window: inflight / n, per: Math.ceil(o.messages / n) });
    const sides = [side(few), side(many)];
    // The first `n` devices of the registered list (few is a subset of many).
    for (const s of sides) {
      await runLoad(load, bare, { devices: bareAll.slice(0, s.n), perDevice: Math.max(1, Math.ceil(o.warmup / s.n)), qos: 1, window: s.window, tag: `dwarm${s.n}` });
      await runLoad(load, gw, { devices: gwAll.slice(0, s.n), perDevice: Math.max(1, Math.ceil(o.warmup / s.n)), qos: 1, window: s.window, tag: `dwarm${s.n}` });
    }
    await gw.request({ type: 'waitSinkIdle', timeoutMs: 120_000 }, 130_000);
    const runs = { gateway: { few: [] as RunFigures[], many: [] as RunFigures[] }, bare: { few: [] as RunFigures[], many: [] as RunFigures[] } };
    const la: number[] = [];
    for (let r = 0; r < rounds; r++) {
      la.push(loadavg());
      for (let k = 0; k < sides.length; k++) {
        const s = sides[(k + r) % sides.length]!;
        const key = s.n === few ? 'few' : 'many';
        runs.gateway[key].push((await runLoad(load, gw, { devices: gwAll.slice(0, s.n), perDevice: s.per, qos: 1, window: s.window, tag: `d${r}-${s.n}`, meter: gwMeter })).figures);
        await gw.request({ type: 'waitSinkIdle', timeoutMs: 120_000 }, 130_000);
        runs.bare[key].push((await runLoad(load, bare, { devices: bareAll.slice(0, s.n), perDevice: s.per, qos: 1, window: s.window, tag: `d${r}-${s.n}`, meter: bareMeter })).figures);
      }
      const g = runs.gateway, b = runs.bare;
      log(`  devices round ${r + 1}/${rounds}: gateway ${few} devices ${g.few[r]!.msgPerS} msg/s (CPU ${g.few[r]!.cpuUsPerMsg.gateway} µs/msg, PUBACK p50 ${g.few[r]!.ackP50Ms} ms), ` +
        `${many} devices ${g.many[r]!.msgPerS} msg/s (CPU ${g.many[r]!.cpuUsPerMsg.gateway}, PUBACK p50 ${g.many[r]!.ackP50Ms} ms) → ÷ ${round(g.many[r]!.msgPerS / g.few[r]!.msgPerS, 3)}; ` +
        `bare ${b.few[r]!.msgPerS} → ${b.many[r]!.msgPerS} (÷ ${round(b.many[r]!.msgPerS / b.few[r]!.msgPerS, 3)}); load average ${la[r]}`);
    }
    const pick = (xs: RunFigures[]) => xs.find((x) => x.msgPerS === median(xs.map((y) => y.msgPerS)))!;
    const cmp = (x: { few: RunFigures[]; many: RunFigures[] }) => ({
      few: pick(x.few), many: pick(x.many),
      ratio: round(median(x.many.map((f) => f.msgPerS)) / median(x.few.map((f) => f.msgPerS)), 3),
      roundRatios: x.many.map((f, i) => round(f.msgPerS / x.few[i]!.msgPerS, 3)),
    });
    const out: DevicesComparison = { few, many, inflight, messages: o.messages, rounds, gateway: { ...cmp(runs.gateway), runs: runs.gateway }, bare: cmp(runs.bare), loadavg: la };
    log(`  devices: gateway ${many} ÷ ${few} = ${out.gateway.ratio} (rounds ${out.gateway.roundRatios.join(', ')}; issue 11 goal ≥ 0.9), bare aedes ${out.bare.ratio} (rounds ${out.bare.roundRatios.join(', ')})`);
    return out;
  } finally {
    await Promise.all([stopTarget(bare), stopTarget(gw)]);
  }
}

async function profilePhase(load: LoadGen, influx: Influxd, o: Opts, nofile: number): Promise<NonNullable<IngestResults['profile']>> {
  const out: { bare: CpuSplit[]; gateway: CpuSplit[] } = { bare: [], gateway: [] };
  for (const mode of ['bare', 'gateway'] as const) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `sitegate-prof-${mode}-`));
    const db = `bench_prof_${Date.now()}`;
    if (mode === 'gateway') await influx.query(`CREATE DATABASE "${db}"`);
    const target = await startTarget(mode, { ...(mode === 'gateway' ? { influx: { url: influx.url, db } } : {}), profileDir: dir, nofile });
    let window = { from: 0, to: 0 };
    try {
      const ids = benchDevices(o.devices, 'dev-');
      const devices = mode === 'gateway' ? await registerDevices(target, 'S-BENCH', ids) : ids.map((deviceId) => ({ siteId: 'S-BENCH', deviceId }));
      await runLoad(load, target, { devices, perDevice: Math.ceil(o.warmup / o.devices), qos: 1, window: o.window, tag: 'pwarm' });
      const run = await runLoad(load, target, { devices, perDevice: Math.ceil(o.profileMessages / o.devices), qos: 1, window: o.window, tag: 'prof' });
      window = { from: run.startMonoUs, to: run.endMonoUs };
    } finally {
      await stopTarget(target);
    }
    out[mode] = splitProfiles(dir, window.from, window.to);
    if (process.env.BENCH_KEEP_PROFILES) console.log(`  ${mode} profiles kept in ${dir} (run window ${window.from}–${window.to} µs)`);
    else fs.rmSync(dir, { recursive: true, force: true });
  }
  return { messages: o.profileMessages, ...out };
}

async function idlePhase(load: LoadGen, influx: Influxd, n: number, nofile: number, log: (s: string) => void): Promise<NonNullable<IngestResults['idle']>> {
  const rssSettled = async (t: Target) => {
    await t.request({ type: 'gc' });
    await new Promise((r) => setTimeout(r, 500));
    await t.request({ type: 'gc' });
    return vmRssBytes(t.pid);
  };
  // Bare aedes first, for scale.
  let bare: NonNullable<IngestResults['idle']>['bare'];
  {
    const t = await startTarget('bare', { nofile });
    try {
      const before = await rssSettled(t);
      const r = await load.request({ type: 'idle', port: t.mqttPort, devices: benchDevices(n, 'idle-').map((deviceId) => ({ siteId: 'S-IDLE', deviceId })), keepalive: 60, concurrency: 100 }, 300_000);
      if (r.type !== 'idle') throw new Error('idle');
      await new Promise((res) => setTimeout(res, 1000));
      const after = await rssSettled(t);
      bare = { rssBeforeMiB: round(before / MiB, 1), rssAfterMiB: round(after / MiB, 1), perConnectionBytes: Math.round((after - before) / Math.max(1, r.connected)), connected: r.connected };
      await load.request({ type: 'close' });
    } finally {
      await stopTarget(t);
    }
  }
  const db = `bench_idle_${Date.now()}`;
  await influx.query(`CREATE DATABASE "${db}"`);
  const t = await startTarget('gateway', { influx: { url: influx.url, db }, nofile });
  try {
    const t0 = performance.now();
    const devices = await registerDevices(t, 'S-IDLE', benchDevices(n, 'idle-'), 32);
    const registerS = (performance.now() - t0) / 1000;
    log(`  registered ${n} devices in ${registerS.toFixed(1)} s (scrypt N=${SCRYPT_N}, bench only)`);
    const before = await rssSettled(t);
    const r = await load.request({ type: 'idle', port: t.mqttPort, devices, keepalive: 60, concurrency: 100 }, 600_000);
    if (r.type !== 'idle') throw new Error('idle');
    if (r.failed) log(`  ! ${r.failed} of ${n} idle clients failed to connect: ${r.firstError}`);
    await new Promise((res) => setTimeout(res, 1000));
    const stats = await t.request({ type: 'stats' });
    const after = await rssSettled(t);
    const clients = stats.type === 'stats' ? stats.clients : NaN;
    log(`  ${clients} idle devices connected in ${(r.connectMs / 1000).toFixed(1)} s (open-files limit ${nofile} in the gateway and generator): RSS ${round(before / MiB, 1)} → ${round(after / MiB, 1)} MiB`);
    await load.request({ type: 'close' });
    return {
      devices: n, registerS: round(registerS, 1), connectS: round(r.connectMs / 1000, 1), connected: r.connected,
      rssBeforeMiB: round(before / MiB, 1), rssAfterMiB: round(after / MiB, 1), perConnectionBytes: Math.round((after - before) / Math.max(1, r.connected)),
      ...(bare ? { bare } : {}),
    };
  } finally {
    await stopTarget(t);
  }
}

const envInt = (k: string, d: number) => (process.env[k] !== undefined && process.env[k] !== '' ? Number(process.env[k]) : d);

export async function runIngestBench(opts: IngestBenchOptions = {}): Promise<IngestResults> {
  const log = opts.log ?? ((s: string) => console.log(s));
  const o = {
    devices: opts.devices ?? envInt('BENCH_DEVICES', 20), window: opts.window ?? envInt('BENCH_WINDOW', 50),
    messages: opts.messages ?? envInt('BENCH_MESSAGES', 100_000), warmup: opts.warmup ?? envInt('BENCH_WARMUP', 10_000),
    profileMessages: opts.profileMessages ?? envInt('BENCH_PROFILE_MESSAGES', 30_000), idle: opts.idle ?? envInt('BENCH_IDLE', 5000),
  };
  const rounds = opts.rounds ?? envInt('BENCH_ROUNDS', 3);
  const phases = new Set((opts.phases ?? process.env.BENCH_PHASES ?? 'throughput,mqttjs,profile,idle').split(','));
  const soft = softNofile();
  // Each idle client is one fd in the generator and one in the target; ask the children for room.
  const nofile = Math.max(soft, o.idle + 1024, envInt('BENCH_MANY_DEVICES', 2000) + 1024);
  const influx = await startInfluxd({ db: 'bench' });
  const influxVersion = ((await fetch(`${influx.url}/ping`)).headers.get('x-influxdb-version')) ?? '?';
  const load = spawnTs<LoadCommand, LoadReply>(path.join(HERE, 'loadgen.ts'), { nofile });
  const results: Partial<IngestResults> = {
    machine: { cpus: os.availableParallelism(), node: process.version, influxd: influxVersion, nofile },
    params: { devices: o.devices, window: o.window, messages: o.messages, warmup: o.warmup, rounds, scryptN: SCRYPT_N },
    loadavg: { start: os.loadavg().map((x) => round(x, 1)), end: [] },
  };
  try {
    log(`ingest: ${o.devices} devices × window ${o.window}, ${o.messages} messages per run, ${rounds} rounds per side after ${o.warmup} warm-up; ${results.machine!.cpus} CPUs, influxd ${influxVersion}, load average ${results.loadavg!.start.join(' ')}`);
    log(`  (device secrets are hashed with scrypt N=${SCRYPT_N} in this bench, not the production 16384, to keep set-up short;`);
    log('   bare aedes: no auth, a `published` handler that only counts; both targets in child processes, the generator in a third)');
    // `qos1` / `qos0` run one half of `throughput` (short A/B runs on a shared box).
    if (phases.has('throughput') || phases.has('qos1')) results.qos1 = await comparePhase(load, influx, o, { qos: 1, client: 'raw', rounds }, nofile, log);
    if (phases.has('throughput') || phases.has('qos0')) results.qos0 = await comparePhase(load, influx, o, { qos: 0, client: 'raw', rounds }, nofile, log);
    if (phases.has('mqttjs')) {
      log('  the same QoS 1 comparison with mqtt.js clients in the generator:');
      results.mqttjs = await comparePhase(load, influx, o, { qos: 1, client: 'mqttjs', rounds }, nofile, log);
    }
    if (phases.has('devices')) results.devices = await devicesPhase(load, influx, o, rounds, nofile, log);
    if (o.profileMessages > 0 && phases.has('profile')) {
      log(`  profiling a ${o.profileMessages}-message QoS 1 run of each target (--cpu-prof)…`);
      results.profile = await profilePhase(load, influx, o, nofile);
    }
    if (o.idle > 0 && phases.has('idle')) results.idle = await idlePhase(load, influx, o.idle, nofile, log);
  } finally {
    load.kill();
    await influx.dispose().catch(() => {});
  }
  results.loadavg!.end = os.loadavg().map((x) => round(x, 1));
  return results as IngestResults;
}

/** The ingest section of the final table: [label, value] rows. */
export function ingestTable(r: IngestResults): [string, string][] {
  const rows: [string, string][] = [];
  const cpu = (c: Record<string, number>) => Object.entries(c).map(([k, v]) => `${k} ${v}`).join(', ');
  rows.push(['setup', `${r.params.devices} devices × window ${r.params.window}, ${r.params.messages} msgs per run, ${r.params.rounds} alternating rounds per side (+${r.params.warmup} warm-up); ${r.machine.cpus} CPUs shared (load average ${r.loadavg.start[0]} → ${r.loadavg.end[0]}), node ${r.machine.node}, influxd ${r.machine.influxd}`]);
  const ack = (f: RunFigures) => (f.ackP50Ms !== undefined ? `  PUBACK p50 ${f.ackP50Ms} ms, p95 ${f.ackP95Ms} ms` : '');
  for (const [name, cmp] of [['QoS 1', r.qos1], ['QoS 0 telemetry', r.qos0], ['QoS 1, mqtt.js clients', r.mqttjs]] as const) {
    if (!cmp) continue;
    rows.push([`bare aedes, ${name}`, `${cmp.bare.msgPerS} msg/s (median run)${ack(cmp.bare)}`]);
    if (cmp.mosquitto) rows.push([`Mosquitto → subscriber, ${name}`, `${cmp.mosquitto.msgPerS} msg/s (median run)${ack(cmp.mosquitto)}; CPU ${cpu(cmp.mosquitto.cpuUsPerMsg)} µs/msg`]);
    rows.push([`full pipeline, ${name}`, `${cmp.pipeline.msgPerS} msg/s (median run)${ack(cmp.pipeline)}`]);
    rows.push([`ratio ÷ bare aedes, ${name}`, `${cmp.ratio}  (rounds ${cmp.roundRatios.join(', ')})`]);
    if (cmp.ratioMosquitto !== undefined) rows.push([`ratio ÷ Mosquitto, ${name}`, `${cmp.ratioMosquitto}  (rounds ${cmp.roundRatiosMosquitto!.join(', ')})${cmp.qos === 1 ? '  — issue 11 goal ≥ 1.0' : '  — issue 11 goal ≥ 0.7'}`]);
    rows.push([`CPU-cost ratio, ${name}`, `main thread ${cmp.cpuRatio.mainThread}, whole process ${cmp.cpuRatio.process}  (bare CPU µs/msg ÷ pipeline CPU µs/msg)`]);
    rows.push([`CPU µs/msg bare, ${name}`, cpu(cmp.bare.cpuUsPerMsg)]);
    rows.push([`CPU µs/msg pipeline, ${name}`, cpu(cmp.pipeline.cpuUsPerMsg)]);
    const f = cmp.pipeline;
    rows.push([`ledger, ${name}`, `${f.prometheus?.groupMean} records per fsync (Prometheus sum/count), commit p50 ${f.commit?.commitMsP50.toFixed(2)} ms, p95 ${f.commit?.commitMsP95.toFixed(2)} ms (exact; histogram buckets say ${f.prometheus?.commitP50Ms} / ${f.prometheus?.commitP95Ms}), ${f.commit?.commits} commits`]);
    rows.push([`InfluxDB, ${name}`, `${f.sinkLagAtEnd} records behind at end of load, caught up ${f.influxCatchUpS} s later; SELECT count(*) FROM reading = ${f.influxCount} of ${f.influxExpected} sent${f.influxCount === f.influxExpected ? ' ✓' : ' ✗'}`]);
  }
  if (r.profile) {
    for (const mode of ['bare', 'gateway'] as const) {
      for (const s of r.profile[mode]) {
        const split = mode === 'gateway' && s.thread === 'main thread' ? s.stages : s.categories;
        rows.push([`CPU split ${mode}, ${s.thread}`, `${round((s.activeMs * 1000) / r.profile.messages, 1)} µs/msg busy (profiled): ` + split.slice(0, 9).map(([k, v]) => `${k} ${Math.round((v / s.activeMs) * 100)}%`).join(', ')]);
      }
    }
  }
  if (r.devices) {
    const d = r.devices;
    const f = (x: RunFigures, k: string) => `${x.msgPerS} msg/s, CPU ${x.cpuUsPerMsg[k]} µs/msg${x.ackP50Ms !== undefined ? `, PUBACK p50 ${x.ackP50Ms} ms` : ''}`;
    rows.push([`gateway, ${d.few} vs ${d.many} devices`, `${f(d.gateway.few, 'gateway')} → ${f(d.gateway.many, 'gateway')} (${d.inflight} in flight in all)`]);
    rows.push([`ratio ${d.many} ÷ ${d.few} devices`, `gateway ${d.gateway.ratio} (rounds ${d.gateway.roundRatios.join(', ')})  — issue 11 goal ≥ 0.9; bare aedes ${d.bare.ratio} (rounds ${d.bare.roundRatios.join(', ')}), ${d.bare.few.msgPerS} → ${d.bare.many.msgPerS} msg/s`]);
  }
  if (r.idle) {
    rows.push([`RSS, ${r.idle.devices} idle devices`, `${r.idle.rssBeforeMiB} → ${r.idle.rssAfterMiB} MiB (${r.idle.connected} connected, keepalive 60): ${r.idle.perConnectionBytes} B/connection (scrypt N=${r.params.scryptN} for set-up)`]);
    if (r.idle.bare) rows.push([`RSS bare aedes, ${r.idle.bare.connected} idle`, `${r.idle.bare.rssBeforeMiB} → ${r.idle.bare.rssAfterMiB} MiB: ${r.idle.bare.perConnectionBytes} B/connection`]);
  }
  return rows;
}

/** The top self-time functions of each profiled thread, for the detail section. */
export function profileDetail(r: IngestResults): string[] {
  if (!r.profile) return [];
  const out: string[] = [];
  for (const mode of ['bare', 'gateway'] as const) {
    for (const s of r.profile[mode]) {
      out.push(`${mode} — ${s.thread} (${s.activeMs} ms busy for ${r.profile.messages} messages):`);
      if (mode === 'gateway') out.push(`  by gateway stage (innermost gateway/src frame): ${s.stages.map(([k, v]) => `${k} ${v} ms`).join(' · ')}`);
      out.push(`  by package/file (self): ${s.categories.map(([k, v]) => `${k} ${v} ms`).join(' · ')}`);
      for (const [fn, ms] of s.functions.slice(0, 12)) out.push(`  ${String(ms).padStart(8)} ms  ${fn}`);
    }
  }
  return out;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const r = await runIngestBench();
  for (const [k, v] of ingestTable(r)) console.log(`${k.padEnd(34)} ${v}`);
  for (const l of profileDetail(r)) console.log(l);
}
