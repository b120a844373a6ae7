/**
 * The edge agent with a backlog (issue 13): its RSS with 100,000 readings in its queue while the
 * gateway is away, and the drain once the gateway is back (events/s from the queue to the gateway,
 * QoS 1, the agent's own batching and window), against a bare mqtt.js publisher sending the same
 * readings in the same shape (batches of 1,000, the same window) to the same gateway in the same run.
 *
 * The agent runs in a child process of its own, so its RSS is the agent's alone (sampled from
 * process.memoryUsage() in the child; peak = the highest sample during the drain). The gateway is
 * in this process, on its embedded store (no InfluxDB), with the site's per-device ingest rate
 * raised so the agent is measured and not the gateway's default 2,000 readings/s limit.
 *
 *   BENCH_ONLY=agent npm run bench          (BENCH_AGENT_BACKLOG=100000)
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { AgentConfig } from '../../schemas/src/agent.ts';
import { buildAgent } from '../../edge-agent/src/agent.ts';
import { freePort, startGateway, tempDir } from '../support/gateway.ts';

const SITE = 'S-BENCH-AGENT';
const T0 = Date.parse('2026-11-02T08:00:00+08:00');
const WINDOW = 20;
const BATCH = 1000;
const MiB = 2 ** 20;

type FromChild =
  | { phase: 'built'; rss: number }
  | { phase: 'filled'; rss: number; fillMs: number }
  | { phase: 'idle'; rss: number; heapUsed: number }
  | { phase: 'drained'; drainMs: number; peakRss: number; rss: number };

const reading = (device: string, i: number) => JSON.stringify({ id: `${device}-${i}`, ts: T0 + i, metrics: { pm10: 40 + (i % 50), noise_dba: 55 } });

/** The child: an agent with `n` queued readings, started against a gateway that is not there yet. */
async function child(): Promise<void> {
  const { url, secret, n, dir } = JSON.parse(process.env.BENCH_AGENT_CHILD!) as { url: string; secret: string; n: number; dir: string };
  const send = (m: FromChild) => process.send!(m);
  const config = AgentConfig.parse({
    gateway: { url, siteId: SITE, reconnectMs: 200, window: WINDOW },
    queue: { file: path.join(dir, 'queue.db') },
    http: { host: '127.0.0.1', port: 0 },
    sources: [{ type: 'station', deviceId: 'ST-AGENT', secret, token: 'bench-station-token-0123' }],
  });
  const agent = buildAgent(config);
  send({ phase: 'built', rss: process.memoryUsage().rss });
  const f0 = performance.now();
  for (let i = 0; i < n; i += BATCH) {
    const events = Array.from({ length: Math.min(BATCH, n - i) }, (_, k) => ({ deviceId: 'ST-AGENT', channel: 'telemetry' as const, msgId: `ST-AGENT-${i + k}`, payload: Buffer.from(reading('ST-AGENT', i + k)) }));
    const r = agent.outbox.put(events);
    if (!r.ok) throw new Error(r.message);
  }
  send({ phase: 'filled', rss: process.memoryUsage().rss, fillMs: performance.now() - f0 });
  await agent.start();
  // Idle with the backlog: the link retries every 200 ms; a fixed window is what is measured here.
  await new Promise((r) => setTimeout(r, 2000));
  globalThis.gc?.();
  send({ phase: 'idle', rss: process.memoryUsage().rss, heapUsed: process.memoryUsage().heapUsed });
  await new Promise<void>((resolve) => process.once('message', () => resolve())); // the gateway is up
  let peak = 0;
  const sample = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 20);
  const d0 = performance.now();
  await agent.drained();
  const drainMs = performance.now() - d0;
  clearInterval(sample);
  peak = Math.max(peak, process.memoryUsage().rss);
  send({ phase: 'drained', drainMs, peakRss: peak, rss: process.memoryUsage().rss });
  await agent.stop();
  process.disconnect();
}

function nextPhase<P extends FromChild['phase']>(c: ChildProcess, phase: P): Promise<Extract<FromChild, { phase: P }>> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: FromChild) => { if (m.phase === phase) { c.off('message', onMessage); c.off('exit', onExit); resolve(m as Extract<FromChild, { phase: P }>); } };
    const onExit = (code: number | null) => reject(new Error(`agent child exited (${code}) before ${phase}`));
    c.on('message', onMessage);
    c.once('exit', onExit);
  });
}

/** A bare mqtt.js publisher: `n` readings in batches of BATCH, WINDOW messages in flight, QoS 1; ms to the last PUBACK. */
async function barePublisher(url: string, device: string, secret: string, n: number): Promise<number> {
  const c = await mqtt.connectAsync(url, { username: device, password: secret, clientId: `bare-${device}`, protocolVersion: 4, reconnectPeriod: 0 });
  const topic = `sites/${SITE}/devices/${device}/telemetry`;
  const t0 = performance.now();
  let next = 0;
  const one = async (): Promise<void> => {
    while (next < n) {
      const from = next;
      next = Math.min(n, next + BATCH);
      const batch = Array.from({ length: next - from }, (_, k) => reading(device, from + k));
      await c.publishAsync(topic, `{"batch":[${batch.join(',')}]}`, { qos: 1 });
    }
  };
  await Promise.all(Array.from({ length: WINDOW }, one));
  const ms = performance.now() - t0;
  await c.endAsync();
  return ms;
}

export async function runAgentBacklogBench(o: { backlog?: number; log?: (s: string) => void } = {}): Promise<Record<string, number>> {
  const n = o.backlog ?? Number(process.env.BENCH_AGENT_BACKLOG ?? 100_000);
  const log = o.log ?? console.log;
  const mqttPort = await freePort();
  const env = { SITEGATE_MQTT_PORT: String(mqttPort) };
  const dataDir = tempDir('sitegate-bench-agent-');
  let g = await startGateway(env, {}, dataDir);
  const agentSecret = await g.device(SITE, 'ST-AGENT');
  const bareSecret = await g.device(SITE, 'ST-BARE');
  const fast = { readingsPerS: 1_000_000, burst: 1_000_000 };
  const put = await g.api('PUT', `/sites/${SITE}`, { name: SITE, regionCode: '330106', settings: { devices: { 'ST-AGENT': { ingestRate: fast }, 'ST-BARE': { ingestRate: fast } } } });
  if (put.status >= 300) throw new Error(`PUT site: ${put.status} ${put.text}`);
  await g.stop({ keepDataDir: true });

  const c = fork(fileURLToPath(import.meta.url), [], {
    execArgv: ['--import', 'tsx', '--expose-gc'],
    env: { ...process.env, BENCH_AGENT_CHILD: JSON.stringify({ url: `mqtt://127.0.0.1:${mqttPort}`, secret: agentSecret, n, dir: tempDir('sitegate-bench-agent-q-') }) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  try {
    const built = await nextPhase(c, 'built');
    const filled = await nextPhase(c, 'filled');
    const idle = await nextPhase(c, 'idle');
    log(`agent RSS ${(built.rss / MiB).toFixed(0)} MiB built, ${(filled.rss / MiB).toFixed(0)} MiB after queueing ${n} readings (${Math.round(n / (filled.fillMs / 1000))}/s), ` +
      `${(idle.rss / MiB).toFixed(0)} MiB started with the backlog and no gateway (heap ${(idle.heapUsed / MiB).toFixed(0)} MiB)`);
    g = await startGateway(env, {}, dataDir, { waitForChecks: false });
    const drained = nextPhase(c, 'drained');
    c.send('go');
    const d = await drained;
    const bareMs = await barePublisher(g.mqttUrl, 'ST-BARE', bareSecret, n);
    await g.gw.ledger.drained();
    const readings = await g.gw.ledger.readAfter(0, 2 * n + 10, ['reading']);
    const counted = (device: string) => readings.filter((r) => r.deviceId === device).length;
    const stored = { agent: counted('ST-AGENT'), bare: counted('ST-BARE') };
    if (stored.agent !== n || stored.bare !== n) throw new Error(`ledger holds ${stored.agent} agent and ${stored.bare} bare readings of ${n} each`);
    const r = {
      backlog: n,
      agentRssBuiltMiB: Math.round(built.rss / MiB),
      agentRssQueuedMiB: Math.round(filled.rss / MiB),
      agentRssIdleWithBacklogMiB: Math.round(idle.rss / MiB),
      agentRssPeakDrainMiB: Math.round(d.peakRss / MiB),
      agentDrainPerS: Math.round(n / (d.drainMs / 1000)),
      barePublisherPerS: Math.round(n / (bareMs / 1000)),
      ratioAgentToBare: Math.round((bareMs / d.drainMs) * 1000) / 1000,
    };
    log(`drain to the gateway, QoS 1, batches of ${BATCH}, window ${WINDOW}: agent ${r.agentDrainPerS} readings/s (peak RSS ${r.agentRssPeakDrainMiB} MiB), ` +
      `bare mqtt.js publisher ${r.barePublisherPerS}/s (ratio ${r.ratioAgentToBare}); each of both ${n} stored once`);
    return r;
  } finally {
    if (c.exitCode === null) c.kill('SIGKILL');
    await g.stop();
  }
}

if (process.env.BENCH_AGENT_CHILD) {
  await child();
} else if (process.argv[1]?.endsWith('agentBacklog.ts')) {
  await runAgentBacklogBench();
}
