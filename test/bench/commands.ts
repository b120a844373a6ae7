/**
 * Command drain (issue 13, contract §7): N commands queued for a device while it is offline, then
 * the device connects and subscribes to its own `…/commands` (an mqtt.js client that PUBACKs as
 * it receives). Measured: from SUBSCRIBE to the Nth command received by the device, and to the
 * Nth PUBACK handled (each command `delivered` in state.db).
 *
 * Beside it, in the same run and process, the baseline a plain broker offers: a bare aedes whose
 * persistent session (clean: false) for the same subscriber holds N QoS 1 messages that an
 * mqtt.js publisher sent while it was away; from the subscriber's reconnect to the Nth message.
 *
 *   BENCH_ONLY=commands npm run bench          (BENCH_COMMANDS=2000)
 */
import net from 'node:net';
import { Aedes } from 'aedes';
import mqtt from 'mqtt';
import { startGateway } from '../support/gateway.ts';

export interface CommandsBenchOptions {
  commands?: number;
  log?: (line: string) => void;
}

const SITE = 'S-BENCH-CMD';
const DEVICE = 'FOG-BENCH';
const TOPIC = `sites/${SITE}/devices/${DEVICE}/commands`;

/** Resolves with performance.now() at the nth call of the returned counter. */
function nth(n: number): { tick: () => void; at: Promise<number> } {
  let seen = 0;
  let resolve!: (t: number) => void;
  const at = new Promise<number>((r) => { resolve = r; });
  return { tick: () => { if (++seen === n) resolve(performance.now()); }, at };
}

async function gatewayDrain(n: number) {
  const g = await startGateway({}, { commandSweepMs: 0 });
  try {
    const secret = await g.device(SITE, DEVICE);
    const c0 = performance.now();
    for (let i = 0; i < n; i++) g.gw.commands.create({ siteId: SITE, deviceId: DEVICE, action: 'on', params: { i }, ttlS: 3600, by: 'bench' });
    const createMs = performance.now() - c0;

    const client = await g.connect(DEVICE, secret);
    const received = nth(n);
    const acked = nth(n);
    client.on('message', received.tick);
    // Registered after the gateway's own listener: by the Nth event the Nth command is `delivered`.
    g.gw.broker.aedes.on('ack', acked.tick);
    const t0 = performance.now();
    await client.subscribeAsync(TOPIC, { qos: 1 });
    const [tRecv, tAck] = await Promise.all([received.at, acked.at]);
    const delivered = g.gw.commands.list(DEVICE, n).filter((c) => c.state === 'delivered').length;
    if (delivered !== n) throw new Error(`${delivered} of ${n} commands delivered`);
    return { createMs, receivedMs: tRecv - t0, deliveredMs: tAck - t0 };
  } finally {
    await g.stop();
  }
}

async function bareDrain(n: number) {
  const broker = await Aedes.createBroker({});
  const server = net.createServer(broker.handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const url = `mqtt://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  try {
    const opts = { clientId: 'bench-sub', clean: false, protocolVersion: 4 as const, reconnectPeriod: 0 };
    const sub = await mqtt.connectAsync(url, opts);
    await sub.subscribeAsync(TOPIC, { qos: 1 });
    await sub.endAsync();
    const pub = await mqtt.connectAsync(url, { clientId: 'bench-pub', protocolVersion: 4, reconnectPeriod: 0 });
    const p0 = performance.now();
    await Promise.all(Array.from({ length: n }, (_, i) => pub.publishAsync(TOPIC, JSON.stringify({ commandId: `c${i}`, action: 'on', params: { i }, expiresAt: 0 }), { qos: 1 })));
    const queueMs = performance.now() - p0;
    await pub.endAsync();

    const received = nth(n);
    const t0 = performance.now();
    const again = mqtt.connect(url, { ...opts, manualConnect: true });
    again.on('message', received.tick);
    again.connect();
    const tRecv = await received.at;
    await again.endAsync();
    return { queueMs, receivedMs: tRecv - t0 };
  } finally {
    await new Promise<void>((r) => broker.close(() => r()));
    server.close();
  }
}

export async function runCommandsBench(o: CommandsBenchOptions = {}): Promise<Record<string, number>> {
  const n = o.commands ?? Number(process.env.BENCH_COMMANDS ?? 2000);
  const log = o.log ?? console.log;
  const gw = await gatewayDrain(n);
  const bare = await bareDrain(n);
  const perS = (ms: number) => Math.round(n / (ms / 1000));
  const r = {
    commands: n,
    gatewayCreatePerS: perS(gw.createMs),
    gatewayReceivedPerS: perS(gw.receivedMs),
    gatewayDeliveredPerS: perS(gw.deliveredMs),
    bareAedesReceivedPerS: perS(bare.receivedMs),
    ratioDeliveredToBare: Math.round((bare.receivedMs / gw.deliveredMs) * 1000) / 1000,
  };
  log(`${n} commands queued for an offline device: gateway creates ${r.gatewayCreatePerS}/s (state.db + audit), ` +
    `drains ${r.gatewayReceivedPerS}/s received, ${r.gatewayDeliveredPerS}/s delivered (PUBACK stored); ` +
    `bare aedes persistent session ${r.bareAedesReceivedPerS}/s (ratio ${r.ratioDeliveredToBare})`);
  return r;
}

if (process.argv[1]?.endsWith('commands.ts')) {
  await runCommandsBench();
}
