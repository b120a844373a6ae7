/**
 * Issue 15, "shown to work": a kill -9 loop under the fast-device load. A gateway process with a
 * real influxd as its sink; one device publishing QoS 1 batches of readings 1 ms apart in event
 * time (contract §1 `…/telemetry` `{batch}`) beside ordinary devices one reading a second apart.
 * The gateway is killed with SIGKILL several times, each time after the previous start reached
 * "listening" and more PUBACKs came back; influxd is stopped for part of it. Proves:
 *  - every start reaches "listening" within a bound that does not grow with the backlog (ingest and
 *    sinks never wait for the checks' replay);
 *  - InfluxDB receives points during the loop, not only at the end;
 *  - SIGTERM with a backlog in the checks ends in ≤ 10 s;
 *  - the gateway's peak RSS (VmHWM) stays ≤ 1 GiB in every start;
 *  - every PUBACKed reading is in the ledger exactly once, and InfluxDB's count equals the ledger's.
 * The devices behave as devices do: after a restart they resend every publish not acknowledged.
 */
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, tempDir } from './support/gateway.ts';
import { countPoints, startInfluxd, type Influxd } from './support/influxd.ts';
import { spawnGateway, type GatewayProcess } from './support/process.ts';

const ADMIN = 'kill-loop-admin-token-0123456789abcdef';
const SITE = 'S-KILL';
/** Event times fixed in the past: the gateway process runs on the real clock (and the suite also 400 days ahead). */
const T0 = Date.parse('2026-09-01T08:00:00+08:00');
const BATCH = 1000; // MAX_BATCH of contract §1
const FAST_WINDOW = 6; // batches in flight
const ORDINARY = ['ENV-1', 'ENV-2', 'ENV-3'];
const ORDINARY_WINDOW = 4; // an edge agent's publishes in flight
/** Fast readings acknowledged in each start before it is killed. */
const PER_START = 30_000;
/** "listening" after spawn, whatever the backlog (measured 2.3–8.8 s on the loaded 2-core box). */
const LISTEN_BOUND_MS = 15_000;
const STOP_BOUND_MS = 10_000;
const GiB = 1024 ** 3;

/**
 * Gusts beyond the critical wind limit (13.8 m/s, rules/instant): each opens one alert at its event
 * time and the calm after it closes it, so every acknowledged gust is one alert, once, whatever the
 * kills. The fast device's gust is the first reading of its second (its bucket's time, series.ts).
 */
const fastGust = (n: number) => n % 40_000 === 20_000;
const ordinaryGust = (k: number) => k % 10 === 5;

interface Message { key: string; topic: string; payload: string; ids: string[] }

/** A device as the gateway sees it: sends, keeps what is not acknowledged, resends it after a reconnect. */
class Device {
  readonly acked = new Set<string>();
  /** Publishes sent again after a restart (not acknowledged before the kill). */
  resent = 0;
  /** PUBACK latency of each acknowledged publish (ms). */
  readonly latencies: number[] = [];
  /** Sent and not acknowledged, in the order first sent. */
  readonly unacked = new Map<string, Message>();
  private n = 0;
  secret = '';

  constructor(readonly id: string, private readonly make: (n: number) => { payload: unknown; ids: string[] }) {}

  next(): Message {
    const { payload, ids } = this.make(this.n++);
    const m = { key: `${this.id}#${this.n}`, topic: `sites/${SITE}/devices/${this.id}/telemetry`, payload: JSON.stringify(payload), ids };
    this.unacked.set(m.key, m);
    return m;
  }

  ack(m: Message): void {
    this.unacked.delete(m.key);
    for (const id of m.ids) this.acked.add(id);
  }
}

/**
 * Publishes on one connection until `stopped` resolves (or, with `resendOnly`, until everything
 * unacknowledged is acknowledged): first everything unacknowledged, in order, then new messages,
 * `window` in flight. `periodMs` paces an ordinary device (its reporting period, not a wait for
 * an event).
 */
async function session(dev: Device, client: mqtt.MqttClient, o: { window: number; stopped: Promise<void>; periodMs?: number; resendOnly?: boolean }): Promise<void> {
  let stop = false;
  void o.stopped.then(() => { stop = true; });
  const resend = [...dev.unacked.values()];
  dev.resent += resend.length;
  const inflight = new Set<Promise<void>>();
  while (!stop && client.connected) {
    const m = resend.shift() ?? (o.resendOnly ? undefined : dev.next());
    if (!m) break;
    const sentAt = performance.now();
    const p: Promise<void> = client.publishAsync(m.topic, m.payload, { qos: 1 })
      .then(() => { dev.ack(m); dev.latencies.push(performance.now() - sentAt); }, () => {})
      .finally(() => inflight.delete(p));
    inflight.add(p);
    if (inflight.size >= o.window) await Promise.race([...inflight, o.stopped]);
    if (o.periodMs) await Promise.race([new Promise((r) => setTimeout(r, o.periodMs)), o.stopped]);
  }
  if (o.resendOnly) await Promise.race([Promise.all(inflight), o.stopped]);
}

/** Polls `probe` until it returns a value (not undefined), or fails after `ms` naming `what`. */
async function until<T>(what: string, ms: number, probe: () => T | undefined | Promise<T | undefined>, everyMs = 50): Promise<T> {
  const deadline = performance.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (performance.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Peak resident set of a process so far (VmHWM, bytes); undefined once it is gone. */
function peakRss(pid: number): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

describe('kill -9 loop under the fast-device load (issue 15)', () => {
  const dataDir = tempDir('sitegate-killloop-');
  let influx: Influxd | undefined;
  let gw: GatewayProcess | undefined;
  const clients: mqtt.MqttClient[] = [];
  afterAll(async () => {
    for (const c of clients) c.end(true);
    gw?.proc.kill('SIGKILL');
    await influx?.dispose();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('every start listens, InfluxDB keeps receiving, SIGTERM ≤ 10 s, RSS ≤ 1 GiB, nothing lost or duplicated', async () => {
    influx = await startInfluxd({ db: 'killloop' });
    const [httpPort, mqttPort] = [await freePort(), await freePort()];
    const env = {
      SITEGATE_DATA_DIR: dataDir, SITEGATE_HTTP_HOST: '127.0.0.1', SITEGATE_MQTT_HOST: '127.0.0.1',
      SITEGATE_HTTP_PORT: String(httpPort), SITEGATE_MQTT_PORT: String(mqttPort), SITEGATE_MQTT_WS_PORT: '0',
      SITEGATE_ADMIN_TOKEN: ADMIN, SITEGATE_SECRET_SCRYPT_N: '1024',
      SITEGATE_INFLUX_URL: influx.url, SITEGATE_INFLUX_DB: influx.db, SITEGATE_INFLUX_FLUSH_MS: '200',
    };
    const http = async (method: string, p: string, body?: unknown): Promise<any> => {
      const res = await fetch(`http://127.0.0.1:${httpPort}${p}`, {
        method, headers: { authorization: `Bearer ${ADMIN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        ...(body ? { body: JSON.stringify(body) } : {}), signal: AbortSignal.timeout(5000),
      });
      const json = await res.json();
      if (res.status >= 300 && p !== '/readyz') throw new Error(`${method} ${p}: ${res.status} ${JSON.stringify(json)}`);
      return json;
    };
    const influxCount = () => countPoints(influx!, 'reading', 'noise_dba');

    const fast = new Device('FAST', (k) => {
      const batch = Array.from({ length: BATCH }, (_, i) => {
        const n = k * BATCH + i;
        return { id: `f${n}`, ts: T0 + n, metrics: { noise_dba: 50 + (n % 11), pm10: 40 + (n % 23), wind_speed_ms: fastGust(n) ? 20 : 5 } };
      });
      return { payload: { batch }, ids: batch.map((r) => r.id) };
    });
    const ordinary = ORDINARY.map((d) => new Device(d, (k) => ({ payload: { id: `${d}-${k}`, ts: T0 + k * 1000, metrics: { noise_dba: 45 + (k % 7), pm10: 30 + (k % 13), wind_speed_ms: ordinaryGust(k) ? 20 : 5 } }, ids: [`${d}-${k}`] })));
    const devices = [fast, ...ordinary];

    const starts: { listenMs: number; peakRss: number; checksAtListen: any; influxBefore: number; influxAtEnd?: number; exit?: string }[] = [];
    let rssTimer: NodeJS.Timeout | undefined;

    /** Spawns the gateway and waits for "listening"; samples its peak RSS until it exits. */
    const start = async () => {
      const influxBefore = influx!.running ? await influxCount() : NaN;
      const t0 = performance.now();
      gw = spawnGateway(env);
      const deadline = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`start ${starts.length} not listening within ${LISTEN_BOUND_MS} ms`)), LISTEN_BOUND_MS).unref());
      await Promise.race([gw.ready, deadline]);
      const entry = { listenMs: performance.now() - t0, peakRss: 0, checksAtListen: (await http('GET', '/readyz')).checks, influxBefore };
      starts.push(entry);
      const pid = gw.proc.pid!;
      clearInterval(rssTimer);
      rssTimer = setInterval(() => { entry.peakRss = Math.max(entry.peakRss, peakRss(pid) ?? 0); }, 100);
      return entry;
    };
    /** Connects every device and starts its publishing; `end()` stops publishing (connections stay until the gateway goes). */
    const publishAll = async (resendOnly = false) => {
      let end!: () => void;
      const stopped = new Promise<void>((r) => (end = r));
      const conns = await Promise.all(devices.map((d) => mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, {
        username: d.id, password: d.secret, clientId: d.id, protocolVersion: 4, reconnectPeriod: 0,
      })));
      for (const c of conns) { c.on('error', () => {}); clients.push(c); }
      const done = Promise.all(devices.map((d, i) => session(d, conns[i]!, d === fast
        ? { window: FAST_WINDOW, stopped, resendOnly }
        : { window: ORDINARY_WINDOW, stopped, periodMs: 20, resendOnly })));
      return { conns, done, end: () => { end(); return done; } };
    };
    /** SIGKILL with publishes in flight; the devices' connections drop, what was in flight stays unacknowledged. */
    const kill = async (p: Awaited<ReturnType<typeof publishAll>>) => {
      const entry = starts[starts.length - 1]!;
      entry.peakRss = Math.max(entry.peakRss, peakRss(gw!.proc.pid!) ?? 0);
      gw!.proc.kill('SIGKILL');
      const { signal } = await gw!.exited;
      entry.exit = String(signal);
      expect(signal).toBe('SIGKILL');
      p.end();
      for (const c of p.conns) c.end(true);
      await p.done;
      if (influx!.running) entry.influxAtEnd = await influxCount();
    };
    /** SIGTERM; how long until the process exited, with its exit code. */
    const terminate = async () => {
      const entry = starts[starts.length - 1]!;
      entry.peakRss = Math.max(entry.peakRss, peakRss(gw!.proc.pid!) ?? 0);
      const t0 = performance.now();
      gw!.proc.kill('SIGTERM');
      const { code } = await gw!.exited;
      entry.exit = `code ${code}`;
      return { ms: performance.now() - t0, code };
    };
    const fastAckedAt = () => fast.acked.size;
    const ordinaryAckedAt = () => ordinary.map((d) => d.acked.size);

    // Start 0: a fresh data directory; the site, its devices, and the fast device's rate raised so
    // that this one device brings the load (20 devices × 1 ms); at the default 200
    // readings/s it would be throttled to a trickle (test/rateLimit.e2e.test.ts).
    await start();
    await http('PUT', `/api/v1/sites/${SITE}`, { name: SITE, regionCode: '330106', settings: { devices: { FAST: { ingestRate: { readingsPerS: 1_000_000, burst: 1_000_000 } } } } });
    // FAST is registered as reporting once a second (the misconfigured logger): the windowed
    // rules judge its windows full and evaluate every one.
    for (const d of devices) d.secret = (await http('PUT', `/api/v1/sites/${SITE}/devices/${d.id}`, { kind: 'sensor', intervalS: 1 })).secret;

    /** One start's load: PER_START more fast readings and some of every ordinary device acknowledged, then `extra`. */
    const loadPhase = async (extra?: () => Promise<void>) => {
      const p = await publishAll();
      const [fastFrom, ordFrom] = [fastAckedAt(), ordinaryAckedAt()];
      await until(`${PER_START} fast readings acknowledged in start ${starts.length - 1}`, 45_000,
        () => (fastAckedAt() - fastFrom >= PER_START && ordinaryAckedAt().every((n, i) => n > ordFrom[i]!) ? true : undefined));
      await extra?.();
      return p;
    };
    /** InfluxDB received points from this start (not only at the end of the loop). */
    const influxGrows = async () => {
      const before = starts[starts.length - 1]!.influxBefore;
      await until('InfluxDB receives points from this start', 30_000, async () => ((await influxCount()) > before ? true : undefined), 250);
    };

    // Starts 0 and 1: InfluxDB up, it receives points from each.
    await kill(await loadPhase(influxGrows));
    await start();
    await kill(await loadPhase(influxGrows));
    // Start 2: InfluxDB down (the ledger spools for it); killed while it is down.
    const atStop = await influxCount();
    await influx.stop();
    await start();
    await kill(await loadPhase());
    // Start 3: InfluxDB comes back while it runs and receives the backlog and the new points.
    const s3 = await start();
    s3.influxBefore = atStop;
    await kill(await loadPhase(async () => {
      await influx!.restart();
      await influxGrows();
    }));

    // Start 4: under load, with the checks behind (replaying what the kills left), SIGTERM.
    await start();
    const p4 = await loadPhase();
    const checksAtStop = (await http('GET', '/readyz')).checks;
    const stop4 = await terminate();
    p4.end();
    for (const c of p4.conns) c.end(true);
    await p4.done;

    // Start 5: the devices resend what is unacknowledged; then the sink catches up.
    await start();
    const p5 = await publishAll(true);
    await until('every device sees all its publishes acknowledged', 30_000, () => (devices.every((d) => d.unacked.size === 0) ? true : undefined));
    p5.end();
    // The checks catch up from their cursors: every gust is one alert, none twice, none missed.
    await until('the hazard rules catch up', 60_000, async () => {
      const { checks } = await http('GET', '/readyz');
      return !checks.starting && checks.lagRecords === 0 && checks.checks.hazard.lagRecords === 0 ? true : undefined;
    }, 200);
    const alerts = (await http('GET', `/api/v1/alerts?siteId=${SITE}&limit=1000`)).items as { subject: { deviceId: string }; openedAt: string; evidence: { rule: string; metric?: string } }[];
    const sinkIdle = await until('the InfluxDB sink catches up', 60_000, async () => {
      const r = await http('GET', '/readyz');
      return r.sinks[0].lagRecords === 0 ? r : undefined;
    }, 200);
    const ledger = new Database(path.join(dataDir, 'ledger.db'), { readonly: true });
    const readingsInLedger = (ledger.prepare("SELECT COUNT(*) AS n FROM records WHERE kind = 'reading'").get() as { n: number }).n;
    const influxFinal = await influxCount();
    const stop5 = await terminate();
    for (const c of p5.conns) c.end(true);
    clearInterval(rssTimer);
    const ids = new Set((ledger.prepare("SELECT msg_id FROM records WHERE kind = 'reading'").all() as { msg_id: string }[]).map((r) => r.msg_id));
    const readingsAfter = (ledger.prepare("SELECT COUNT(*) AS n FROM records WHERE kind = 'reading'").get() as { n: number }).n;
    ledger.close();

    const acked = devices.reduce((n, d) => n + d.acked.size, 0);
    console.log(`kill loop: ${JSON.stringify(starts.map((s) => ({ listenMs: Math.round(s.listenMs), peakRssMiB: Math.round(s.peakRss / 2 ** 20), checksLagAtListen: s.checksAtListen.lagRecords, checksStarting: s.checksAtListen.starting, influxBefore: s.influxBefore, influxAtEnd: s.influxAtEnd, exit: s.exit })))}`);
    const ordLat = ordinary.flatMap((d) => d.latencies).sort((a, b) => a - b);
    console.log(`kill loop: ordinary devices' PUBACK p50 ${Math.round(ordLat[Math.floor(ordLat.length / 2)] ?? NaN)} ms, max ${Math.round(ordLat[ordLat.length - 1] ?? NaN)} ms`);
    console.log(`kill loop: ${acked} readings acknowledged (fast ${fast.acked.size}, ${fast.resent} batches resent after restarts); SIGTERM with the checks ${checksAtStop.lagRecords} records behind (hazard ${checksAtStop.checks.hazard?.lagRecords}): ${Math.round(stop4.ms)} ms; clean SIGTERM ${Math.round(stop5.ms)} ms; ledger ${readingsInLedger}, InfluxDB ${influxFinal}; ${alerts.length} alerts`);

    // Every start listened within the bound (start() throws otherwise), whatever the backlog.
    expect(starts).toHaveLength(6);
    for (const s of starts) expect(s.listenMs).toBeLessThan(LISTEN_BOUND_MS);
    // InfluxDB received points while the loop ran: from starts 0, 1 and 3 (checked before each kill).
    expect(starts[1]!.influxAtEnd!).toBeGreaterThan(starts[1]!.influxBefore);
    expect(starts[3]!.influxAtEnd!).toBeGreaterThan(starts[3]!.influxBefore);
    // SIGTERM with a backlog in the checks: ≤ 10 s, a clean exit.
    // (Records not yet handed to the checks, or not yet evaluated by the hazard rules after their replay.)
    expect(Math.max(checksAtStop.lagRecords, checksAtStop.checks.hazard.lagRecords)).toBeGreaterThan(10_000);
    expect(stop4.code).toBe(0);
    expect(stop4.ms).toBeLessThanOrEqual(STOP_BOUND_MS);
    expect(stop5.code).toBe(0);
    expect(stop5.ms).toBeLessThanOrEqual(STOP_BOUND_MS);
    // Peak RSS of every start ≤ 1 GiB.
    for (const s of starts) expect(s.peakRss).toBeGreaterThan(0);
    for (const s of starts) expect(s.peakRss).toBeLessThanOrEqual(GiB);
    // Nothing lost, nothing twice: every acknowledged reading is in the ledger once, nothing else is.
    // (Publishes were in flight at every kill, and were resent.)
    expect(fast.resent).toBeGreaterThan(0);
    expect(devices.every((d) => d.unacked.size === 0)).toBe(true);
    const lost = devices.flatMap((d) => [...d.acked].filter((id) => !ids.has(id)));
    expect(lost).toEqual([]);
    expect(readingsAfter).toBe(ids.size);
    expect(readingsAfter).toBe(acked);
    expect(readingsInLedger).toBe(readingsAfter);
    // The hazard rules after the loop: one wind alert per acknowledged gust.
    const windAlerts = (d: string) => alerts.filter((a) => a.subject.deviceId === d && a.evidence.rule === 'instant').map((a) => Date.parse(a.openedAt)).sort((a, b) => a - b);
    const fastGusts = [...fast.acked].map((id) => Number(id.slice(1))).filter(fastGust).map((n) => T0 + n).sort((a, b) => a - b);
    expect(fastGusts.length).toBeGreaterThan(2);
    expect(windAlerts('FAST')).toEqual(fastGusts);
    for (const d of ordinary) {
      const gusts = [...d.acked].map((id) => Number(id.slice(d.id.length + 1))).filter(ordinaryGust).map((k) => T0 + k * 1000).sort((a, b) => a - b);
      expect(gusts.length).toBeGreaterThan(1);
      expect(windAlerts(d.id)).toEqual(gusts);
    }
    // InfluxDB holds exactly the ledger's readings (a point rewritten on resend is the same point).
    expect(sinkIdle.sinks[0].lagRecords).toBe(0);
    expect(influxFinal).toBe(readingsInLedger);
  }, 180_000);
});
