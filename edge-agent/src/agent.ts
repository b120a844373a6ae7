import { EventEmitter } from 'node:events';
import mqtt from 'mqtt';
import { Outbox } from './outbox.ts';

export interface EdgeAgentOptions {
  /** mqtt://host:1883 or ws://host:8083 */
  url: string;
  siteId: string;
  deviceId: string;
  secret: string;
  /** SQLite file of the store-and-forward buffer. */
  outboxFile: string;
  /** QoS 1 publishes in flight (default 100). */
  window?: number;
  /** `status` heartbeat period; face terminals must send one at least every 15 min (domain.md). */
  heartbeatS?: number;
  firmware?: string;
  reconnectMs?: number;
  /** Calendar clock for status times and the outbox (tests set one; default the system clock). */
  now?: () => number;
}

type Channel = 'checkin' | 'telemetry' | 'snapshot';

/**
 * An edge agent for a face terminal, camera or sensor: buffers every message durably, publishes
 * it with QoS 1 under its own topics, forgets it on PUBACK, announces itself `online` (retained)
 * with an `offline` Last Will, heartbeats, and resends whatever was not acknowledged after a
 * reconnect or a restart. Emits `sent` (seq), `rejected` ({ref, reason}) from the gateway's
 * errors topic, `connect`, `offline`.
 */
export class EdgeAgent extends EventEmitter {
  private readonly o: Required<Omit<EdgeAgentOptions, 'firmware'>> & { firmware?: string };
  private readonly outbox: Outbox;
  private client?: mqtt.MqttClient;
  private inflight = new Set<number>();
  private cursor = 0;
  private pumping = false;
  private heartbeat?: NodeJS.Timeout;
  private stopped = false;

  constructor(opts: EdgeAgentOptions) {
    super();
    this.o = { window: 100, heartbeatS: 300, reconnectMs: 2000, now: () => Date.now(), ...opts };
    this.outbox = new Outbox(opts.outboxFile, this.o.now);
  }

  private topic(channel: string): string {
    return `sites/${this.o.siteId}/devices/${this.o.deviceId}/${channel}`;
  }

  private status(state: 'online' | 'offline') {
    return JSON.stringify({ state, ts: new Date(this.o.now()).toISOString(), ...(this.o.firmware ? { firmware: this.o.firmware } : {}) });
  }

  /** Stores a message durably; it is sent as soon as the gateway is reachable. */
  send(channel: Channel, message: Record<string, unknown> | Buffer): number {
    const payload = Buffer.isBuffer(message) ? message.toString('base64') : JSON.stringify(message);
    const seq = this.outbox.put(this.topic(channel), channel === 'snapshot' ? `b64:${payload}` : payload);
    this.pump();
    return seq;
  }

  get pending(): number {
    return this.outbox.size;
  }

  start(): void {
    this.client = mqtt.connect(this.o.url, {
      username: this.o.deviceId, password: this.o.secret, clientId: `edge-${this.o.deviceId}`, protocolVersion: 4,
      clean: true, reconnectPeriod: this.o.reconnectMs, connectTimeout: 10_000,
      will: { topic: this.topic('status'), payload: Buffer.from(this.status('offline')), qos: 1, retain: true },
    });
    this.client.on('connect', () => {
      // Unacknowledged messages of the previous connection are resent from the outbox, in order.
      this.inflight.clear();
      this.cursor = 0;
      this.client!.subscribe(this.topic('errors'), { qos: 1 });
      this.client!.publish(this.topic('status'), this.status('online'), { qos: 1, retain: true });
      this.emit('connect');
      this.pump();
    });
    this.client.on('message', (topic, payload) => {
      if (topic !== this.topic('errors')) return;
      try { this.emit('rejected', JSON.parse(payload.toString())); } catch { /* not ours to judge */ }
    });
    this.client.on('close', () => this.emit('offline'));
    this.client.on('error', (err) => this.emit('warn', err));
    this.heartbeat = setInterval(() => {
      if (this.client?.connected) this.client.publish(this.topic('status'), this.status('online'), { qos: 1, retain: true });
    }, this.o.heartbeatS * 1000);
    this.heartbeat.unref();
  }

  private pump(): void {
    if (this.pumping || this.stopped || !this.client?.connected) return;
    this.pumping = true;
    try {
      while (this.inflight.size < this.o.window) {
        const batch = this.outbox.next(this.cursor, this.o.window - this.inflight.size);
        if (batch.length === 0) break;
        for (const item of batch) {
          this.cursor = item.seq;
          this.inflight.add(item.seq);
          const body = item.payload.startsWith('b64:') ? Buffer.from(item.payload.slice(4), 'base64') : item.payload;
          const client = this.client;
          client.publish(item.topic, body, { qos: 1 }, (err) => {
            if (client !== this.client || !this.inflight.has(item.seq)) return;
            this.inflight.delete(item.seq);
            if (err) return; // not acknowledged: stays in the outbox, resent after reconnect
            this.outbox.done(item.seq);
            this.emit('sent', item.seq);
            this.pump();
          });
        }
      }
    } finally {
      this.pumping = false;
    }
  }

  /** Waits until the outbox is empty (everything acknowledged). */
  async drained(): Promise<void> {
    while (this.outbox.size > 0) await new Promise((r) => this.once('sent', r));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.heartbeat);
    if (this.client) {
      if (this.client.connected) await this.client.publishAsync(this.topic('status'), this.status('offline'), { qos: 1, retain: true }).catch(() => {});
      await this.client.endAsync(true);
    }
    this.outbox.close();
  }
}
