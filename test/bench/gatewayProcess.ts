/**
 * The system under test of the ingest benchmark, in a child process of its own (so its RSS, its
 * CPU time and a `--cpu-prof` profile are its own, and the load generator never shares its event
 * loop). Three targets, started the same way:
 *
 *   bare       aedes with no auth and a `published` handler that only counts (the baseline);
 *   mosquitto  Debian's Mosquitto (its own process, started here) and one subscriber to every
 *              device topic at QoS 1, counting deliveries and answering each with PUBACK: the
 *              path a site without sitegate deploys (Mosquitto → Telegraf), minus the storage;
 *   gateway    buildApp() from gateway/src/app.ts with the configuration in SITEGATE_* variables.
 *
 * `BENCH_TARGET` picks one. It reports `{type:'ready', …ports}` over IPC, then answers the
 * commands of `TargetCommand`.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import type { Gateway } from '../../gateway/src/app.ts';

export type TargetCommand =
  | { type: 'waitCount'; target: number; timeoutMs: number }
  | { type: 'waitSinkIdle'; timeoutMs: number }
  | { type: 'stats' }
  | { type: 'resetStats' }
  | { type: 'gc' }
  | { type: 'stop' };

export interface CommitStats { commits: number; records: number; commitMsP50: number; commitMsP95: number; commitMsP99: number; commitMsMean: number; groupMean: number; groupP50: number; groupMax: number }

export type TargetReply =
  | { type: 'ready'; mqttPort: number; httpPort?: number; pid: number; brokerPid?: number }
  | { type: 'reached'; at: number; atMonoUs: number; count: number; timedOut: boolean }
  | { type: 'sinkIdle'; at: number; lagRecords: number; written: number; timedOut: boolean; lastError?: string }
  | { type: 'stats'; count: number; commit?: CommitStats; rss: number; heapUsed: number; clients: number }
  | { type: 'ok' }
  | { type: 'error'; message: string };

const clock = () => performance.timeOrigin + performance.now();

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

interface Target {
  count(): number;
  clients(): number;
  onCount(listener: () => void): () => void;
  commitStats?(): CommitStats;
  resetStats?(): void;
  sinkState?(): { lagRecords: number; lastError?: string };
  stop(): Promise<void>;
}

async function bare(): Promise<{ target: Target; mqttPort: number }> {
  let published = 0;
  const listeners = new Set<() => void>();
  const { Aedes } = await import('aedes');
  const broker = await Aedes.createBroker({
    // The baseline's `published`: nothing but a counter (QoS 0 throughput is measured by it).
    published: (packet, client, cb) => {
      if (client) { published++; for (const l of listeners) l(); }
      cb(null);
    },
  });
  const server = net.createServer(broker.handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    mqttPort: (server.address() as net.AddressInfo).port,
    target: {
      count: () => published,
      clients: () => broker.connectedClients,
      onCount: (l) => { listeners.add(l); return () => listeners.delete(l); },
      async stop() {
        await new Promise<void>((r) => broker.close(() => r()));
        await new Promise<void>((r) => server.close(() => r()));
      },
    },
  };
}

/** A loopback port nobody listens on right now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * The peer: Mosquitto with one QoS 1 subscriber to `sites/#` (what Telegraf's mqtt_consumer
 * would be). Mosquitto PUBACKs a publisher on receipt; its queue to the subscriber is unbounded
 * here (`max_queued_messages 0`) so that no message is dropped and every one is counted, and up
 * to 1,000 deliveries may await the subscriber's PUBACK (Telegraf's default
 * max_undelivered_messages).
 */
async function mosquitto(): Promise<{ target: Target; mqttPort: number; brokerPid: number }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sitegate-bench-mosq-'));
  const port = await freePort();
  const conf = path.join(dir, 'mosquitto.conf');
  fs.writeFileSync(conf, [
    `listener ${port} 127.0.0.1`, 'allow_anonymous true', 'persistence false', 'max_queued_messages 0',
    'max_inflight_messages 1000', 'log_dest stderr', 'log_type error', 'log_type warning', 'log_type notice', 'log_type information', '',
  ].join('\n'));
  const broker = spawn(process.env.BENCH_MOSQUITTO_BIN!, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise<void>((r) => broker.once('exit', () => r()));
  process.once('exit', () => broker.kill('SIGTERM')); // never outlive the target process
  await new Promise<void>((resolve, reject) => {
    const lines = readline.createInterface({ input: broker.stderr! });
    lines.on('line', (l) => { if (/mosquitto version .* running/.test(l)) { lines.removeAllListeners('line'); lines.on('line', () => {}); resolve(); } });
    broker.once('exit', (code) => reject(new Error(`mosquitto exited with code ${code} during start`)));
    broker.once('error', reject);
  });
  const { FrameReader, mqttStr, remainingLength } = await import('./mqttFrames.ts');
  let delivered = 0;
  const listeners = new Set<() => void>();
  const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
  const subscribed = new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    const reader = new FrameReader((type, body, flags) => {
      if (type === 2) {
        // CONNACK: subscribe to every device topic at QoS 1 (MQTT 3.1.1 §3.8).
        const b = Buffer.concat([Buffer.from([0, 1]), mqttStr('sites/#'), Buffer.from([1])]);
        socket.write(Buffer.concat([Buffer.from([0x82, ...remainingLength(b.length)]), b]));
      } else if (type === 9) resolve();
      else if (type === 3) {
        const qos = (flags >> 1) & 3;
        if (qos > 0) {
          const at = 2 + body.readUInt16BE(0);
          acks.push(Buffer.from([0x40, 2, body[at]!, body[at + 1]!])); // PUBACK (§3.4)
        }
        delivered++;
      }
    });
    const acks: Buffer[] = [];
    socket.on('data', (chunk) => {
      const before = delivered;
      reader.push(chunk);
      if (acks.length) socket.write(acks.length === 1 ? acks[0]! : Buffer.concat(acks));
      acks.length = 0;
      if (delivered !== before) for (const l of listeners) l();
    });
    const body = Buffer.concat([mqttStr('MQTT'), Buffer.from([4, 0x02, 0, 0]), mqttStr('bench-subscriber')]);
    socket.write(Buffer.concat([Buffer.from([0x10, ...remainingLength(body.length)]), body]));
  });
  await subscribed;
  return {
    mqttPort: port, brokerPid: broker.pid!,
    target: {
      count: () => delivered,
      clients: () => NaN,
      onCount: (l) => { listeners.add(l); return () => listeners.delete(l); },
      async stop() {
        socket.destroy();
        broker.kill('SIGTERM');
        await exited;
        fs.rmSync(dir, { recursive: true, force: true });
      },
    },
  };
}

async function gateway(): Promise<{ target: Target; mqttPort: number; httpPort: number }> {
  const { buildApp } = await import('../../gateway/src/app.ts');
  const { loadConfig } = await import('../../gateway/src/config/loadConfig.ts');
  const gw: Gateway = await buildApp(loadConfig(process.env));
  // Exact commit timings and group sizes, next to the Prometheus histograms they also feed.
  let commitMs: number[] = [];
  let groups: number[] = [];
  const h = gw.metrics;
  const observeCommit = h.ledgerCommitSeconds.observe.bind(h.ledgerCommitSeconds);
  const observeGroup = h.ledgerGroupSize.observe.bind(h.ledgerGroupSize);
  h.ledgerCommitSeconds.observe = ((v: number) => { commitMs.push(v * 1000); observeCommit(v); }) as typeof h.ledgerCommitSeconds.observe;
  h.ledgerGroupSize.observe = ((v: number) => { groups.push(v); observeGroup(v); }) as typeof h.ledgerGroupSize.observe;
  const { httpPort, mqttPort } = await gw.listen();
  return {
    mqttPort, httpPort,
    target: {
      count: () => gw.ledger.lastSeq,
      clients: () => gw.broker.aedes.connectedClients,
      onCount: (l) => gw.ledger.onCommitted(l),
      commitStats() {
        const c = [...commitMs].sort((a, b) => a - b);
        const g = [...groups].sort((a, b) => a - b);
        const records = g.reduce((a, b) => a + b, 0);
        return {
          commits: c.length, records, commitMsP50: quantile(c, 0.5), commitMsP95: quantile(c, 0.95), commitMsP99: quantile(c, 0.99),
          commitMsMean: c.reduce((a, b) => a + b, 0) / (c.length || 1), groupMean: records / (g.length || 1), groupP50: quantile(g, 0.5), groupMax: g[g.length - 1] ?? 0,
        };
      },
      resetStats() { commitMs = []; groups = []; },
      sinkState: () => {
        const s = gw.sinks[0]?.state();
        return s ? { lagRecords: s.lagRecords, ...(s.lastError ? { lastError: s.lastError } : {}) } : { lagRecords: 0 };
      },
      stop: () => gw.close(),
    },
  };
}

async function handle(t: Target, cmd: TargetCommand): Promise<TargetReply> {
  switch (cmd.type) {
    case 'waitCount':
      return new Promise((resolve) => {
        const check = () => {
          if (t.count() < cmd.target) return false;
          done(false);
          return true;
        };
        const done = (timedOut: boolean) => { off(); clearTimeout(timer); resolve({ type: 'reached', at: clock(), atMonoUs: Number(process.hrtime.bigint() / 1000n), count: t.count(), timedOut }); };
        const off = t.onCount(check);
        const timer = setTimeout(() => done(true), cmd.timeoutMs);
        check();
      });
    case 'waitSinkIdle': {
      const deadline = Date.now() + cmd.timeoutMs;
      for (;;) {
        const s = t.sinkState?.() ?? { lagRecords: 0 };
        if (s.lagRecords === 0 || Date.now() > deadline) {
          return { type: 'sinkIdle', at: clock(), lagRecords: s.lagRecords, written: t.count() - s.lagRecords, timedOut: s.lagRecords > 0, ...(s.lastError ? { lastError: s.lastError } : {}) };
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    }
    case 'stats': {
      const m = process.memoryUsage();
      const commit = t.commitStats?.();
      return { type: 'stats', count: t.count(), ...(commit ? { commit } : {}), rss: m.rss, heapUsed: m.heapUsed, clients: t.clients() };
    }
    case 'resetStats':
      t.resetStats?.();
      return { type: 'ok' };
    case 'gc':
      (globalThis as { gc?: () => void }).gc?.();
      return { type: 'ok' };
    case 'stop':
      await t.stop();
      return { type: 'ok' };
  }
}

if (process.send) {
  const mode = process.env.BENCH_TARGET;
  const started = mode === 'bare' ? await bare() : mode === 'gateway' ? await gateway() : mode === 'mosquitto' ? await mosquitto() : null;
  if (!started) throw new Error(`BENCH_TARGET must be bare, mosquitto or gateway, not ${mode}`);
  const { target } = started;
  // Requests carry an `rid` that their reply echoes: a `waitCount` may be answered after later requests.
  process.on('message', ({ rid, ...cmd }: TargetCommand & { rid: number }) => {
    handle(target, cmd as TargetCommand).then(
      // After `stop` the process exits through process.exit, which still writes a --cpu-prof profile.
      (reply) => process.send!({ rid, ...reply }, () => { if (cmd.type === 'stop') process.exit(0); }),
      (err: Error) => process.send!({ rid, type: 'error', message: err.stack ?? err.message }),
    );
  });
  const httpPort = 'httpPort' in started ? (started.httpPort as number) : undefined;
  const brokerPid = 'brokerPid' in started ? (started.brokerPid as number) : undefined;
  process.send({ type: 'ready', mqttPort: started.mqttPort, ...(httpPort ? { httpPort } : {}), ...(brokerPid ? { brokerPid } : {}), pid: process.pid } satisfies TargetReply);
}
