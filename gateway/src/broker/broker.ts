import net from 'node:net';
import http from 'node:http';
import { Aedes, type AedesPublishPacket, type AuthenticateError, type Client, type Subscription } from 'aedes';
import { WebSocketServer, createWebSocketStream } from 'ws';
import type { Logger } from 'pino';
import type { Reason } from '../errors.ts';
import type { Ingestor, PublishReport } from '../ingest/ingestor.ts';
import { deviceTopic, isInboundChannel, parseDeviceTopic, type DeviceTopic } from '../ingest/topics.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { Device, Registry, Token } from '../registry/registry.ts';
import { siteInScope } from './access.ts';
import { DEFAULT_RATE_LIMIT, DeviceRateLimit, type RateLimit } from './deviceRateLimit.ts';
import { holdDeliveriesUntilConnack, releaseDeliveries } from './connackFirst.ts';
import { redisBackplane, type RedisBackplane } from './redisBackplane.ts';

type Identity = { type: 'device'; device: Device; log: Logger } | { type: 'token'; token: Token; log: Logger };

interface SitegateClient extends Client {
  sitegate?: Identity;
  /** The topic of this client's last publish, parsed: a device publishes on the same few topics (issue 11). */
  sitegateTopic?: { topic: string; parsed: DeviceTopic | null };
}

/** aedes' CONNACK return codes (MQTT 3.1.1 §3.2.2.3). */
const BAD_USERNAME_OR_PASSWORD = 4;
const NOT_AUTHORIZED = 5;

const connackError = (message: string, returnCode: 4 | 5) => Object.assign(new Error(message), { returnCode }) as AuthenticateError;

/**
 * Where a message goes that nobody may receive (wholly rejected content, command results): aedes
 * has no way for authorizePublish to accept a message without publishing it, and a mark on the
 * packet is lost when aedes copies it (aedes-packet) or another instance decodes it (Redis). No
 * client may subscribe here (`$` topics: MQTT-4.7.2-1 and our subscribe ACL), so nothing is
 * retained, queued or forwarded, on this instance or any other.
 */
const DISCARDED = '$SYS/sitegate/discarded';

/** Region mode (contract §8): this instance's name and the Redis that joins it to the others. */
export interface BrokerRegion {
  instanceId: string;
  redisUrl: string;
}

/** Commands (contract §7; commands/commandDelivery.ts): where a device's answers go, and what was forwarded to it. */
export interface CommandLink {
  result(topic: string, payload: Buffer): { ok: true; duplicate?: boolean } | { ok: false; reason: Reason; message: string };
  forwarded(client: Client, packet: AedesPublishPacket): void;
}

export interface BrokerDeps {
  registry: Registry;
  ingestor: Ingestor;
  metrics: Metrics;
  logger: Logger;
  commands?: CommandLink;
  /** Absent: the embedded default (aedes' in-memory emitter and persistence). */
  region?: BrokerRegion;
}

/**
 * The embedded broker (aedes). Policy lives in aedes' hooks: `authenticate` checks credentials,
 * `authorizePublish` confines devices to their own topics and runs the whole durable ingest
 * before it calls back — in aedes 1.2 the QoS 1 PUBACK is written right after that callback,
 * so a PUBACK always follows the ledger commit (MQTT-4.3.2-2 ownership transfer).
 */
export class Broker {
  readonly aedes: Aedes;
  private readonly deps: BrokerDeps;
  private readonly rateLimit = new DeviceRateLimit();
  private tcp?: net.Server;
  private ws?: { http: http.Server; wss: WebSocketServer };
  readonly connectedDevices = new Set<string>();

  private readonly backplane: RedisBackplane | undefined;

  private constructor(aedes: Aedes, deps: BrokerDeps, backplane: RedisBackplane | undefined) {
    this.aedes = aedes;
    this.deps = deps;
    this.backplane = backplane;
    aedes.on('client', (c: SitegateClient) => {
      deps.metrics.mqttClients.inc();
      if (c.sitegate?.type === 'device') this.connectedDevices.add(c.sitegate.device.deviceId);
    });
    aedes.on('clientDisconnect', (c: SitegateClient) => {
      deps.metrics.mqttClients.dec();
      if (c.sitegate?.type === 'device') this.connectedDevices.delete(c.sitegate.device.deviceId);
    });
    aedes.on('clientError', (c: SitegateClient, err: Error) => {
      (c.sitegate?.log ?? deps.logger).debug({ err: err.message, clientId: c.id }, 'mqtt client error');
    });
    // aedes emits 'error' for persistence failures and wills it could not publish; unheard, it would throw.
    (aedes as unknown as NodeJS.EventEmitter).on('error', (err: Error) => deps.logger.error({ err: err.message }, 'mqtt broker error'));
  }

  static async create(deps: BrokerDeps): Promise<Broker> {
    let self: Broker | undefined;
    const backplane = deps.region ? redisBackplane(deps.region.redisUrl, deps.logger) : undefined;
    const aedes = await Aedes.createBroker({
      // In region mode the id tells the instances apart: aedes closes a client that connects
      // elsewhere with the same client id (MQTT-3.1.4-2, `$SYS/<id>/new/clients`) and publishes
      // the wills of an instance whose heartbeats stopped.
      id: deps.region?.instanceId ?? 'sitegate',
      ...(backplane ? { mq: backplane.mq, persistence: backplane.persistence } : {}),
      // MQTT-3.2.0-1, CONNACK first: see connackFirst.ts.
      preConnect: (client, _packet, cb) => {
        holdDeliveriesUntilConnack(client as never);
        cb(null, true);
      },
      authenticate: (client, username, password, cb) => self!.authenticate(client as SitegateClient, username, password, cb),
      authorizePublish: (client, packet, cb) => self!.authorizePublish(client as SitegateClient | null, packet as AedesPublishPacket, cb),
      authorizeSubscribe: (client, sub, cb) => self!.authorizeSubscribe(client as SitegateClient, sub, cb),
      authorizeForward: (client, packet) => {
        // The subscribe ACL again, on the message itself: a session restored from persistence
        // (another instance, or a client id reused by another principal) carries messages queued
        // for whoever held it before.
        if (!self!.mayReceive(client as SitegateClient, packet.topic)) return null;
        self!.deps.commands?.forwarded(client, packet as AedesPublishPacket);
        return packet;
      },
    });
    aedes.on('connackSent', (_connack, client) => releaseDeliveries(client));
    self = new Broker(aedes, deps, backplane);
    return self;
  }

  async listen(opts: { host: string; port: number; wsPort: number }): Promise<{ port: number; wsPort: number }> {
    this.tcp = net.createServer((socket) => this.aedes.handle(socket));
    await new Promise<void>((resolve, reject) => {
      this.tcp!.once('error', reject);
      this.tcp!.listen(opts.port, opts.host, () => { this.tcp!.off('error', reject); resolve(); });
    });
    const port = (this.tcp.address() as net.AddressInfo).port;
    let wsPort = 0;
    if (opts.wsPort !== 0) {
      const server = http.createServer((_req, res) => { res.writeHead(426).end('MQTT over WebSocket only\n'); });
      // Listen first, then attach ws: ws re-emits server errors on the WebSocketServer, and a
      // failed listen (port in use) must reject here, not become an uncaught 'error' event.
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(opts.wsPort, opts.host, () => { server.off('error', reject); resolve(); });
      });
      const wss = new WebSocketServer({ server, perMessageDeflate: false });
      wss.on('error', (err) => this.deps.logger.error({ err }, 'MQTT WebSocket listener error'));
      wss.on('connection', (socket, req) => {
        const stream = createWebSocketStream(socket);
        stream.on('error', () => {}); // a broken socket is aedes' clientError, not the process's
        this.aedes.handle(stream as never, req as never);
      });
      this.ws = { http: server, wss };
      wsPort = (server.address() as net.AddressInfo).port;
    }
    return { port, wsPort };
  }

  /** Stops accepting connections (clean shutdown step 1); connected clients stay until close(). */
  stopListening(): void {
    this.tcp?.close();
    this.ws?.wss.close();
    this.ws?.http.close();
  }

  async close(): Promise<void> {
    this.stopListening();
    // Closing aedes disconnects every client; wills are not published on the broker's own close.
    await new Promise<void>((r) => this.aedes.close(() => r()));
    await this.backplane?.close();
    if (this.ws) {
      for (const c of this.ws.wss.clients) c.terminate();
      this.ws.http.closeAllConnections();
    }
  }

  /** Publishes from the gateway itself (errors to devices, alerts to subscribers). */
  publish(topic: string, payload: unknown, qos: 0 | 1 = 1): void {
    this.aedes.publish({ cmd: 'publish', topic, payload: Buffer.from(JSON.stringify(payload)), qos, retain: false, dup: false }, () => {});
  }

  private authenticate(client: SitegateClient, username: string | undefined, password: Buffer | undefined, cb: (err: AuthenticateError | null, ok: boolean | null) => void): void {
    const { registry, metrics, logger } = this.deps;
    const fail = (why: string) => {
      metrics.authFailures.inc({ transport: 'mqtt' });
      logger.warn({ clientId: client.id, username, why }, 'mqtt authentication refused');
      cb(connackError(why, BAD_USERNAME_OR_PASSWORD), null);
    };
    const refuseWill = () => {
      metrics.aclRefusals.inc({ reason: 'topic_not_allowed', action: 'publish' });
      logger.warn({ clientId: client.id, username }, 'mqtt connection refused: will on a topic this client may not publish');
      cb(connackError('will topic not allowed', NOT_AUTHORIZED), null);
    };
    if (!username || !password) return fail('missing username or password');
    const secret = password.toString('utf8');
    if (username === 'token') {
      const token = registry.authenticateToken(secret);
      if (!token) return fail('unknown, expired or revoked token');
      if (token.role === 'terminal') return fail('terminal tokens are for HTTP ingest; devices use their secret');
      client.sitegate = { type: 'token', token, log: logger.child({ tokenId: token.id, role: token.role }) };
      if (!this.willAllowed(client.sitegate, (client as { _will?: { topic?: string } })._will)) return refuseWill();
      return cb(null, true);
    }
    registry.verifyDevice(username, secret).then(
      (device) => {
        if (!device) return fail('unknown device or wrong secret');
        client.sitegate = { type: 'device', device, log: logger.child({ siteId: device.siteId, deviceId: device.deviceId }) };
        if (!this.willAllowed(client.sitegate, (client as { _will?: { topic?: string } })._will)) return refuseWill();
        cb(null, true);
      },
      (err) => { logger.error({ err }, 'device verification failed'); cb(connackError('server error', NOT_AUTHORIZED), null); },
    );
  }

  private refusePublish(client: SitegateClient, topic: string, reason: Reason, cb: (err?: Error | null) => void): void {
    this.deps.metrics.aclRefusals.inc({ reason, action: 'publish' });
    (client.sitegate?.log ?? this.deps.logger).warn({ topic, reason }, 'publish refused; closing connection (MQTT-3.3.5-2)');
    cb(new Error(`${reason}: ${topic}`));
  }

  private authorizePublish(client: SitegateClient | null, packet: AedesPublishPacket, cb: (err?: Error | null) => void): void {
    // aedes asks with no client only for a will it took over from an instance that stopped (the
    // gateway's own publishes never come here): in region mode, a device's will on another instance.
    if (!client) return this.orphanWill(packet, cb);
    const id = client.sitegate;
    if (!id || id.type !== 'device') return this.refusePublish(client, packet.topic, 'topic_not_allowed', cb);
    let last = client.sitegateTopic;
    if (last === undefined || last.topic !== packet.topic) client.sitegateTopic = last = { topic: packet.topic, parsed: parseDeviceTopic(packet.topic) };
    const t = last.parsed;
    if (!t) return this.refusePublish(client, packet.topic, 'topic_not_allowed', cb);
    if (t.deviceId !== id.device.deviceId) return this.refusePublish(client, packet.topic, 'wrong_device', cb);
    if (t.siteId !== id.device.siteId) return this.refusePublish(client, packet.topic, 'wrong_site', cb);
    // Gateway → device only: a device publishing here could command itself or fake an error.
    if (t.channel === 'errors' || t.channel === 'commands') return this.refusePublish(client, packet.topic, 'topic_not_allowed', cb);
    if (t.channel === 'command-results') {
      // Stored (state.db, synchronous) before the callback, so the PUBACK follows the commit.
      const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
      const r = this.deps.commands?.result(packet.topic, payload)
        ?? { ok: false as const, reason: 'unknown_channel' as const, message: 'this gateway takes no command results' };
      if (!r.ok) this.report(client, packet, { accepted: 0, duplicate: 0, rejected: [{ ref: packet.topic, reason: r.reason, message: r.message }] });
      else discard(packet); // nobody else may subscribe to it; nothing to forward
      return cb(null);
    }
    if (!isInboundChannel(t.channel)) {
      this.report(client, packet, { accepted: 0, duplicate: 0, rejected: [{ ref: packet.topic, reason: 'unknown_channel' }] });
      this.deps.metrics.rejected.inc({ reason: 'unknown_channel', via: 'mqtt' });
      return cb(null);
    }
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
    this.deps.ingestor.ingestPayload(t.channel, payload, { siteId: t.siteId, deviceId: t.deviceId, topic: packet.topic, via: 'mqtt' }, (err, report) => {
      // Not durable: no PUBACK. Closing the connection makes the device resend (MQTT-4.4.0-1).
      if (err) {
        id.log.error({ err: err.message, topic: packet.topic }, 'ledger append failed; closing connection without PUBACK');
        return cb(err);
      }
      this.report(client, packet, report!);
      const wait = this.rateLimit.take(t.deviceId, Math.max(1, report!.accepted + report!.duplicate + report!.rejected.length), this.rateOf(id.device));
      if (wait === 0) return cb(null);
      // Above its rate: the next packets of this connection are read (and this PUBACK sent) later.
      this.deps.metrics.deviceThrottled.inc({ device: t.deviceId });
      this.deps.metrics.deviceThrottledSeconds.inc({ device: t.deviceId }, wait / 1000);
      const conn = client.conn as { pause?: () => void; resume?: () => void } | undefined;
      conn?.pause?.();
      setTimeout(() => {
        conn?.resume?.();
        cb(null);
      }, wait).unref();
    });
  }

  /**
   * A will whose client was on an instance that died: its topic was checked against its device
   * when that client connected (`willAllowed`), so it is ingested as that device's message, as it
   * would have been there; anything else is discarded (and its will deleted).
   */
  private orphanWill(packet: AedesPublishPacket, cb: (err?: Error | null) => void): void {
    const t = parseDeviceTopic(packet.topic);
    const device = t && this.deps.registry.device(t.deviceId);
    if (!t || !device || device.siteId !== t.siteId || !isInboundChannel(t.channel)) {
      this.deps.logger.warn({ topic: packet.topic }, 'will of a stopped instance\'s client is on no device\'s own topic; discarded');
      discard(packet);
      return cb(null);
    }
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
    this.deps.ingestor.ingestPayload(t.channel, payload, { siteId: t.siteId, deviceId: t.deviceId, topic: packet.topic, via: 'mqtt' }, (err, report) => {
      if (err) return cb(err); // not durable: aedes keeps the will and tries again at its next round
      if (report!.accepted === 0 && report!.duplicate === 0) discard(packet);
      cb(null);
    });
  }

  /** In region mode a will may be published by another instance, with no client to check it against then: checked at CONNECT. */
  private willAllowed(id: Identity, will: { topic?: string } | null | undefined): boolean {
    if (!this.deps.region || !will) return true;
    if (id.type !== 'device') return false; // tokens publish nothing
    const t = will.topic ? parseDeviceTopic(will.topic) : null;
    return !!t && t.deviceId === id.device.deviceId && t.siteId === id.device.siteId && isInboundChannel(t.channel);
  }

  /** The device's ingest rate: its own setting, else its site's, else the default (deviceRateLimit.ts). */
  private rateOf(device: Device): RateLimit {
    const settings = this.deps.registry.site(device.siteId)?.settings;
    const own = settings?.devices?.[device.deviceId]?.ingestRate;
    const site = settings?.ingestRate;
    if (!own && !site) return DEFAULT_RATE_LIMIT; // the common case, on every publish: no object built
    return {
      readingsPerS: own?.readingsPerS ?? site?.readingsPerS ?? DEFAULT_RATE_LIMIT.readingsPerS,
      burst: own?.burst ?? site?.burst ?? DEFAULT_RATE_LIMIT.burst,
    };
  }

  /** Sends each rejection to the device's `…/errors` topic; keeps wholly rejected messages from subscribers. */
  private report(client: SitegateClient, packet: AedesPublishPacket, report: PublishReport): void {
    if (report.rejected.length === 0) return;
    const id = client.sitegate as Extract<Identity, { type: 'device' }>;
    // A refused message reaches no subscriber, and a refused status does not become the retained one.
    if (report.accepted === 0 && report.duplicate === 0) discard(packet);
    const topic = deviceTopic(id.device.siteId, id.device.deviceId, 'errors');
    for (const r of report.rejected) {
      id.log.info({ ref: r.ref, reason: r.reason }, 'message rejected');
      this.publish(topic, { ref: r.ref, reason: r.reason, message: r.message });
    }
  }

  private authorizeSubscribe(client: SitegateClient, sub: Subscription, cb: (err: Error | null, sub: Subscription | null) => void): void {
    const id = client.sitegate;
    // A device hears only what is addressed to it: its rejections and its commands (contract §1, §7).
    const ok = id?.type === 'device'
      ? sub.topic === deviceTopic(id.device.siteId, id.device.deviceId, 'errors') || sub.topic === deviceTopic(id.device.siteId, id.device.deviceId, 'commands')
      : id?.type === 'token' && this.tokenMaySubscribe(id.token, sub.topic);
    if (ok) return cb(null, sub);
    this.deps.metrics.aclRefusals.inc({ reason: 'topic_not_allowed', action: 'subscribe' });
    (id?.log ?? this.deps.logger).warn({ topic: sub.topic }, 'subscription refused');
    cb(null, null); // SUBACK 0x80 for this filter; the connection stays (MQTT-3.9.3)
  }

  /** Whether `client` may be sent a message on `topic`: the subscribe ACL applied to a concrete topic. */
  private mayReceive(client: SitegateClient, topic: string): boolean {
    const id = client.sitegate;
    if (id?.type === 'device') return topic === deviceTopic(id.device.siteId, id.device.deviceId, 'errors') || topic === deviceTopic(id.device.siteId, id.device.deviceId, 'commands');
    return id?.type === 'token' && this.tokenMaySubscribe(id.token, topic);
  }

  /** Read-only feeds for regulators' and auditors' tools, within their token's sites (contract §1). */
  private tokenMaySubscribe(token: Token, filter: string): boolean {
    const p = filter.split('/');
    if (p[0] !== 'sites' || !p[1] || p[1].includes('+') || p[1].includes('#')) return false;
    const site = this.deps.registry.site(p[1]);
    if (!site || !siteInScope(token, site)) return false;
    if (p.length === 3 && p[2] === 'alerts') return true;
    return p.length === 5 && p[2] === 'devices' && !p[3]!.includes('#') && ['telemetry', 'status', 'checkin'].includes(p[4]!);
  }
}

function discard(packet: AedesPublishPacket): void {
  packet.topic = DISCARDED;
  packet.retain = false;
}
