import { EventEmitter } from 'node:events';
import mqtt from 'mqtt';
import type { Outbox, QueuedEvent } from '../buffer/outbox.ts';

export interface DeviceLinkOptions {
  url: string;
  siteId: string;
  deviceId: string;
  secret: string;
  /** QoS 1 messages in flight (a telemetry batch counts once). */
  window: number;
  heartbeatS: number;
  reconnectMs: number;
  firmware?: string;
  now: () => number;
  /** The device executes commands (contract §7): subscribe to its own `…/commands`. */
  commands?: boolean;
}

/** Contract §1: a telemetry batch holds ≤ 1000 readings and ≤ 256 KiB. */
const MAX_BATCH = 1000;
const MAX_BATCH_BYTES = 256 * 1024 - 64;

export interface LinkStats {
  deviceId: string;
  connected: boolean;
  inflight: number;
  sent: number;
  lastPublishAt?: number;
  lastError?: string;
  /** Messages the gateway stored as rejected (its `errors` topic): a bad clock, a bad shape. */
  rejectedByGateway: number;
  lastRejection?: { ref: string; reason: string };
}

/**
 * One device's MQTT session (the device id is the MQTT username, contract §1): announces itself
 * `online` (retained) with an `offline` Last Will, heartbeats, and sends the device's queued
 * events in order with QoS 1, a window of them in flight. Consecutive queued readings go out as
 * one `{"batch": […]}`, so a backlog drains in large messages while each reading is stored alone.
 * An event leaves the queue only in the PUBACK callback; after a reconnect or a restart whatever
 * was not acknowledged is sent again from the oldest, and the gateway stores it once by its id.
 * Emits `sent` (events acknowledged), `rejected` ({ref, reason}) from the errors topic, `command`
 * (the raw payload of a command for this device), `connect`, `offline`, `warn`.
 */
export class DeviceLink extends EventEmitter {
  private client?: mqtt.MqttClient;
  private readonly inflight = new Map<number, number[]>();
  private cursor = 0;
  private pumping = false;
  private heartbeat?: NodeJS.Timeout;
  private stopped = false;
  private readonly stats: LinkStats;

  constructor(private readonly outbox: Outbox, private readonly o: DeviceLinkOptions) {
    super();
    this.stats = { deviceId: o.deviceId, connected: false, inflight: 0, sent: 0, rejectedByGateway: 0 };
  }

  topic(channel: string): string {
    return `sites/${this.o.siteId}/devices/${this.o.deviceId}/${channel}`;
  }

  private status(state: 'online' | 'offline'): string {
    return JSON.stringify({ state, ts: this.o.now(), ...(this.o.firmware ? { firmware: this.o.firmware } : {}) });
  }

  start(): void {
    this.client = mqtt.connect(this.o.url, {
      username: this.o.deviceId, password: this.o.secret, clientId: `edge-${this.o.deviceId}`, protocolVersion: 4,
      clean: true, reconnectPeriod: this.o.reconnectMs, connectTimeout: 10_000,
      will: { topic: this.topic('status'), payload: Buffer.from(this.status('offline')), qos: 1, retain: true },
    });
    this.client.on('connect', () => {
      // A new session: whatever the previous one left unacknowledged is resent from the queue, in order.
      this.inflight.clear();
      this.cursor = 0;
      this.stats.connected = true;
      this.client!.subscribe(this.topic('errors'), { qos: 1 });
      // Every session: the gateway sends what is still pending when it sees this subscription.
      if (this.o.commands) this.client!.subscribe(this.topic('commands'), { qos: 1 });
      this.client!.publish(this.topic('status'), this.status('online'), { qos: 1, retain: true });
      this.emit('connect');
      this.pump();
    });
    this.client.on('message', (topic, payload) => {
      if (topic === this.topic('commands')) { this.emit('command', payload); return; }
      if (topic !== this.topic('errors')) return;
      try {
        const r = JSON.parse(payload.toString()) as { ref: string; reason: string };
        this.stats.rejectedByGateway += 1;
        this.stats.lastRejection = { ref: String(r.ref), reason: String(r.reason) };
        this.emit('rejected', r);
      } catch { /* not ours to judge */ }
    });
    this.client.on('close', () => { this.stats.connected = false; this.emit('offline'); });
    this.client.on('error', (err) => { this.stats.lastError = err.message; this.emit('warn', err); });
    this.heartbeat = setInterval(() => {
      if (this.client?.connected) this.client.publish(this.topic('status'), this.status('online'), { qos: 1, retain: true });
    }, this.o.heartbeatS * 1000);
    this.heartbeat.unref();
  }

  /** Called after events of this device were queued. */
  pump(): void {
    if (this.pumping || this.stopped || !this.client?.connected) return;
    this.pumping = true;
    try {
      while (this.inflight.size < this.o.window) {
        const rows = this.outbox.next(this.o.deviceId, this.cursor, MAX_BATCH * (this.o.window - this.inflight.size));
        if (rows.length === 0) break;
        for (const msg of messages(rows)) {
          if (this.inflight.size >= this.o.window) break;
          this.cursor = msg.seqs[msg.seqs.length - 1]!;
          this.send(msg.channel, msg.body, msg.seqs);
        }
      }
    } finally {
      this.pumping = false;
      this.stats.inflight = this.inflight.size;
    }
  }

  private send(channel: string, body: Buffer, seqs: number[]): void {
    const key = seqs[0]!;
    this.inflight.set(key, seqs);
    const client = this.client!;
    client.publish(this.topic(channel), body, { qos: 1 }, (err) => {
      if (client !== this.client || this.inflight.get(key) !== seqs) return;
      this.inflight.delete(key);
      if (err) return; // not acknowledged: stays queued, resent after the reconnect
      this.outbox.done(seqs);
      this.stats.sent += seqs.length;
      this.stats.lastPublishAt = this.o.now();
      this.emit('sent', seqs.length);
      this.pump();
    });
  }

  snapshot(): LinkStats {
    return { ...this.stats, inflight: this.inflight.size };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.heartbeat);
    if (this.client) {
      if (this.client.connected) await this.client.publishAsync(this.topic('status'), this.status('offline'), { qos: 1, retain: true }).catch(() => {});
      await this.client.endAsync(true);
    }
  }
}

/** Groups queued rows into MQTT messages: runs of readings become batches, the rest go alone. */
export function* messages(rows: QueuedEvent[]): Generator<{ channel: string; body: Buffer; seqs: number[] }> {
  let run: QueuedEvent[] = [];
  let runBytes = 0;
  const flush = () => {
    const body = run.length === 1 ? run[0]!.payload : Buffer.concat([Buffer.from('{"batch":['), ...run.flatMap((r, i) => (i ? [Buffer.from(','), r.payload] : [r.payload])), Buffer.from(']}')]);
    const out = { channel: 'telemetry', body, seqs: run.map((r) => r.seq) };
    run = [];
    runBytes = 0;
    return out;
  };
  for (const r of rows) {
    if (r.channel === 'telemetry') {
      if (run.length >= MAX_BATCH || (run.length > 0 && runBytes + r.payload.length + 1 > MAX_BATCH_BYTES)) yield flush();
      run.push(r);
      runBytes += r.payload.length + 1;
      continue;
    }
    if (run.length) yield flush();
    yield { channel: r.channel, body: r.payload, seqs: [r.seq] };
  }
  if (run.length) yield flush();
}
