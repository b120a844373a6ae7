/**
 * Face check-ins end to end THROUGH THE GATEWAY, with and without telemetry flowing (issue #4,
 * Benchmark): a face terminal publishes `method: face` check-ins with base64 photos over MQTT QoS 1
 * and each one is timed from its PUBLISH to its `verdict` record being committed in the ledger
 * (base64 decode, evidence file + fsync, PUBACK, queue, JPEG decode, detect, align, embed, compare,
 * verdict commit). test/bench/face.ts measures the face engine and pool alone; this is the whole path.
 *
 *   npx tsx test/bench/faceLoad.ts        (or `npm run bench`, BENCH_ONLY=faceLoad)
 *
 * The gateway (buildApp, temp data dir, no InfluxDB) runs in a child process started from this
 * same file, so the load generator never shares its event loop; the child reports every committed
 * verdict over IPC, stamped with its own clock at the ledger commit (an event, no polling), and the
 * gateway's own analysis and receipt→verdict times (the values its Prometheus histograms observe).
 * The generator speaks MQTT 3.1.1 over raw sockets (a few µs per message, like test/bench/loadgen.ts).
 *
 * Phases: (a) telemetry alone; (b) face check-ins alone, single stream (one at a time, waiting for
 * each verdict) and concurrent (a window of check-ins awaiting their verdict); (c) both at once,
 * and the single stream again while telemetry flows. Targets: p95 ≤ 60 ms, ≥ 40 verified/s on 2 cores.
 *
 * Knobs (all bounded): BENCH_FACELOAD_SECONDS (10, per timed phase), BENCH_FACELOAD_SINGLE (150
 * check-ins at most per single-stream run), BENCH_FACELOAD_WINDOW (16 check-ins in flight),
 * BENCH_FACELOAD_SENSORS (4 devices) × BENCH_FACELOAD_TELEMETRY_WINDOW (25 readings in flight each).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { FrameReader, mqttStr, remainingLength } from './mqttFrames.ts';
import { threadTicks } from './ingest.ts';

const SELF = fileURLToPath(import.meta.url);
const FACES = path.resolve(path.dirname(SELF), '../fixtures/faces');
const ADMIN_TOKEN = 'bench-admin-token-0123456789abcdef';
const SITE = 'S-FACELOAD';
const TERMINAL = 'FT-LOAD-1';
const CLK_TCK = 100; // USER_HZ on Linux

/** Wall-clock ms with sub-ms resolution, comparable across processes of one machine. */
const clock = () => performance.timeOrigin + performance.now();

// — IPC between the bench and its gateway child —

type ToChild = { rid: number; type: 'stats' | 'stop' };
interface VerdictMsg { type: 'verdict'; id: string; verdict: string; similarity?: number; at: number }
interface ChildStats { analysisMs: number[]; receiptToVerdictMs: number[]; commitMs: number[]; groupSizes: number[]; committed: Record<string, number> }
type FromChild =
  | { type: 'ready'; httpPort: number; mqttPort: number; pid: number; at: number }
  | VerdictMsg
  | ({ rid: number; type: 'stats' } & ChildStats)
  | { rid: number; type: 'stopped' }
  | { rid: number; type: 'error'; message: string };

/** The child: the whole gateway, reporting verdict commits and the face histograms' raw values. */
async function gatewayChild(): Promise<void> {
  const { buildApp } = await import('../../gateway/src/app.ts');
  const { loadConfig } = await import('../../gateway/src/config/loadConfig.ts');
  const gw = await buildApp(loadConfig(process.env));
  const send = (m: FromChild) => process.send!(m);
  let analysisMs: number[] = [];
  let receiptToVerdictMs: number[] = [];
  let commitMs: number[] = [];
  let groupSizes: number[] = [];
  const committed: Record<string, number> = {};
  // The exact values the gateway's histograms observe (sitegate_face_analysis_seconds: pool time,
  // queue wait included; sitegate_face_checkin_seconds: receipt → durable verdict).
  const tap = (h: { observe: (...a: any[]) => void }, push: (v: number) => void) => {
    const orig = h.observe.bind(h);
    h.observe = (...a: any[]) => { const v = a[a.length - 1]; if (typeof v === 'number') push(v); orig(...a); };
  };
  tap(gw.metrics.faceAnalysisSeconds, (s) => analysisMs.push(s * 1000));
  tap(gw.metrics.faceCheckinSeconds, (s) => receiptToVerdictMs.push(s * 1000));
  // Group commits (fsync included) and their sizes: QoS 1 messages are acknowledged after them.
  tap(gw.metrics.ledgerCommitSeconds, (s) => commitMs.push(s * 1000));
  tap(gw.metrics.ledgerGroupSize, (n) => groupSizes.push(n));
  gw.ledger.onCommitted((records) => {
    const at = clock();
    for (const r of records) {
      committed[r.kind] = (committed[r.kind] ?? 0) + 1;
      if (r.kind !== 'verdict') continue;
      const b = r.body as { checkinId: string; verdict: string; similarity?: number };
      send({ type: 'verdict', id: b.checkinId, verdict: b.verdict, ...(b.similarity !== undefined ? { similarity: b.similarity } : {}), at });
    }
  });
  const { httpPort, mqttPort } = await gw.listen();
  process.on('message', (m: ToChild) => {
    if (m.type === 'stats') {
      send({ rid: m.rid, type: 'stats', analysisMs, receiptToVerdictMs, commitMs, groupSizes, committed: { ...committed } });
      analysisMs = [];
      receiptToVerdictMs = [];
      commitMs = [];
      groupSizes = [];
    } else if (m.type === 'stop') {
      gw.close().then(
        () => process.send!({ rid: m.rid, type: 'stopped' } satisfies FromChild, () => process.exit(0)),
        (e: Error) => process.send!({ rid: m.rid, type: 'error', message: e.stack ?? e.message } satisfies FromChild, () => process.exit(1)),
      );
    }
  });
  process.on('disconnect', () => process.exit(0));
  send({ type: 'ready', httpPort, mqttPort, pid: process.pid, at: clock() });
}

interface GatewayHandle {
  pid: number;
  httpUrl: string;
  mqttPort: number;
  dataDir: string;
  onVerdict(fn: (v: VerdictMsg) => void): void;
  stats(): Promise<ChildStats>;
  stop(): Promise<void>;
}

async function startGateway(): Promise<GatewayHandle> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sitegate-faceload-'));
  const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SITEGATE_')));
  Object.assign(env, {
    FACELOAD_ROLE: 'gateway',
    SITEGATE_DATA_DIR: dataDir, SITEGATE_HTTP_HOST: '127.0.0.1', SITEGATE_MQTT_HOST: '127.0.0.1',
    SITEGATE_HTTP_PORT: '0', SITEGATE_MQTT_PORT: '0', SITEGATE_MQTT_WS_PORT: '0',
    SITEGATE_ADMIN_TOKEN: ADMIN_TOKEN, SITEGATE_LOG_LEVEL: 'warn', SITEGATE_SECRET_SCRYPT_N: '1024',
  });
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', SELF], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env });
  let exited = false;
  const exit = new Promise<void>((r) => child.once('exit', () => { exited = true; r(); }));
  const pending = new Map<number, { resolve: (m: FromChild) => void; reject: (e: Error) => void }>();
  let verdictListener: (v: VerdictMsg) => void = () => {};
  let rid = 0;
  const ready = new Promise<Extract<FromChild, { type: 'ready' }>>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('gateway child not ready in 60 s')), 60_000);
    child.once('exit', (code) => { clearTimeout(t); reject(new Error(`gateway child exited during start (code ${code})`)); });
    child.on('message', (m: FromChild) => {
      if (m.type === 'ready') { clearTimeout(t); resolve(m); return; }
      if (m.type === 'verdict') { verdictListener(m); return; }
      const p = pending.get(m.rid);
      if (!p) return;
      pending.delete(m.rid);
      if (m.type === 'error') p.reject(new Error(`gateway child: ${m.message}`));
      else p.resolve(m);
    });
  });
  child.once('exit', (code) => { for (const p of pending.values()) p.reject(new Error(`gateway child exited (code ${code})`)); pending.clear(); });
  const kill = () => { if (!exited) child.kill('SIGKILL'); };
  const request = (type: ToChild['type'], timeoutMs: number) => new Promise<FromChild>((resolve, reject) => {
    if (exited) { reject(new Error('gateway child has exited')); return; }
    const id = ++rid;
    const t = setTimeout(() => { pending.delete(id); reject(new Error(`gateway child: no answer to ${type} in ${timeoutMs} ms`)); }, timeoutMs);
    pending.set(id, { resolve: (m) => { clearTimeout(t); resolve(m); }, reject: (e) => { clearTimeout(t); reject(e); } });
    child.send({ rid: id, type } satisfies ToChild);
  });
  let r: Extract<FromChild, { type: 'ready' }>;
  try {
    r = await ready;
  } catch (e) {
    kill();
    fs.rmSync(dataDir, { recursive: true, force: true });
    throw e;
  }
  return {
    pid: r.pid, httpUrl: `http://127.0.0.1:${r.httpPort}`, mqttPort: r.mqttPort, dataDir,
    onVerdict: (fn) => { verdictListener = fn; },
    async stats() {
      const m = await request('stats', 30_000);
      if (m.type !== 'stats') throw new Error(`gateway child: unexpected ${m.type}`);
      return { analysisMs: m.analysisMs, receiptToVerdictMs: m.receiptToVerdictMs, commitMs: m.commitMs, groupSizes: m.groupSizes, committed: m.committed };
    },
    async stop() {
      await request('stop', 60_000).catch(() => kill());
      const t = setTimeout(kill, 15_000);
      await exit;
      clearTimeout(t);
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

// — a minimal MQTT 3.1.1 client over a raw socket: CONNECT, PUBLISH QoS 1, PUBACK, PINGREQ —



class RawMqtt {
  private readonly socket: net.Socket;
  private readonly acks = new Map<number, () => void>();
  private nextId = 0;
  private onConnack?: (rc: number) => void;
  private ping?: NodeJS.Timeout;
  private closed = false;

  private constructor(port: number) {
    this.socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
    this.socket.on('data', (c) => this.read(c));
    this.socket.on('error', () => {});
    this.socket.on('close', () => {
      this.closed = true;
      if (this.ping) clearInterval(this.ping);
      this.onConnack?.(-1);
    });
  }

  static connect(port: number, clientId: string, username: string, password: string, keepalive = 60): Promise<RawMqtt> {
    const c = new RawMqtt(port);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => { c.socket.destroy(); reject(new Error(`${clientId}: no CONNACK in 10 s`)); }, 10_000);
      c.onConnack = (rc) => {
        clearTimeout(t);
        c.onConnack = undefined;
        if (rc !== 0) { c.socket.destroy(); reject(new Error(`${clientId}: CONNACK ${rc === -1 ? 'never came (closed)' : `return code ${rc}`}`)); return; }
        c.ping = setInterval(() => c.socket.write(Buffer.from([0xc0, 0])), (keepalive * 1000) / 2).unref();
        resolve(c);
      };
      const body = Buffer.concat([mqttStr('MQTT'), Buffer.from([4, 0x02 | 0x80 | 0x40, keepalive >> 8, keepalive & 0xff]), mqttStr(clientId), mqttStr(username), mqttStr(password)]);
      c.socket.write(Buffer.concat([Buffer.from([0x10]), Buffer.from(remainingLength(body.length)), body]));
    });
  }

  /** PUBLISH QoS 1; resolves at its PUBACK (the gateway sends it once the message is durable). */
  publish(topic: string, payload: Buffer): Promise<void> {
    if (this.closed) return Promise.reject(new Error('connection closed'));
    do this.nextId = this.nextId === 65535 ? 1 : this.nextId + 1; while (this.acks.has(this.nextId));
    const id = this.nextId;
    const t = mqttStr(topic);
    const head = Buffer.concat([Buffer.from([0x32]), Buffer.from(remainingLength(t.length + 2 + payload.length)), t, Buffer.from([id >> 8, id & 0xff])]);
    return new Promise((resolve, reject) => {
      this.acks.set(id, resolve);
      this.socket.cork();
      this.socket.write(head);
      this.socket.write(payload);
      this.socket.uncork();
      if (this.closed) { this.acks.delete(id); reject(new Error('connection closed')); }
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.ping) clearInterval(this.ping);
    this.socket.end(Buffer.from([0xe0, 0]));
  }

  private readonly frames = new FrameReader((type, body) => {
    if (type === 2) this.onConnack?.(body[1]!);
    else if (type === 4) {
      const id = (body[0]! << 8) | body[1]!;
      const done = this.acks.get(id);
      this.acks.delete(id);
      done?.();
    }
  });

  private read(chunk: Buffer): void {
    this.frames.push(chunk);
  }
}

// — helpers —

const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);

async function api(g: GatewayHandle, method: string, p: string, body?: unknown, contentType = 'application/json'): Promise<any> {
  const payload = Buffer.isBuffer(body) ? new Uint8Array(body) : JSON.stringify(body);
  const res = await fetch(`${g.httpUrl}${p}`, {
    method, headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body !== undefined ? { 'content-type': contentType } : {}) },
    ...(body !== undefined ? { body: payload } : {}), signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${p}: ${res.status} ${text}`);
  return JSON.parse(text);
}

/** CPU ticks (utime + stime) per thread of a process. */

/** Busy ticks of the whole machine (/proc/stat: all but idle and iowait). */
function machineTicks(): number {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  return f.slice(0, 8).reduce((a, b) => a + b, 0) - f[3]! - f[4]!;
}

interface CpuFigures { gateway: number; mainThread: number; otherThreads: number; generator: number; otherProcesses: number }

/**
 * Cores busy during a phase: the gateway child (its main thread; the rest: face workers, ledger
 * writer, libuv), this generator, and everything else on the (shared) machine.
 */
function cpuMeter(pid: number): () => CpuFigures {
  const before = threadTicks(pid);
  const machine0 = machineTicks();
  const self0 = process.cpuUsage();
  const t0 = performance.now();
  return () => {
    const machine = (machineTicks() - machine0) / CLK_TCK;
    const s = (performance.now() - t0) / 1000;
    let total = 0, main = 0;
    for (const [tid, t] of threadTicks(pid)) {
      const d = t - (before.get(tid) ?? 0);
      total += d;
      if (tid === pid) main = d;
    }
    const self = process.cpuUsage(self0);
    const generator = (self.user + self.system) / 1e6;
    return {
      gateway: round(total / CLK_TCK / s, 2), mainThread: round(main / CLK_TCK / s, 2), otherThreads: round((total - main) / CLK_TCK / s, 2),
      generator: round(generator / s, 2), otherProcesses: round(Math.max(0, machine - total / CLK_TCK - generator) / s, 2),
    };
  };
}

// — load —

/** A quiet day's dust/noise/crane values, each a bounded random walk below domain.md's warning limits. */
const METRICS: { name: string; base: number; step: number; lo: number; hi: number }[] = [
  { name: 'pm2_5', base: 35, step: 1.5, lo: 10, hi: 60 }, { name: 'pm10', base: 60, step: 2, lo: 20, hi: 120 },
  { name: 'noise_dba', base: 44, step: 0.5, lo: 38, hi: 48 }, { name: 'wind_speed_ms', base: 3, step: 0.3, lo: 0, hi: 8 },
  { name: 'humidity_pct', base: 55, step: 1, lo: 20, hi: 95 }, { name: 'crane_load_pct', base: 40, step: 3, lo: 0, hi: 80 },
];

interface Sensor { deviceId: string; client: RawMqtt; topic: string; state: number[]; temperature: number; n: number }

/** A contract §1 reading: unique id, epoch-ms ts of now, temperature plus the station's other metrics. */
function reading(s: Sensor, tag: string): Buffer {
  s.temperature = Math.min(35, Math.max(-5, s.temperature + (Math.random() - 0.5) * 0.2));
  const metrics: Record<string, number> = { temperature_c: round(s.temperature, 2) };
  METRICS.forEach((m, i) => {
    s.state[i] = Math.min(m.hi, Math.max(m.lo, s.state[i]! + (Math.random() - 0.5) * 2 * m.step));
    metrics[m.name] = round(s.state[i]!, 2);
  });
  return Buffer.from(JSON.stringify({ id: `${s.deviceId}-${tag}-${s.n++}`, ts: Date.now(), metrics }));
}

interface TelemetryFigures { acked: number; seconds: number; msgPerS: number; ackP50Ms: number; ackP95Ms: number }

/** Every sensor keeps `window` QoS 1 readings awaiting PUBACK until `ms` has passed. */
async function telemetry(sensors: Sensor[], window: number, ms: number, tag: string): Promise<TelemetryFigures> {
  const lat: number[] = [];
  const start = clock();
  const end = start + ms;
  await Promise.all(sensors.flatMap((s) => Array.from({ length: window }, async () => {
    while (clock() < end) {
      const payload = reading(s, tag);
      const t0 = clock();
      await s.client.publish(s.topic, payload);
      lat.push(clock() - t0);
    }
  })));
  const seconds = (clock() - start) / 1000;
  const l = sorted(lat);
  return { acked: lat.length, seconds, msgPerS: lat.length / seconds, ackP50Ms: pct(l, 50), ackP95Ms: pct(l, 95) };
}

interface Pair { person: string; workerId: string; enrol: Buffer; b64: string }
interface CheckinResult { totalMs: number; ackMs: number; verdict: string; similarity?: number; at: number }

class FaceTerminal {
  private readonly waiting = new Map<string, (v: VerdictMsg) => void>();
  private n = 0;
  /** check-ins published so far */
  get sent(): number { return this.n; }
  private readonly directions = new Map<string, number>();
  constructor(private readonly client: RawMqtt, private readonly pairs: Pair[], g: GatewayHandle) {
    g.onVerdict((v) => { const w = this.waiting.get(v.id); this.waiting.delete(v.id); w?.(v); });
  }

  /** One check-in with the worker's `_2` photo; resolves at its verdict's ledger commit. */
  async checkin(tag: string): Promise<CheckinResult> {
    const i = this.n++;
    const p = this.pairs[i % this.pairs.length]!;
    const id = `fl-${tag}-${i}`;
    const k = this.directions.get(p.workerId) ?? 0;
    this.directions.set(p.workerId, k + 1);
    const payload = Buffer.from(`{"id":"${id}","workerId":"${p.workerId}","ts":${Date.now()},"direction":"${k % 2 ? 'out' : 'in'}","method":"face","terminalScore":0.93,"photo":"${p.b64}"}`);
    let timer: NodeJS.Timeout | undefined;
    const verdict = new Promise<VerdictMsg>((resolve, reject) => {
      this.waiting.set(id, resolve);
      timer = setTimeout(() => { this.waiting.delete(id); reject(new Error(`no verdict for check-in ${id} within 60 s`)); }, 60_000);
    });
    const t0 = clock();
    await this.client.publish(`sites/${SITE}/devices/${TERMINAL}/checkin`, payload);
    const ackMs = clock() - t0;
    try {
      const v = await verdict;
      return { totalMs: v.at - t0, ackMs, verdict: v.verdict, ...(v.similarity !== undefined ? { similarity: v.similarity } : {}), at: v.at };
    } finally {
      clearTimeout(timer);
    }
  }
}

interface FaceFigures { n: number; seconds: number; perS: number; verifiedPerS: number; verified: number; p50: number; p95: number; max: number; ackP50: number; ackP95: number; minSimilarity: number }

function faceFigures(rs: CheckinResult[], start: number): FaceFigures {
  const lat = sorted(rs.map((r) => r.totalMs));
  const ack = sorted(rs.map((r) => r.ackMs));
  const seconds = (Math.max(...rs.map((r) => r.at)) - start) / 1000;
  const verified = rs.filter((r) => r.verdict === 'verified').length;
  return {
    n: rs.length, seconds, perS: rs.length / seconds, verifiedPerS: verified / seconds, verified,
    p50: pct(lat, 50), p95: pct(lat, 95), max: lat[lat.length - 1]!, ackP50: pct(ack, 50), ackP95: pct(ack, 95),
    minSimilarity: Math.min(...rs.map((r) => r.similarity ?? -1)),
  };
}

/** One check-in at a time, each waiting for its verdict: the latency a worker at the gate sees. */
async function faceSingle(t: FaceTerminal, max: number, ms: number, tag: string): Promise<FaceFigures> {
  const rs: CheckinResult[] = [];
  const start = clock();
  while (rs.length < max && clock() < start + ms) rs.push(await t.checkin(tag));
  return faceFigures(rs, start);
}

/** `window` check-ins awaiting their verdicts at all times until `ms` has passed: what the pipeline takes. */
async function faceConcurrent(t: FaceTerminal, window: number, ms: number, tag: string): Promise<FaceFigures> {
  const rs: CheckinResult[] = [];
  const start = clock();
  await Promise.all(Array.from({ length: window }, async () => {
    while (clock() < start + ms) rs.push(await t.checkin(tag));
  }));
  return faceFigures(rs, start);
}

const envInt = (k: string, d: number) => (process.env[k] ? Number(process.env[k]) : d);

export interface FaceLoadBenchOptions {
  log?: (line: string) => void;
}

/** Runs the end-to-end face check-in benchmark (through a gateway child process) and returns flat figures. */
export async function runFaceLoadBench(opts: FaceLoadBenchOptions = {}): Promise<Record<string, number>> {
  const log = opts.log ?? ((s: string) => console.log(s));
  const phaseMs = envInt('BENCH_FACELOAD_SECONDS', 10) * 1000;
  const singleMax = envInt('BENCH_FACELOAD_SINGLE', 150);
  const window = envInt('BENCH_FACELOAD_WINDOW', 16);
  const nSensors = envInt('BENCH_FACELOAD_SENSORS', 4);
  const telWindow = envInt('BENCH_FACELOAD_TELEMETRY_WINDOW', 25);
  const cores = os.availableParallelism();
  const benchStart = performance.now();
  const out: Record<string, number> = { cores, loadavg_1m_before: round(os.loadavg()[0]!, 2) };

  const manifest = JSON.parse(fs.readFileSync(path.join(FACES, 'manifest.json'), 'utf8')) as { persons: Record<string, string[]> };
  const pairs: Pair[] = Object.entries(manifest.persons).filter(([, f]) => f.length >= 2).map(([person, f]) => ({
    person, workerId: `W-${person.replace(/_/g, '-')}`,
    enrol: fs.readFileSync(path.join(FACES, f[0]!)), b64: fs.readFileSync(path.join(FACES, f[1]!)).toString('base64'),
  }));

  const g = await startGateway();
  const clients: RawMqtt[] = [];
  try {
    // — set-up: site, face terminal, sensors, workers with their enrolled `_1` photo —
    const t0 = performance.now();
    await api(g, 'PUT', `/api/v1/sites/${SITE}`, { name: 'face load bench', regionCode: '330106' });
    const term = await api(g, 'PUT', `/api/v1/sites/${SITE}/devices/${TERMINAL}`, { kind: 'face_terminal' });
    const sensorIds = Array.from({ length: nSensors }, (_, i) => `ENV-LOAD-${i + 1}`);
    const sensorSecrets: string[] = [];
    for (const id of sensorIds) sensorSecrets.push((await api(g, 'PUT', `/api/v1/sites/${SITE}/devices/${id}`, { kind: 'sensor' })).secret as string);
    for (const p of pairs) {
      await api(g, 'PUT', `/api/v1/sites/${SITE}/workers/${p.workerId}`, { name: p.person.replace(/_/g, ' ') });
      await api(g, 'PUT', `/api/v1/sites/${SITE}/workers/${p.workerId}/face`, p.enrol, 'image/jpeg');
    }
    const terminalClient = await RawMqtt.connect(g.mqttPort, `${TERMINAL}-bench`, TERMINAL, term.secret as string);
    clients.push(terminalClient);
    const sensors: Sensor[] = [];
    for (let i = 0; i < nSensors; i++) {
      const client = await RawMqtt.connect(g.mqttPort, `${sensorIds[i]}-bench`, sensorIds[i]!, sensorSecrets[i]!);
      clients.push(client);
      sensors.push({ deviceId: sensorIds[i]!, client, topic: `sites/${SITE}/devices/${sensorIds[i]}/telemetry`, state: METRICS.map((m) => m.base), temperature: 15 + Math.random() * 10, n: 0 });
    }
    const terminal = new FaceTerminal(terminalClient, pairs, g);
    const photoKiB = pairs.reduce((a, p) => a + p.b64.length, 0) / pairs.length / 1024;
    log(`face load: gateway child pid ${g.pid} (temp data dir, no InfluxDB), ${pairs.length} workers enrolled in ${round((performance.now() - t0) / 1000, 1)} s; ` +
      `check-in payloads ≈ ${photoKiB.toFixed(0)} KiB of base64; ${cores} CPUs, load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`);

    // — warm-up: pool workers start on first use, ORT allocates its arenas, JIT —
    let telemetryAcked = 0;
    const tel = async (ms: number, tag: string) => { const f = await telemetry(sensors, telWindow, ms, tag); telemetryAcked += f.acked; return f; };
    await faceSingle(terminal, pairs.length, 10_000, 'warm1');
    await Promise.all([faceConcurrent(terminal, window, 1500, 'warm2'), tel(1500, 'warm')]);
    await g.stats(); // reset the gateway-side samples

    const cores_ = (c: CpuFigures) => `cores busy: gateway ${c.gateway} (main thread ${c.mainThread}, other threads ${c.otherThreads}), generator ${c.generator}, other processes ${c.otherProcesses}`;
    const commits = (st: ChildStats) => {
      const cm = sorted(st.commitMs), gs = st.groupSizes;
      return { p50: pct(cm, 50), p95: pct(cm, 95), group: gs.reduce((x, y) => x + y, 0) / Math.max(1, gs.length) };
    };
    const commitText = (k: ReturnType<typeof commits>) => `ledger commit p50 ${k.p50.toFixed(1)} ms p95 ${k.p95.toFixed(1)} ms, ${k.group.toFixed(0)} records/commit`;
    const msPerCheckin = (c: CpuFigures, f: FaceFigures) => round((c.gateway * f.seconds * 1000) / f.n, 1);

    // (a) telemetry alone
    let cpu = cpuMeter(g.pid);
    const a = await tel(phaseMs, 'a');
    const cpuA = cpu();
    const kA = commits(await g.stats());
    log(`(a) telemetry alone, ${nSensors} sensors × window ${telWindow}, QoS 1: ${a.msgPerS.toFixed(0)} msg/s, PUBACK p50 ${a.ackP50Ms.toFixed(1)} ms p95 ${a.ackP95Ms.toFixed(1)} ms; ` +
      `${commitText(kA)}; ${cores_(cpuA)}`);

    // (b) face alone, single stream
    cpu = cpuMeter(g.pid);
    const b1 = await faceSingle(terminal, singleMax, phaseMs, 'b1');
    const cpuB1 = cpu();
    const s1 = await g.stats();
    const an1 = sorted(s1.analysisMs), rv1 = sorted(s1.receiptToVerdictMs), kB1 = commits(s1);
    log(`(b) face alone, single stream: ${b1.n} check-ins, publish → verdict committed p50 ${b1.p50.toFixed(1)} ms, p95 ${b1.p95.toFixed(1)} ms, max ${b1.max.toFixed(1)} ms ` +
      `(${b1.perS.toFixed(1)}/s); of which publish → PUBACK p50 ${b1.ackP50.toFixed(1)} ms, pool analysis p50 ${pct(an1, 50).toFixed(1)} ms p95 ${pct(an1, 95).toFixed(1)} ms, ` +
      `${commitText(kB1)}; gateway receipt → verdict p50 ${pct(rv1, 50).toFixed(1)} ms; verified ${b1.verified}/${b1.n}; gateway CPU ${msPerCheckin(cpuB1, b1)} ms per check-in; ${cores_(cpuB1)}`);

    // (b) face alone, concurrent
    cpu = cpuMeter(g.pid);
    const b2 = await faceConcurrent(terminal, window, phaseMs, 'b2');
    const cpuB2 = cpu();
    const s2 = await g.stats();
    const an2 = sorted(s2.analysisMs);
    log(`(b) face alone, ${window} in flight: ${b2.verifiedPerS.toFixed(1)} verified check-ins/s (${b2.verified}/${b2.n} verified), publish → verdict p50 ${b2.p50.toFixed(0)} ms p95 ${b2.p95.toFixed(0)} ms (queueing), ` +
      `pool analysis p50 ${pct(an2, 50).toFixed(1)} ms (4 handed to the pool at a time); gateway CPU ${msPerCheckin(cpuB2, b2)} ms per check-in; ${cores_(cpuB2)}`);

    // (c) both at once
    cpu = cpuMeter(g.pid);
    const [c, cf] = await Promise.all([tel(phaseMs, 'c'), faceConcurrent(terminal, window, phaseMs, 'c')]);
    const cpuC = cpu();
    const kC = commits(await g.stats());
    log(`(c) both at once: telemetry ${c.msgPerS.toFixed(0)} msg/s (${round((c.msgPerS / a.msgPerS) * 100, 0)} % of alone, PUBACK p50 ${c.ackP50Ms.toFixed(1)} ms p95 ${c.ackP95Ms.toFixed(1)} ms), ` +
      `face ${cf.verifiedPerS.toFixed(1)} verified/s (${round((cf.verifiedPerS / b2.verifiedPerS) * 100, 0)} % of alone, ${cf.verified}/${cf.n} verified, p95 ${cf.p95.toFixed(0)} ms); ` +
      `${commitText(kC)}; ${cores_(cpuC)}`);

    // (c) the single stream while telemetry flows
    cpu = cpuMeter(g.pid);
    const stopTel = tel(phaseMs, 'c2');
    const c2 = await faceSingle(terminal, singleMax, phaseMs - 1000, 'c2');
    const c2t = await stopTel;
    const cpuC2 = cpu();
    const s3 = await g.stats();
    const an3 = sorted(s3.analysisMs);
    log(`(c) single stream while telemetry flows (${c2t.msgPerS.toFixed(0)} msg/s): ${c2.n} check-ins, publish → verdict p50 ${c2.p50.toFixed(1)} ms, p95 ${c2.p95.toFixed(1)} ms ` +
      `(PUBACK p50 ${c2.ackP50.toFixed(1)} ms, pool analysis p50 ${pct(an3, 50).toFixed(1)} ms), verified ${c2.verified}/${c2.n}; ${commitText(commits(s3))}; ${cores_(cpuC2)}`);

    // Every PUBACKed reading and every check-in is in the ledger, each check-in with its verdict.
    const totals = (await g.stats()).committed;
    const allFace = [b1, b2, cf, c2];
    const verified = allFace.reduce((n, f) => n + f.verified, 0), checked = allFace.reduce((n, f) => n + f.n, 0);
    const sentCheckins = terminal.sent;
    if ((totals.reading ?? 0) !== telemetryAcked) log(`  ✗ ${telemetryAcked} readings acknowledged but ${totals.reading ?? 0} in the ledger`);
    if ((totals.checkin ?? 0) !== sentCheckins || (totals.verdict ?? 0) !== sentCheckins) log(`  ✗ ${sentCheckins} check-ins sent: ${totals.checkin ?? 0} in the ledger, ${totals.verdict ?? 0} verdicts`);
    Object.assign(out, {
      telemetry_alone_msg_per_s: round(a.msgPerS, 0), telemetry_alone_puback_p95_ms: round(a.ackP95Ms, 2), telemetry_alone_commit_p95_ms: round(kA.p95, 2),
      single_p50_ms: round(b1.p50, 2), single_p95_ms: round(b1.p95, 2), single_max_ms: round(b1.max, 2), single_per_s: round(b1.perS),
      single_puback_p50_ms: round(b1.ackP50, 2), single_pool_analysis_p50_ms: round(pct(an1, 50), 2), single_pool_analysis_p95_ms: round(pct(an1, 95), 2),
      single_commit_p50_ms: round(kB1.p50, 2), single_gateway_receipt_to_verdict_p50_ms: round(pct(rv1, 50), 2), single_gateway_cpu_ms_per_checkin: msPerCheckin(cpuB1, b1),
      concurrent_window: window, concurrent_verified_per_s: round(b2.verifiedPerS), concurrent_p50_ms: round(b2.p50, 0), concurrent_p95_ms: round(b2.p95, 0),
      concurrent_gateway_cores: cpuB2.gateway, concurrent_other_processes_cores: cpuB2.otherProcesses, concurrent_gateway_cpu_ms_per_checkin: msPerCheckin(cpuB2, b2),
      // What the measured CPU cost per check-in allows when the cores are the gateway's alone (the box is shared).
      concurrent_cpu_bound_ceiling_per_s: round((cores * 1000) / msPerCheckin(cpuB2, b2), 0),
      both_telemetry_msg_per_s: round(c.msgPerS, 0), both_telemetry_vs_alone: round(c.msgPerS / a.msgPerS, 3), both_telemetry_puback_p95_ms: round(c.ackP95Ms, 2), both_commit_p95_ms: round(kC.p95, 2),
      both_face_verified_per_s: round(cf.verifiedPerS), both_face_vs_alone: round(cf.verifiedPerS / b2.verifiedPerS, 3), both_other_processes_cores: cpuC.otherProcesses,
      single_during_telemetry_p50_ms: round(c2.p50, 2), single_during_telemetry_p95_ms: round(c2.p95, 2), single_during_telemetry_telemetry_msg_per_s: round(c2t.msgPerS, 0),
      verified_fraction: round(verified / checked, 4), checkins: checked, min_similarity: round(Math.min(...allFace.map((f) => f.minSimilarity)), 3),
      ledger_readings_missing: telemetryAcked - (totals.reading ?? 0), ledger_verdicts_missing: sentCheckins - (totals.verdict ?? 0),
    });
    if (verified !== checked) log(`  ✗ ${checked - verified} of ${checked} genuine check-ins were not verified`);
  } finally {
    for (const c of clients) c.close();
    await g.stop();
  }
  out.loadavg_1m_after = round(os.loadavg()[0]!, 2);
  out.seconds = round((performance.now() - benchStart) / 1000);
  return out;
}

/** The figures as a small table. */
export function faceLoadTable(r: Record<string, number>): [string, string][] {
  const ok = (b: boolean) => (b ? '✓' : '✗');
  return [
    ['telemetry alone (QoS 1)', `${r.telemetry_alone_msg_per_s} msg/s, PUBACK p95 ${r.telemetry_alone_puback_p95_ms} ms`],
    ['face single stream, publish → verdict', `p50 ${r.single_p50_ms} ms, p95 ${r.single_p95_ms} ms ${ok(r.single_p95_ms! <= 60)} (target p95 ≤ 60 ms), ${r.single_per_s}/s`],
    ['  of which', `PUBACK p50 ${r.single_puback_p50_ms} ms, pool analysis p50 ${r.single_pool_analysis_p50_ms} ms; gateway CPU ${r.single_gateway_cpu_ms_per_checkin} ms per check-in`],
    [`face concurrent (${r.concurrent_window} in flight)`, `${r.concurrent_verified_per_s} verified/s ${ok(r.concurrent_verified_per_s! >= 40)} (target ≥ 40/s), p95 ${r.concurrent_p95_ms} ms with queueing; gateway ${r.concurrent_gateway_cores} cores, ${r.concurrent_gateway_cpu_ms_per_checkin} ms CPU per check-in (≈ ${r.concurrent_cpu_bound_ceiling_per_s}/s if the ${r.cores} cores were the gateway's alone)`],
    ['both: telemetry', `${r.both_telemetry_msg_per_s} msg/s = ${round(r.both_telemetry_vs_alone! * 100, 0)} % of alone, PUBACK p95 ${r.both_telemetry_puback_p95_ms} ms (ledger commit p95 ${r.both_commit_p95_ms} ms vs ${r.telemetry_alone_commit_p95_ms} alone)`],
    ['both: face', `${r.both_face_verified_per_s} verified/s = ${round(r.both_face_vs_alone! * 100, 0)} % of alone`],
    ['single stream during telemetry', `p50 ${r.single_during_telemetry_p50_ms} ms, p95 ${r.single_during_telemetry_p95_ms} ms (telemetry ${r.single_during_telemetry_telemetry_msg_per_s} msg/s)`],
    ['verified (genuine pairs)', `${round(r.verified_fraction! * 100, 2)} % of ${r.checkins} ${ok(r.verified_fraction === 1)}, lowest similarity ${r.min_similarity}; ledger: ${r.ledger_readings_missing} readings, ${r.ledger_verdicts_missing} verdicts missing`],
    ['shared machine', `other processes used ${r.concurrent_other_processes_cores} cores during the face-alone run, ${r.both_other_processes_cores} during both`],
  ];
}

if (process.env.FACELOAD_ROLE === 'gateway' && process.send) {
  await gatewayChild();
} else if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const r = await runFaceLoadBench();
  const rows = faceLoadTable(r);
  const w = Math.max(...rows.map(([k]) => k.length));
  console.log(`\nface check-ins through the gateway (${r.cores} CPUs, load average ${r.loadavg_1m_before} → ${r.loadavg_1m_after}, ${r.seconds} s)`);
  for (const [k, v] of rows) console.log(`${k.padEnd(w)}  ${v}`);
}
