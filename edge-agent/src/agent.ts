import Fastify, { type FastifyInstance } from 'fastify';
import type { AgentConfig } from '../../schemas/src/agent.ts';
import { CommandMessage } from '../../schemas/src/command.ts';
import type { Actuator } from './actuators/actuator.ts';
import { createActuators } from './actuators/registry.ts';
import { Outbox, type NewEvent, type PutResult } from './buffer/outbox.ts';
import type { AgentErrorCode } from './errors.ts';
import { DeviceLink } from './publish/deviceLink.ts';
import type { Input, InputContext } from './sources/input.ts';
import { createInputs } from './sources/registry.ts';
import { statusPage } from './status/page.ts';
import { DrainMeter, type AgentStatus, type SourceStats } from './status/status.ts';

export interface AgentDeps {
  /** Event-time clock (tests and the simulator set one; default the system clock). */
  now?: () => number;
  /** Sources built by the caller instead of from `config.sources` (the simulator, tests). */
  inputs?: Input[];
  /** Actuators built by the caller, besides those of `config.actuators`. */
  actuators?: Actuator[];
  firmware?: string;
  /** false: polled sources are not scheduled; the caller drives `gather` (tests). */
  poll?: boolean;
}

/**
 * The agent a site installs: sources → durable queue → one MQTT link per device. `buildAgent`
 * wires it without touching the network; `start` connects and starts the sources, `listen` opens
 * the local HTTP endpoint (equipment pushes, status page), so tests can use `http.inject()`.
 */
export class Agent {
  readonly outbox: Outbox;
  readonly http: FastifyInstance;
  readonly links = new Map<string, DeviceLink>();
  private readonly stats = new Map<string, SourceStats>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly meter = new DrainMeter();
  private started = false;
  private stopping = false;

  private readonly executing = new Set<string>();
  private readonly running = new Set<Promise<unknown>>();

  /** Resolves when every command received so far has been executed and its answer queued. */
  async commandsSettled(): Promise<void> {
    while (this.running.size) await Promise.all([...this.running]);
  }

  constructor(readonly config: AgentConfig, readonly inputs: Input[], private readonly now: () => number, firmware?: string, private readonly poll = true, readonly actuators: Actuator[] = []) {
    this.outbox = new Outbox(config.queue.file, config.queue.maxBytes, now);
    // Pushing equipment sends photos; 12 MiB covers a batch of a few of them in base64.
    this.http = Fastify({ logger: false, bodyLimit: 12 * 1024 * 1024 });
    const g = config.gateway;
    const executes = new Map(actuators.map((a) => [a.device.deviceId, a]));
    const link = (d: { deviceId: string; secret: string }) => {
      if (this.links.has(d.deviceId)) return;
      const l = new DeviceLink(this.outbox, {
        url: g.url, siteId: g.siteId, deviceId: d.deviceId, secret: d.secret, window: g.window,
        heartbeatS: g.heartbeatS, reconnectMs: g.reconnectMs, now, ...(firmware ? { firmware } : {}), commands: executes.has(d.deviceId),
      });
      l.on('sent', (n: number) => this.meter.add(n));
      l.on('warn', () => {}); // connection errors are retried and shown in status (lastError)
      this.links.set(d.deviceId, l);
    };
    for (const input of inputs) {
      if (this.stats.has(input.name)) throw new Error(`two sources named ${input.name}`);
      this.stats.set(input.name, { name: input.name, accepted: 0, refused: 0, errors: {}, counts: {} });
      for (const d of input.devices) link(d);
    }
    for (const a of actuators) {
      const name = `actuator:${a.name}`;
      if (this.stats.has(name)) throw new Error(`two actuators named ${a.name}`);
      this.stats.set(name, { name, accepted: 0, refused: 0, errors: {}, counts: {} });
      link(a.device);
      this.links.get(a.device.deviceId)!.on('command', (payload: Buffer) => {
        const run = this.execute(a, payload).catch((e: unknown) => this.countError(this.stats.get(`actuator:${a.name}`)!, 'command_failed', (e as Error).message));
        this.running.add(run);
        void run.finally(() => this.running.delete(run));
      });
    }
    this.http.get('/status.json', async () => this.status());
    this.http.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').send(statusPage(g.siteId)));
  }

  private context(input: Input): InputContext {
    const st = this.stats.get(input.name)!;
    return {
      now: this.now,
      http: this.http,
      count: (what, n = 1) => { st.counts[what] = (st.counts[what] ?? 0) + n; },
      error: (code, message) => this.countError(st, code, message),
      enqueue: (events: NewEvent[]): PutResult => {
        for (const e of events) if (!this.links.has(e.deviceId)) throw new Error(`${input.name}: no device ${e.deviceId} configured`);
        const r = this.outbox.put(events);
        if (!r.ok) {
          st.refused += events.length;
          this.countError(st, r.reason, r.message);
          return r;
        }
        st.accepted += events.length;
        for (const d of new Set(events.map((e) => e.deviceId))) this.links.get(d)!.pump();
        return r;
      },
    };
  }

  /**
   * One command from the gateway (contract §7): executed once — a command delivered again (the
   * PUBACK was lost, the agent restarted) is recognised by its id and not acted on twice — and
   * answered on `…/command-results` through the durable queue, so the answer survives an outage
   * like any event. Commands past `expiresAt` are answered `ok: false` without acting.
   */
  private async execute(a: Actuator, payload: Buffer): Promise<void> {
    const st = this.stats.get(`actuator:${a.name}`)!;
    let raw: unknown;
    try { raw = JSON.parse(payload.toString('utf8')); } catch { raw = undefined; }
    const commandId = (raw as { commandId?: unknown } | undefined)?.commandId;
    if (typeof commandId !== 'string' || commandId.length === 0 || commandId.length > 128) {
      return this.countError(st, 'command_invalid', `a command without a usable commandId: ${payload.toString('utf8').slice(0, 200)}`);
    }
    if (this.executing.has(commandId) || this.outbox.commandResult(commandId)) { st.counts.repeated = (st.counts.repeated ?? 0) + 1; return; }
    this.executing.add(commandId);
    try {
      const parsed = CommandMessage.safeParse(raw);
      let result: { ok: boolean; message: string };
      if (!parsed.success) {
        result = { ok: false, message: `invalid command: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}` };
        this.countError(st, 'command_invalid', result.message);
      } else {
        const expiresAt = typeof parsed.data.expiresAt === 'number' ? parsed.data.expiresAt : Date.parse(parsed.data.expiresAt);
        result = this.now() > expiresAt
          ? { ok: false, message: `expired at ${new Date(expiresAt).toISOString()}: not executed` }
          : await a.execute(parsed.data);
        if (!result.ok) this.countError(st, 'command_failed', result.message);
      }
      st.counts[result.ok ? 'succeeded' : 'failed'] = (st.counts[result.ok ? 'succeeded' : 'failed'] ?? 0) + 1;
      const answer = { commandId, ts: this.now(), ok: result.ok, message: result.message };
      this.outbox.putCommandResult(a.device.deviceId, commandId, result, Buffer.from(JSON.stringify(answer)));
      this.links.get(a.device.deviceId)!.pump();
    } finally {
      this.executing.delete(commandId);
    }
  }

  private countError(st: SourceStats, code: AgentErrorCode, message: string): void {
    st.errors[code] = (st.errors[code] ?? 0) + 1;
    st.lastError = { code, message, at: this.now() };
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    for (const input of this.inputs) await input.start(this.context(input));
    await this.http.ready();
    for (const link of this.links.values()) link.start();
    if (this.poll) for (const input of this.inputs) if (input.gather && input.intervalS) this.schedule(input);
  }

  /** Polls one after another, never overlapping: a slow device delays its own next poll only. */
  private schedule(input: Input): void {
    const tick = async () => {
      await this.gather(input);
      if (this.stopping) return;
      const t = setTimeout(() => { this.timers.delete(t); void tick(); }, input.intervalS! * 1000);
      this.timers.add(t);
    };
    void tick();
  }

  /** One poll of a polled source; a throw is counted, never fatal. */
  async gather(input: Input): Promise<void> {
    try {
      await input.gather!();
    } catch (e) {
      this.countError(this.stats.get(input.name)!, 'source_failed', (e as Error).message);
    }
  }

  async listen(port = this.config.http.port, host = this.config.http.host): Promise<number> {
    await this.start();
    await this.http.listen({ port, host });
    return (this.http.server.address() as { port: number }).port;
  }

  /** Resolves when every queued event has been acknowledged. */
  async drained(): Promise<void> {
    while (this.outbox.depth > 0) {
      await new Promise<void>((resolve) => {
        const links = [...this.links.values()];
        const done = () => { for (const l of links) l.off('sent', done); resolve(); };
        for (const l of links) l.on('sent', done);
      });
    }
  }

  status(): AgentStatus {
    const now = this.now();
    const oldest = this.outbox.oldestCreatedAt();
    const devices = [...this.links.values()].map((l) => ({ ...l.snapshot(), queued: this.outbox.depthOf(l.snapshot().deviceId) }));
    const lastPublishAt = Number(this.outbox.meta('last_publish_at')) || undefined;
    const rate = this.meter.rate();
    return {
      siteId: this.config.gateway.siteId, at: now, running: true,
      queue: {
        depth: this.outbox.depth, bytes: this.outbox.usedBytes, maxBytes: this.outbox.maxBytes, byChannel: this.outbox.byChannel(),
        ...(oldest !== undefined ? { oldestQueuedAt: oldest, oldestAgeS: Math.max(0, (now - oldest) / 1000) } : {}),
      },
      ...(lastPublishAt ? { lastPublishAt } : {}),
      drain: { ratePerS: rate, ...(rate > 0 && this.outbox.depth > 0 ? { etaS: this.outbox.depth / rate } : {}) },
      devices,
      sources: [...this.stats.values()].map((s) => ({ ...s, errors: { ...s.errors }, counts: { ...s.counts } })),
    };
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const t of this.timers) clearTimeout(t);
    await this.http.close();
    for (const input of this.inputs) await input.stop().catch(() => {});
    await this.commandsSettled(); // an answer is queued before the queue closes
    for (const a of this.actuators) await a.stop().catch(() => {});
    await Promise.all([...this.links.values()].map((l) => l.stop()));
    this.outbox.close();
  }
}

export function buildAgent(config: AgentConfig, deps: AgentDeps = {}): Agent {
  const now = deps.now ?? (() => Date.now());
  const inputs = [...createInputs(config), ...(deps.inputs ?? [])];
  return new Agent(config, inputs, now, deps.firmware, deps.poll ?? true, [...createActuators(config), ...(deps.actuators ?? [])]);
}

