import type { Aedes, AedesPublishPacket, Client, Subscription } from 'aedes';
import type { Logger } from 'pino';
import { CommandResult } from '../../../schemas/src/command.ts';
import type { Clock } from '../clock/clock.ts';
import type { Reason } from '../errors.ts';
import { parseTimestamp } from '../ingest/timestamps.ts';
import { deviceTopic, parseDeviceTopic } from '../ingest/topics.ts';
import type { Metrics } from '../observability/metrics.ts';
import { CommandStore, type CommandRecord } from './commandStore.ts';

type DeviceClient = Client & { sitegate?: { type: string; device?: { deviceId: string; siteId: string } } };

const deviceOf = (c: Client | null | undefined) => {
  const id = (c as DeviceClient | null | undefined)?.sitegate;
  return id?.type === 'device' ? id.device : undefined;
};

function commandIdOf(payload: Buffer | string): string | null {
  try {
    const id = (JSON.parse(Buffer.from(payload).toString('utf8')) as { commandId?: unknown }).commandId;
    return typeof id === 'string' ? id : null;
  } catch {
    return null;
  }
}

export type ResultAnswer = { ok: true; duplicate?: boolean } | { ok: false; reason: Reason; message: string };

/**
 * Takes commands to their devices over MQTT (contract §7). A device that subscribes to its own
 * `…/commands` gets every pending command not yet expired, oldest first; a command created while
 * it is subscribed goes out at once. The device's PUBACK makes a command `delivered` (matched to
 * its PUBLISH by order, see `attach`); until then each new subscription sends it
 * again, so a device that was away — or a gateway that restarted — loses nothing, and the device
 * tells repeats apart by `commandId`. Results arrive through the broker's publish hook (`result`).
 */
export class CommandDelivery {
  /** Devices with a live subscription to their own commands topic. */
  private readonly listening = new Set<string>();
  private timer?: NodeJS.Timeout;

  /**
   * `listenersElsewhere`: region mode, where the device may be subscribed on another instance
   * this one does not see, so a new command is published at once (nobody hears it if the device
   * is away; its next subscription sends it again).
   */
  constructor(private readonly o: { store: CommandStore; metrics: Metrics; logger: Logger; now: Clock; sweepMs: number; listenersElsewhere?: boolean }) {
    o.store.onCreated((c) => {
      o.metrics.commands.inc({ event: 'created' });
      if (this.aedes && (o.listenersElsewhere || this.listening.has(c.deviceId))) this.send(c);
    });
  }

  private aedes?: Aedes;

  /** Attaches to the broker's events; call once the broker exists. */
  attach(aedes: Aedes): void {
    this.aedes = aedes;
    aedes.on('subscribe', (subs: Subscription[], client: Client) => {
      const d = deviceOf(client);
      if (!d || !subs.some((s) => s.topic === deviceTopic(d.siteId, d.deviceId, 'commands'))) return;
      this.listening.add(d.deviceId);
      this.sendUndelivered(d.deviceId);
    });
    aedes.on('unsubscribe', (topics: string[], client: Client) => {
      const d = deviceOf(client);
      if (d && topics.includes(deviceTopic(d.siteId, d.deviceId, 'commands'))) this.listening.delete(d.deviceId);
    });
    aedes.on('clientDisconnect', (client: Client) => {
      const d = deviceOf(client);
      if (d) this.listening.delete(d.deviceId);
    });
    // PUBACKs carry only a packet id, and for a clean session aedes keeps no copy of what it sent
    // (its `ack` event then has no packet). But a client must acknowledge QoS 1 PUBLISHes in the
    // order it received them (MQTT-4.6.0-2), and aedes writes them in the order it forwarded
    // them (`forwarded`, from the broker's authorizeForward), so each PUBACK answers the head of
    // this client's queue.
    aedes.on('ack', (_packet, client) => {
      const q = this.inFlight.get(client);
      const commandId = q?.shift();
      const d = deviceOf(client);
      if (!commandId || !d) return;
      if (this.o.store.delivered(commandId, d.deviceId)) this.o.metrics.commands.inc({ event: 'delivered' });
    });
  }

  /** QoS 1 messages written to each device client, oldest first: a command's id, or null for anything else. */
  private readonly inFlight = new WeakMap<Client, (string | null)[]>();

  /** The broker forwards `packet` to `client` (its authorizeForward hook). */
  forwarded(client: Client, packet: AedesPublishPacket): void {
    const d = deviceOf(client);
    if (!d) return;
    // aedes downgrades to the subscription's QoS (MQTT-3.8.4-6): a QoS 0 delivery has no PUBACK.
    const sub = (client as Client & { subscriptions?: Record<string, { qos: number }> }).subscriptions?.[packet.topic];
    if (!packet.qos || !sub?.qos) return;
    let q = this.inFlight.get(client);
    if (!q) this.inFlight.set(client, (q = []));
    // A client that stops acknowledging: forget (its commands stay pending and go again at its next subscription).
    if (q.length >= 65_535) q.length = 0;
    q.push(packet.topic === deviceTopic(d.siteId, d.deviceId, 'commands') ? commandIdOf(packet.payload) : null);
  }

  start(): void {
    if (this.o.sweepMs <= 0) return;
    this.timer = setInterval(() => this.sweep(), this.o.sweepMs);
    this.timer.unref();
  }

  /** Expires pending commands past `expiresAt` and delivered ones never answered (also run by the timer). Returns how many. */
  sweep(): number {
    const { undelivered, unanswered } = this.o.store.expireDue(this.o.now());
    if (undelivered) this.o.metrics.commands.inc({ event: 'expired' }, undelivered);
    if (unanswered) this.o.metrics.commands.inc({ event: 'expired_unanswered' }, unanswered);
    return undelivered + unanswered;
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private sendUndelivered(deviceId: string): void {
    for (const c of this.o.store.undelivered(deviceId, this.o.now())) this.send(c);
  }

  private send(c: CommandRecord): void {
    if (c.expiresAt <= this.o.now()) return; // the sweep expires it
    const payload = Buffer.from(JSON.stringify(CommandStore.message(c)));
    this.aedes!.publish({ cmd: 'publish', topic: deviceTopic(c.siteId, c.deviceId, 'commands'), payload, qos: 1, retain: false, dup: false }, (err) => {
      if (err) this.o.logger.warn({ err, commandId: c.commandId }, 'command publish failed; sent again at the next subscription');
    });
  }

  /** A device's publish on its own `…/command-results` (the broker checked the topic is its own). */
  result(topic: string, payload: Buffer): ResultAnswer {
    const t = parseDeviceTopic(topic)!;
    let value: unknown;
    try { value = JSON.parse(payload.toString('utf8')); } catch {
      return this.rejected('invalid_json', 'payload is not valid UTF-8 JSON');
    }
    const r = CommandResult.safeParse(value);
    if (!r.success) return this.rejected('schema_invalid', r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; '));
    const ts = parseTimestamp(r.data.ts, this.o.now());
    if (!ts.ok) return this.rejected(ts.reason, ts.message);
    const out = this.o.store.result(t.deviceId, r.data, ts.ms);
    if (out.outcome === 'rejected') return this.rejected(out.reason, out.message);
    if (out.outcome === 'duplicate') return { ok: true, duplicate: true };
    if (out.outcome === 'late') {
      this.o.metrics.commands.inc({ event: 'late_result' });
      return { ok: true };
    }
    this.o.metrics.commands.inc({ event: out.command.state });
    return { ok: true };
  }

  private rejected(reason: Reason, message: string): ResultAnswer {
    this.o.metrics.rejected.inc({ reason, via: 'mqtt' });
    return { ok: false, reason, message };
  }
}
