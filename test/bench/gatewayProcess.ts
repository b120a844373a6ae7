/**
 * The system under test of the ingest benchmark, in a child process of its own (so its RSS, its
 * CPU time and a `--cpu-prof` profile are its own, and the load generator never shares its event
 * loop). Two targets, started the same way:
 *
 *   bare     aedes with no auth and a `published` handler that only counts (the baseline);
 *   gateway  buildApp() from gateway/src/app.ts with the configuration in SITEGATE_* variables.
 *
 * `BENCH_TARGET` picks one. It reports `{type:'ready', …ports}` over IPC, then answers the
 * commands of `TargetCommand`.
 */
import net from 'node:net';
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
  | { type: 'ready'; mqttPort: number; httpPort?: number; pid: number }
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
  const started = mode === 'bare' ? await bare() : mode === 'gateway' ? await gateway() : null;
  if (!started) throw new Error(`BENCH_TARGET must be bare or gateway, not ${mode}`);
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
  process.send({ type: 'ready', mqttPort: started.mqttPort, ...(httpPort ? { httpPort } : {}), pid: process.pid } satisfies TargetReply);
}
