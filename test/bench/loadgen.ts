/**
 * The ingest benchmark's load generator, in its own process so it never shares an event loop
 * with the broker under test. It speaks MQTT 3.1.1 over raw TCP sockets (CONNECT, PUBLISH QoS 0/1,
 * PUBACK, PINGREQ, DISCONNECT) with payloads prepared before the clock starts, so its own cost
 * per message is a buffer copy and a socket write: the same generator drives bare aedes and the
 * gateway, and most of the CPU it leaves free goes to the broker under test.
 *
 * Driven over the IPC channel by test/bench/ingest.ts (`fork`); see the `Command` type.
 */
import net from 'node:net';
import mqtt from 'mqtt';
import { FrameReader, mqttStr, remainingLength } from './mqttFrames.ts';

export interface DeviceCreds { siteId: string; deviceId: string; secret?: string }

/**
 * `raw`: this file's minimal MQTT 3.1.1 client, a few µs per message, so the broker is what is
 * measured. `mqttjs`: the `mqtt` package, as device-side Node code (and most prototypes) would
 * use it, several times dearer per message.
 */
export type ClientKind = 'raw' | 'mqttjs';

/** A prepared message: the PUBLISH packet for the raw client, topic and payload for mqtt.js. */
interface Msg { topic: string; payload: Buffer; packet: Buffer; idAt: number }

interface Publisher {
  runQos1(msgs: Msg[], window: number, onAck: (latencyMs: number) => void): Promise<number>;
  runQos0(msgs: Msg[]): Promise<number>;
  close(): void;
}

export type Command =
  /** `ports`: spread the devices over several brokers (device i on ports[i % length]; region mode), instead of all on `port`. */
  | { type: 'prepare'; port: number; ports?: number[]; devices: DeviceCreds[]; perDevice: number; tag: string; tsBase: number; tsStepMs: number; qos: 0 | 1; client?: ClientKind }
  | { type: 'run'; window: number }
  | { type: 'idle'; port: number; devices: DeviceCreds[]; keepalive: number; concurrency: number }
  | { type: 'close' };

export type Reply =
  | { type: 'prepared'; clients: number; messages: number; bytes: number; connectMs: number }
  | { type: 'done'; qos: 0 | 1; sent: number; acked: number; startedAt: number; endedAt: number; startedMonoUs: number; endedMonoUs: number; ackLatencyMs?: { p50: number; p95: number; p99: number; max: number } }
  | { type: 'idle'; connected: number; failed: number; firstError?: string; connectMs: number }
  | { type: 'closed' }
  | { type: 'error'; message: string };

/** Wall-clock milliseconds with sub-ms resolution, comparable across processes of one machine. */
export const clock = () => performance.timeOrigin + performance.now();
/** CLOCK_MONOTONIC in µs: the time base of V8 CPU profiles (--cpu-prof), to cut a profile to the run. */
export const monoUs = () => Number(process.hrtime.bigint() / 1000n);

/**
 * Metrics a dust/noise station or crane monitor reports, each as a bounded random walk around a
 * quiet baseline, below domain.md's warning limits: a throughput bench should exercise the hazard
 * rules the way a normal day does, not raise and clear alerts on every sample.
 */
const METRICS: { name: string; base: number; step: number; lo: number; hi: number }[] = [
  { name: 'pm2_5', base: 35, step: 1.5, lo: 10, hi: 60 }, { name: 'pm10', base: 60, step: 2, lo: 20, hi: 120 },
  { name: 'tsp', base: 200, step: 5, lo: 80, hi: 500 }, { name: 'noise_dba', base: 44, step: 0.5, lo: 38, hi: 48 },
  { name: 'wind_speed_ms', base: 3, step: 0.3, lo: 0, hi: 8 }, { name: 'humidity_pct', base: 55, step: 1, lo: 20, hi: 95 },
  { name: 'crane_load_pct', base: 40, step: 3, lo: 0, hi: 80 }, { name: 'crane_tilt_deg', base: 0.05, step: 0.005, lo: 0, hi: 0.12 },
];
const round2 = (x: number) => Math.round(x * 100) / 100;

/** One device's sensors: `temperature_c` plus 2–5 others, fixed per device, drifting from reading to reading. */
class Station {
  private readonly state: number[];
  private readonly metrics: typeof METRICS;
  private temperature = 15 + Math.random() * 10;
  constructor() {
    const start = Math.floor(Math.random() * METRICS.length);
    this.metrics = Array.from({ length: 2 + Math.floor(Math.random() * 4) }, (_, k) => METRICS[(start + k) % METRICS.length]!);
    this.state = this.metrics.map((m) => m.base);
  }
  /**
   * A contract §1 reading: a unique id and an epoch-ms ts unique per device (InfluxDB keeps one
   * point per series and time, so equal times would merge points); `temperature_c` is always
   * there, so count(temperature_c) counts points.
   */
  reading(id: string, ts: number): string {
    this.temperature = Math.min(35, Math.max(-5, this.temperature + (Math.random() - 0.5) * 0.2));
    const metrics: Record<string, number> = { temperature_c: round2(this.temperature) };
    this.metrics.forEach((m, i) => {
      this.state[i] = Math.min(m.hi, Math.max(m.lo, this.state[i]! + (Math.random() - 0.5) * 2 * m.step));
      metrics[m.name] = round2(this.state[i]!);
    });
    return JSON.stringify({ id, ts, metrics });
  }
}



function connectPacket(clientId: string, username?: string, password?: string, keepalive = 60): Buffer {
  let flags = 0x02; // clean session
  if (username !== undefined) flags |= 0x80;
  if (password !== undefined) flags |= 0x40;
  const body = Buffer.concat([
    mqttStr('MQTT'), Buffer.from([4, flags, keepalive >> 8, keepalive & 0xff]), mqttStr(clientId),
    ...(username !== undefined ? [mqttStr(username)] : []), ...(password !== undefined ? [mqttStr(password)] : []),
  ]);
  return Buffer.concat([Buffer.from([0x10, ...remainingLength(body.length)]), body]);
}

/** A PUBLISH with its packet identifier left at 0; `idAt` is where to write it before sending. */
function publishPacket(topic: string, payload: string, qos: 0 | 1): { packet: Buffer; idAt: number } {
  const t = mqttStr(topic);
  const p = Buffer.from(payload, 'utf8');
  const len = t.length + (qos ? 2 : 0) + p.length;
  const head = Buffer.from([0x30 | (qos << 1), ...remainingLength(len)]);
  const packet = Buffer.concat([head, t, Buffer.alloc(qos ? 2 : 0), p]);
  return { packet, idAt: head.length + t.length };
}

const PINGREQ = Buffer.from([0xc0, 0x00]);
const DISCONNECT = Buffer.from([0xe0, 0x00]);


/** One device connection: CONNECT/CONNACK, then publishing its prepared messages. */
class Client implements Publisher {
  readonly socket: net.Socket;
  private readonly reader: FrameReader;
  private onConnack?: (rc: number) => void;
  private onPuback?: (id: number) => void;
  private ping?: NodeJS.Timeout;
  closed = false;

  constructor(port: number) {
    this.socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
    this.reader = new FrameReader((type, body) => {
      if (type === 2) this.onConnack?.(body[1]!);
      else if (type === 4) this.onPuback?.((body[0]! << 8) | body[1]!);
      // PUBLISH (3) to us would be an …/errors message: the bench subscribes to none. PINGRESP (13): nothing to do.
    });
    this.socket.on('data', (c) => this.reader.push(c));
    this.socket.on('close', () => { this.closed = true; if (this.ping) clearInterval(this.ping); });
  }

  connect(clientId: string, username?: string, password?: string, keepalive = 60): Promise<void> {
    return new Promise((resolve, reject) => {
      const fail = (e: Error) => reject(e);
      this.socket.once('error', fail);
      this.socket.once('close', () => reject(new Error('closed before CONNACK')));
      this.onConnack = (rc) => {
        this.socket.off('error', fail);
        if (rc !== 0) { reject(new Error(`CONNACK return code ${rc}`)); return; }
        this.socket.on('error', () => {});
        // MQTT-3.1.2-24: the broker drops a client silent for 1.5 × keepalive.
        if (keepalive > 0) this.ping = setInterval(() => this.socket.write(PINGREQ), (keepalive * 1000) / 2).unref();
        resolve();
      };
      this.socket.write(connectPacket(clientId, username, password, keepalive));
    });
  }

  /** QoS 1 with at most `window` publishes awaiting PUBACK; resolves when all are acknowledged. */
  runQos1(packets: Msg[], window: number, onAck: (latencyMs: number) => void): Promise<number> {
    return new Promise((resolve, reject) => {
      const sentAt = new Float64Array(65536);
      let next = 0, acked = 0, inflight = 0, id = 0;
      const pump = () => {
        if (next >= packets.length || inflight >= window) return;
        this.socket.cork();
        while (next < packets.length && inflight < window) {
          const p = packets[next++]!;
          id = id === 65535 ? 1 : id + 1;
          p.packet.writeUInt16BE(id, p.idAt);
          sentAt[id] = performance.now();
          inflight++;
          this.socket.write(p.packet);
        }
        this.socket.uncork();
      };
      this.onPuback = (ackId) => {
        onAck(performance.now() - sentAt[ackId]!);
        inflight--;
        acked++;
        if (acked === packets.length) resolve(acked);
        else pump();
      };
      this.socket.once('close', () => { if (acked < packets.length) reject(new Error(`connection closed after ${acked}/${packets.length} PUBACKs`)); });
      pump();
    });
  }

  /** QoS 0: writes everything, honouring socket back-pressure; resolves once all is handed to the kernel. */
  async runQos0(packets: Msg[]): Promise<number> {
    let i = 0;
    while (i < packets.length) {
      let ok = true;
      this.socket.cork();
      for (let k = 0; k < 64 && i < packets.length && ok; k++) ok = this.socket.write(packets[i++]!.packet);
      this.socket.uncork();
      if (!ok) await new Promise<void>((r) => this.socket.once('drain', r));
      if (this.closed) throw new Error(`connection closed after writing ${i}/${packets.length}`);
    }
    await new Promise<void>((r) => (this.socket.writableLength === 0 ? r() : this.socket.once('drain', r)));
    return packets.length;
  }

  close(): void {
    if (this.closed) return;
    this.socket.end(DISCONNECT);
  }
}

/** The same load through mqtt.js: a window of QoS 1 publishes awaiting their callbacks (PUBACK). */
class MqttJsClient implements Publisher {
  constructor(private readonly client: mqtt.MqttClient) {}

  static async connect(port: number, clientId: string, username?: string, password?: string, keepalive = 60): Promise<MqttJsClient> {
    const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
      clientId, protocolVersion: 4, reconnectPeriod: 0, keepalive, clean: true,
      ...(username !== undefined ? { username } : {}), ...(password !== undefined ? { password } : {}),
    });
    return new MqttJsClient(c);
  }

  private run(msgs: Msg[], qos: 0 | 1, window: number, onAck?: (latencyMs: number) => void): Promise<number> {
    return new Promise((resolve, reject) => {
      let next = 0, done = 0, inflight = 0;
      const pump = () => {
        while (next < msgs.length && inflight < window) {
          const m = msgs[next++]!;
          const t = performance.now();
          inflight++;
          this.client.publish(m.topic, m.payload, { qos }, (err) => {
            if (err) { reject(err); return; }
            onAck?.(performance.now() - t);
            inflight--;
            if (++done === msgs.length) resolve(done);
            else pump();
          });
        }
      };
      pump();
    });
  }

  runQos1(msgs: Msg[], window: number, onAck: (latencyMs: number) => void): Promise<number> {
    return this.run(msgs, 1, window, onAck);
  }

  /** QoS 0: mqtt.js calls back once a packet is written; a window of 200 bounds its buffering. */
  runQos0(msgs: Msg[]): Promise<number> {
    return this.run(msgs, 0, 200);
  }

  close(): void {
    this.client.end();
  }
}

function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

async function connectAll(port: number | number[], devices: DeviceCreds[], keepalive: number, concurrency: number, tag: string, kind: ClientKind = 'raw'): Promise<{ clients: Publisher[]; failed: number; firstError?: string }> {
  const clients: (Publisher | undefined)[] = new Array(devices.length);
  let failed = 0;
  let firstError: string | undefined;
  let next = 0;
  const worker = async () => {
    while (next < devices.length) {
      const i = next++;
      const d = devices[i]!;
      const portOf = typeof port === 'number' ? port : port[i % port.length]!;
      const username = d.secret !== undefined ? d.deviceId : undefined;
      if (kind === 'mqttjs') {
        try {
          clients[i] = await MqttJsClient.connect(portOf, `${d.deviceId}-${tag}`, username, d.secret, keepalive);
        } catch (e) {
          failed++;
          firstError ??= (e as Error).message;
        }
        continue;
      }
      const c = new Client(portOf);
      try {
        await c.connect(`${d.deviceId}-${tag}`, username, d.secret, keepalive);
        clients[i] = c; // clients[i] publishes as devices[i]
      } catch (e) {
        failed++;
        firstError ??= (e as Error).message;
        c.socket.destroy();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, devices.length) }, worker));
  return { clients: clients.filter((c): c is Publisher => c !== undefined), failed, ...(firstError ? { firstError } : {}) };
}

let prepared: { clients: Publisher[]; packets: Msg[][]; qos: 0 | 1 } | null = null;
let idle: Publisher[] = [];

async function handle(cmd: Command): Promise<Reply> {
  switch (cmd.type) {
    case 'prepare': {
      const t0 = performance.now();
      const { clients, failed, firstError } = await connectAll(cmd.ports ?? cmd.port, cmd.devices, 60, 50, cmd.tag, cmd.client ?? 'raw');
      if (failed) throw new Error(`${failed} of ${cmd.devices.length} clients could not connect: ${firstError}`);
      const connectMs = performance.now() - t0;
      let bytes = 0;
      // Readings are prepared up front (the clock is not running): ids `<device>-<tag>-<n>`, ts
      // every tsStepMs per device (a sensor's reporting interval, in event time) and in the past
      // (the gateway refuses more than 5 min ahead); the load itself is as fast as it goes.
      const packets = cmd.devices.map((d) => {
        const station = new Station();
        const topic = `sites/${d.siteId}/devices/${d.deviceId}/telemetry`;
        return Array.from({ length: cmd.perDevice }, (_, i): Msg => {
          const payload = station.reading(`${d.deviceId}-${cmd.tag}-${i}`, cmd.tsBase + i * cmd.tsStepMs);
          const p = publishPacket(topic, payload, cmd.qos);
          bytes += p.packet.length;
          return { topic, payload: Buffer.from(payload), ...p };
        });
      });
      prepared = { clients, packets, qos: cmd.qos };
      return { type: 'prepared', clients: clients.length, messages: cmd.devices.length * cmd.perDevice, bytes, connectMs };
    }
    case 'run': {
      if (!prepared) throw new Error('run before prepare');
      const { clients, packets, qos } = prepared;
      const latencies = new Float64Array(packets.reduce((n, p) => n + p.length, 0));
      let n = 0;
      const startedMonoUs = monoUs();
      const startedAt = clock();
      const counts = await Promise.all(clients.map((c, i) => (qos === 1
        ? c.runQos1(packets[i]!, cmd.window, (ms) => { latencies[n++] = ms; })
        : c.runQos0(packets[i]!))));
      const endedAt = clock();
      const endedMonoUs = monoUs();
      const total = counts.reduce((a, b) => a + b, 0);
      for (const c of clients) c.close();
      prepared = null;
      if (qos === 0) return { type: 'done', qos, sent: total, acked: 0, startedAt, endedAt, startedMonoUs, endedMonoUs };
      const sorted = latencies.subarray(0, n).sort();
      return {
        type: 'done', qos, sent: total, acked: n, startedAt, endedAt, startedMonoUs, endedMonoUs,
        ackLatencyMs: { p50: quantile(sorted, 0.5), p95: quantile(sorted, 0.95), p99: quantile(sorted, 0.99), max: sorted[n - 1] ?? NaN },
      };
    }
    case 'idle': {
      const t0 = performance.now();
      const r = await connectAll(cmd.port, cmd.devices, cmd.keepalive, cmd.concurrency, 'idle');
      idle = r.clients;
      return { type: 'idle', connected: r.clients.length, failed: r.failed, ...(r.firstError ? { firstError: r.firstError } : {}), connectMs: performance.now() - t0 };
    }
    case 'close': {
      for (const c of idle) c.close();
      idle = [];
      await new Promise((r) => setTimeout(r, 200));
      return { type: 'closed' };
    }
  }
}

if (process.send) {
  // Requests carry an `rid` that their reply echoes.
  process.on('message', ({ rid, ...cmd }: Command & { rid: number }) => {
    handle(cmd as Command).then(
      (reply) => process.send!({ rid, ...reply }),
      (err: Error) => process.send!({ rid, type: 'error', message: err.stack ?? err.message }),
    );
  });
  process.on('disconnect', () => process.exit(0));
}
