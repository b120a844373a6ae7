import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, freePort, httpApi, startGateway, tempDir, type TestGateway } from './support/gateway.ts';
import { mulberry32 } from '../gateway/src/checks/hazard/testing.ts';
import { TestClock } from './support/clock.ts';
import { spawnGateway, type GatewayProcess } from './support/process.ts';
import { FACES_DIR, allAlerts, alertScorer, loadScenario, registerScenario, type ExpectedAlert, type ListedAlert, type Scenario, type ScenarioEvent } from './support/scenario.ts';
import { settled } from './support/settle.ts';

/**
 * Issue 10, "shown to work": kill -9 of the whole gateway at several pseudo-random points while
 * the public month replays, restart, finish the replay, and get exactly what a clean replay gets:
 * the same alerts (none missing, none twice), the same attendance, the same wage findings, the
 * same ledger contents, and an audit chain that verifies.
 *
 * - Reference: the same events through the same driver into an in-process gateway (startGateway)
 *   on a fixed wall clock, driven to completion with checks.idle()/tick().
 * - Under test: the gateway as its own process (real clock, real MQTT, real SQLite), SIGKILLed at
 *   each kill point and restarted on the same data directory and ports. The driver behaves as
 *   devices do: QoS 1 with a window of WINDOW publishes in flight; after a restart every device
 *   reconnects with its own credentials and resends, in order, what it never saw PUBACKed; an HTTP
 *   post without an answer is posted again (the gateway dedupes by id).
 * - Kill points (from SEED, printed): one at a random event in each third of the month, one
 *   during a random check-in wave with photos once the gateway reports face check-ins waiting for
 *   verification, one right after the first payroll CSV was answered, one with the second CSV's
 *   POST unanswered (posted again after the restart), and one once the watermark has passed the
 *   wage due date and the first wage alert is visible (monthly decisions half-made): 7 kills.
 * - Done = the process's alerts, attendance, wage findings and ledger counts equal the reference's
 *   and stay unchanged for longer than one check tick; on a deadline the expectations show the diff.
 * - Runtime (whole file): ~65 s at load 6, 140-185 s at load 12-15 on this 2-core box. A
 *   deterministic part of the month is replayed (see replayEvents) and the comparison is exact.
 * - After the month each site gets one reading stamped after the wage due date (as
 *   wages.scenario.e2e.test.ts does), so the monthly decisions (wage alerts, key-staff rates,
 *   month close) are part of what is compared.
 *
 * Can it fail? Checked with two deliberately broken restart paths (both reverted):
 * - hazardCheck.ts restore() taking `appliedSeq = 0` instead of the stored cursor: each hazard
 *   alert opened before a kill was raised again at every later restart (8 hazard.threshold
 *   conditions ×3 to ×6): "none twice" and the alert comparison failed.
 * - faceVerification.ts start() forgetting the face check-ins still without a verdict: verdicts
 *   missing from the ledger, 12 alerts missing, attendance and wage findings different: the
 *   ledger, alert and attendance/wage expectations failed.
 */

const SEED = 0x10_2026_09;
const WINDOW = 200;
/** The in-process reference's wall clock: after the September wages' due date (end of October), fixed. */
const REFERENCE_CLOCK = '2026-11-10T12:00:00+08:00';
/** The gateway process ticks its checks every 5 s (checks/checkRunner.ts): "settled" = unchanged for longer than that. */
const QUIET_MS = 6_500;
/** A reading stamped after the due date of September's wages (end of October, site time): moves each site's watermark past it. */
const AFTER_DUE = '2026-11-01T00:30:00+08:00';
const AFTER_MONTH_KILL = 'first wage alert visible';

type Api = TestGateway['api'];


/**
 * The replayed part of the month (deterministic, to keep the file well under 2 minutes on a
 * loaded 2-core box): every check-in (with its photo), both payroll CSVs, and the telemetry of
 * the site-local days the month's hazard alerts fall on (expected.json; a device whose expected
 * alert names no day: its whole month): 9.6k of the 53k events, every expected hazard alert
 * kept. The face check-ins (310 photos, verified in both runs) and the restarts cost most of the
 * time; SITEGATE_KILLREPLAY_FULL_MONTH=1 replays all 53k events. Then one reading per site after
 * the wage due date (HTTP, like a late edge agent), which moves the watermarks past it as
 * wages.scenario.e2e.test.ts does.
 */
function replayEvents(s: Scenario, fullMonth = process.env.SITEGATE_KILLREPLAY_FULL_MONTH === '1'): ScenarioEvent[] {
  const { localDay } = alertScorer(s);
  const hazard = (s.expected.alerts as ExpectedAlert[]).filter((a) => a.kind.startsWith('hazard.'));
  const hazardDays = new Set(hazard.filter((a) => a.day).map((a) => `${a.siteId}/${a.day}`));
  const anyDay = new Set(hazard.filter((a) => !a.day).map((a) => a.subject.deviceId)); // expected on a day not named: the device's whole month
  const replayed = (e: ScenarioEvent) => {
    if (fullMonth || e.via === 'http' || !e.topic!.endsWith('/telemetry')) return true;
    const [, siteId, , deviceId] = e.topic!.split('/');
    return anyDay.has(deviceId!) || hazardDays.has(`${siteId}/${localDay(e.ts, siteId!)}`);
  };
  const after = s.registry.sites.map((site): ScenarioEvent => {
    const dev = s.registry.devices.find((d) => d.siteId === site.siteId && d.kind === 'sensor')!;
    return {
      ts: Date.parse(AFTER_DUE), via: 'http', method: 'POST', path: `/api/v1/sites/${site.siteId}/devices/${dev.deviceId}/readings`,
      contentType: 'application/json', body: JSON.stringify({ id: 'after-due', ts: AFTER_DUE, metrics: { temperature_c: 12 } }),
    };
  });
  return [...s.events.filter(replayed), ...after];
}

type KillWhy = 'random' | 'photo-wave' | 'after-payroll-csv' | 'during-payroll-csv';

/**
 * Kill points by event index: the event is sent, then the gateway is killed with its window
 * still in flight; `during-payroll-csv` kills while the POST of the second CSV is unanswered.
 */
function killPoints(events: ScenarioEvent[], seed: number): Map<number, KillWhy> {
  const rnd = mulberry32(seed);
  const points = new Map<number, KillWhy>();
  const mqttIdx = events.flatMap((e, i) => (e.via === 'mqtt' ? [i] : []));
  for (let q = 0; q < 3; q++) {
    const lo = Math.floor((q * mqttIdx.length) / 3);
    const hi = Math.floor(((q + 1) * mqttIdx.length) / 3);
    points.set(mqttIdx[lo + Math.floor(rnd() * (hi - lo))]!, 'random');
  }
  // A photo check-in with other photo check-ins just before it: a wave, face verification busy.
  const photos = events.flatMap((e, i) => (e.photo ? [i] : []));
  const inWave = photos.filter((i, k) => k >= 3 && i - photos[k - 3]! < 60);
  points.set(inWave[Math.floor(rnd() * inWave.length)]!, 'photo-wave');
  const csvs = events.flatMap((e, i) => (e.via === 'http' && e.path!.endsWith('/wage-payments') ? [i] : []));
  points.set(csvs[0]!, 'after-payroll-csv');
  points.set(csvs[1]!, 'during-payroll-csv');
  return points;
}

/** Where the replay sends to; `alive` fails fast (with the gateway's stderr) if the gateway dies on its own. */
interface Target {
  mqttUrl: string;
  api: Api;
  alive<T>(p: Promise<T>): Promise<T>;
}

/** The gateway as its own process, on fixed ports and one data directory across restarts. */
class GatewayUnderTest implements Target {
  readonly dataDir = tempDir('sitegate-killreplay-');
  mqttUrl = '';
  api: Api = httpApi('');
  proc?: GatewayProcess;
  private env: Record<string, string> = {};
  readonly restarts: { why: string; atEvent: number; killedAt: number; resent: number; startMs: number; log: string[] }[] = [];

  async start(): Promise<void> {
    const [httpPort, mqttPort] = [await freePort(), await freePort()];
    this.env = {
      SITEGATE_DATA_DIR: this.dataDir, SITEGATE_HTTP_HOST: '127.0.0.1', SITEGATE_MQTT_HOST: '127.0.0.1', SITEGATE_HTTP_PORT: String(httpPort),
      SITEGATE_MQTT_PORT: String(mqttPort), SITEGATE_MQTT_WS_PORT: '0', SITEGATE_ADMIN_TOKEN: ADMIN_TOKEN, SITEGATE_SECRET_SCRYPT_N: '1024',
    };
    this.mqttUrl = `mqtt://127.0.0.1:${mqttPort}`;
    this.api = httpApi(`http://127.0.0.1:${httpPort}`);
    this.proc = spawnGateway(this.env);
    await this.proc.ready;
  }

  async kill(): Promise<void> {
    const p = this.proc!;
    p.proc.kill('SIGKILL');
    const { signal } = await p.exited;
    if (signal !== 'SIGKILL') throw new Error(`gateway ended with ${signal} instead of SIGKILL: ${p.stderr().slice(-2000)}`);
  }

  async restart(): Promise<{ ms: number; log: string[] }> {
    const t0 = performance.now();
    this.proc = spawnGateway(this.env);
    await this.proc.ready;
    return { ms: Math.round(performance.now() - t0), log: this.proc.stdoutLines.filter((l) => /resum|restored|rebuil/i.test(l)) };
  }

  alive<T>(p: Promise<T>): Promise<T> {
    const proc = this.proc!;
    return Promise.race([p, proc.exited.then(({ code, signal }) => { throw new Error(`gateway died unasked (${code ?? signal}): ${proc.stderr().slice(-2000)}`); })]);
  }

  async stop(): Promise<void> {
    this.proc?.proc.kill('SIGKILL');
    if (this.proc) await this.proc.exited;
    fs.rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/**
 * Devices replaying events: one MQTT client per device (its own credentials), QoS 1, at most
 * `window` publishes without PUBACK. `unacked` is what a device would resend after losing its
 * connection; `generation` tells the PUBACKs (and failures) of a dead connection from live ones.
 */
class Replayer {
  private clients = new Map<string, Promise<mqtt.MqttClient>>();
  private unacked = new Map<number, Promise<void>>();
  private photos = new Map<string, string>();
  private generation = 0;
  private failure: Error | undefined;
  readonly http: { path: string; status: number; json: any; reposted: boolean }[] = [];

  constructor(private readonly t: Target, private readonly events: ScenarioEvent[], private readonly secrets: Record<string, string>, private readonly window = WINDOW) {}

  /** Sends event `i`; for an HTTP event, `killDuring` is run while the request is in flight. */
  async send(i: number, killDuring?: () => Promise<void>): Promise<void> {
    const e = this.events[i]!;
    if (e.via === 'http') return this.post(e, killDuring);
    const deviceId = e.topic!.split('/')[3]!;
    const c = await this.t.alive(this.client(deviceId));
    const payload = { ...e.payload };
    if (e.photo) {
      if (!this.photos.has(e.photo)) this.photos.set(e.photo, fs.readFileSync(path.join(FACES_DIR, e.photo)).toString('base64'));
      payload.photo = this.photos.get(e.photo);
    }
    const gen = this.generation;
    const p = c.publishAsync(e.topic!, JSON.stringify(payload), { qos: 1 }).then(
      () => { if (gen === this.generation) this.unacked.delete(i); },
      (err: Error) => { if (gen === this.generation) { this.failure ??= err; this.unacked.delete(i); } },
    );
    this.unacked.set(i, p);
    if (this.unacked.size >= this.window) await this.t.alive(Promise.race(this.unacked.values()));
    this.check();
  }

  /** Waits for every PUBACK of the window (before an HTTP post, and at the end). */
  async flush(): Promise<void> {
    await this.t.alive(Promise.all(this.unacked.values()));
    this.check();
  }

  /**
   * The connections died with the gateway: forget them, and return what was never PUBACKed
   * (in event order) for resending once the gateway is back.
   */
  connectionsLost(): number[] {
    this.generation++;
    const resend = [...this.unacked.keys()].sort((a, b) => a - b);
    this.unacked.clear();
    for (const c of this.clients.values()) c.then((x) => x.end(true), () => {});
    this.clients.clear();
    return resend;
  }

  async close(): Promise<void> {
    await this.flush();
    await Promise.all([...this.clients.values()].map(async (c) => (await c).endAsync()));
    this.clients.clear();
  }

  private async post(e: ScenarioEvent, killDuring?: () => Promise<void>): Promise<void> {
    await this.flush();
    const call = () => this.t.api(e.method!, e.path!.replace(/^\/api\/v1/, ''), e.body, { contentType: e.contentType! });
    let r: { status: number; json: any; text: string } | undefined;
    if (killDuring) {
      const first = call().catch(() => undefined); // the kill may cut it off: no answer
      await killDuring();
      r = await first;
    } else {
      r = await this.t.alive(call());
    }
    const reposted = r === undefined;
    if (reposted) r = await this.t.alive(call()); // no answer: post it again, the gateway dedupes rows by id
    if (r!.status >= 300 || r!.json?.rejected) throw new Error(`${e.method} ${e.path}: ${r!.status} ${r!.text}`);
    this.http.push({ path: e.path!, status: r!.status, json: r!.json, reposted });
  }

  private client(deviceId: string): Promise<mqtt.MqttClient> {
    let c = this.clients.get(deviceId);
    if (!c) {
      c = mqtt.connectAsync(this.t.mqttUrl, { username: deviceId, password: this.secrets[deviceId], clientId: `replay-${deviceId}`, reconnectPeriod: 0, protocolVersion: 4 })
        .then((x) => x.on('error', () => {})); // a connection reset by the kill is expected; anything else shows as a failed publish
      this.clients.set(deviceId, c);
    }
    return c;
  }

  private check(): void {
    if (this.failure) throw new Error(`publish failed while the gateway was up: ${this.failure.message}`);
  }
}

/** What must come out the same: alerts (the fields that identify them), attendance and wage findings per site. */
interface Results {
  alerts: string[];
  attendance: Record<string, unknown>;
  wages: Record<string, unknown>;
}

const alertLine = (a: ListedAlert) => `${a.kind} ${a.siteId} ${JSON.stringify(a.subject)} ${a.openedAt} ${a.severity} ${a.state}`;
/** (kind, site, subject, openedAt) seen more than once: one condition raised twice. */
const twice = (alerts: ListedAlert[]) => {
  const seen = new Map<string, number>();
  for (const a of alerts) {
    const k = `${a.kind} ${a.siteId} ${JSON.stringify(a.subject)} ${a.openedAt}`;
    seen.set(k, (seen.get(k) ?? 0) + 1);
  }
  return [...seen].filter(([, n]) => n > 1).map(([k, n]) => `${k} ×${n}`);
};

async function results(api: Api, s: Scenario): Promise<Results & { raw: ListedAlert[] }> {
  const raw = await allAlerts({ api });
  const out: Results & { raw: ListedAlert[] } = { alerts: raw.map(alertLine).sort(), attendance: {}, wages: {}, raw };
  for (const { siteId } of s.registry.sites) {
    const a = await api('GET', `/sites/${siteId}/attendance?month=${s.expected.month}`);
    const w = await api('GET', `/sites/${siteId}/wage-check?month=${s.expected.month}`);
    if (a.status !== 200 || w.status !== 200) throw new Error(`${siteId}: attendance ${a.status} ${a.text} / wage-check ${w.status} ${w.text}`);
    out.attendance[siteId] = a.json;
    const { asOf: _wallClock, ...wages } = w.json; // asOf: the later of the wall clock and the watermark, not a result
    out.wages[siteId] = wages;
  }
  return out;
}

/** Ledger records by kind, read from the process's ledger.db (WAL: a reader beside the writer). */
function ledgerCounts(dataDir: string): Record<string, number> {
  const db = new Database(path.join(dataDir, 'ledger.db'), { readonly: true, fileMustExist: true });
  try {
    const rows = db.prepare('SELECT kind, COUNT(*) AS n FROM records GROUP BY kind').all() as { kind: string; n: number }[];
    return Object.fromEntries(rows.map((r) => [r.kind, r.n]));
  } finally {
    db.close();
  }
}

/**
 * Alert records in the ledger are the sinks' copy of alert events, appended after the state
 * commit: compared separately (reported, not required; see the note at the comparison).
 */
const withoutAlertRecords = (counts: Record<string, number>) => Object.fromEntries(Object.entries(counts).filter(([k]) => k !== 'alert'));

describe('kill -9 at several points of the month, restart, finish: the results of a clean replay', () => {
  let s: Scenario;
  let events: ScenarioEvent[];
  let points: Map<number, KillWhy>;
  let reference: Results & { raw: ListedAlert[]; ledger: Record<string, number> };
  let crashed: Results & { raw: ListedAlert[]; ledger: Record<string, number> };
  let audit: { ok: boolean };
  let wageKillSeen = 0;
  let csvPosts: { json: any; reposted: boolean }[] = [];
  let referenceUnrecorded: UnrecordedEvent[];
  let crashedUnrecorded: UnrecordedEvent[];
  const gut = new GatewayUnderTest();

  beforeAll(async () => {
    const t0 = performance.now();
    s = loadScenario();
    events = replayEvents(s);
    points = killPoints(events, SEED);
    const describePoint = (i: number) => `#${i} ${points.get(i)} (${new Date(events[i]!.ts).toISOString()})`;
    console.log(`kill-replay: ${events.length} events, seed ${SEED}, kill points ${[...points.keys()].sort((a, b) => a - b).map(describePoint).join(', ')} + once the first wage alert is visible`);

    // The reference: a clean replay in-process, on a fixed wall clock past the wages' due date.
    const runReference = async () => {
      const clock = new TestClock(REFERENCE_CLOCK);
      const g = await startGateway({}, { now: clock.now });
      try {
        const secrets = await registerScenario(g, s, { faces: true });
        const r = new Replayer({ mqttUrl: g.mqttUrl, api: g.api, alive: (p) => p }, events, secrets);
        for (let i = 0; i < events.length; i++) await r.send(i);
        await r.close();
        // Two rounds: the first tick decides the months; verdicts or decisions it led to get their own turn.
        for (let round = 0; round < 2; round++) {
          await settled(g.gw);
          await g.gw.checks.tick(clock.now());
        }
        await settled(g.gw);
        reference = { ...(await results(g.api, s)), ledger: (await g.gw.ledger.countByKind()) };
        referenceUnrecorded = await alertEventsNotInLedger(g.api, g.dataDir);
      } finally {
        await g.stop();
      }
      return performance.now();
    };

    // Under test: the same events into the gateway process, killed at each point.
    const runKilled = async () => {
      await gut.start();
      const secrets = await registerScenario(gut, s, { faces: true });
      const r = new Replayer(gut, events, secrets);
      const killAndRestart = async (why: string, atEvent: number) => {
        const killedAt = Date.now();
        await gut.kill();
        const resend = r.connectionsLost();
        const { ms, log } = await gut.restart();
        gut.restarts.push({ why, atEvent, killedAt, resent: resend.length, startMs: ms, log });
        for (const j of resend) await r.send(j);
      };
      for (let i = 0; i < events.length; i++) {
        const why = points.get(i);
        if (why === 'during-payroll-csv') {
          // Killed as soon as the POST is on its way: it gets no answer and is posted again.
          await r.send(i, () => killAndRestart(why, i));
          continue;
        }
        await r.send(i);
        if (!why) continue;
        if (why === 'photo-wave') {
          // Kill only once the gateway says face check-ins are waiting for their verdict.
          await until(async () => faceLag(await gut.alive(gut.api('GET', '/metrics'))) > 0, 20_000, 'face check-ins waiting for verification');
        }
        await killAndRestart(why, i);
      }
      await r.close();
      csvPosts = r.http.filter((h) => h.path.endsWith('/wage-payments'));
      // The monthly decisions (wage alerts, month close) start on the process's own 5 s tick once
      // the after-due readings are in: kill as soon as the first wage alert shows.
      await until(async () => (wageKillSeen = (await allAlerts(gut)).filter((a) => a.kind.startsWith('wage.')).length) > 0, 60_000, 'a wage alert');
      await killAndRestart(AFTER_MONTH_KILL, events.length);
      await r.close();
      return performance.now();
    };

    // One after the other (at once they only compete for the two cores).
    const tRef = await runReference();
    const tReplayed = await runKilled();
    // Wait until the process has caught up: results equal to the reference's and quiet for more than one check tick.
    crashed = await converged(gut, s, reference, 90_000);
    const tConverged = performance.now();
    audit = (await gut.api('GET', '/audit/verify')).json;
    crashedUnrecorded = await alertEventsNotInLedger(gut.api, gut.dataDir);
    const byKind = (alerts: ListedAlert[]) => JSON.stringify(alerts.reduce<Record<string, number>>((n, a) => ({ ...n, [a.kind]: (n[a.kind] ?? 0) + 1 }), {}));
    console.log(`kill-replay: reference alerts ${byKind(reference.raw)}; killed run ${byKind(crashed.raw)}`);
    const killOf = (at: string) => gut.restarts.find((k) => k.killedAt >= Date.parse(at));
    const listed = (us: UnrecordedEvent[], run: GatewayUnderTest | undefined) => us.map((u) => `\n  ${u.line}, event #${u.n} ${u.event} at ${u.at}${run ? ` (before the kill ${killOf(u.at)?.why} at #${killOf(u.at)?.atEvent})` : ''}`).join('');
    console.log(`kill-replay: alert events without their ledger record: reference ${referenceUnrecorded.length}${listed(referenceUnrecorded, undefined)}\n  killed run ${crashedUnrecorded.length}${listed(crashedUnrecorded, gut)}`);
    console.log(`kill-replay: reference done at ${((tRef - t0) / 1000).toFixed(1)} s, killed run replayed at ${((tReplayed - t0) / 1000).toFixed(1)} s, caught up at ${((tConverged - t0) / 1000).toFixed(1)} s; payroll CSVs: ${csvPosts.map((h) => `${h.reposted ? 'no answer, posted again: ' : ''}${JSON.stringify(pick(h.json))}`).join(', ')}; restarts:\n${gut.restarts.map((x) => `  ${x.why} at #${x.atEvent}: ${x.resent} publishes resent, up in ${x.startMs} ms ${x.log.map((l) => JSON.parse(l).msg + ' ' + JSON.stringify(pick(JSON.parse(l)))).join('; ')}`).join('\n')}`);
  }, 300_000);
  afterAll(async () => gut.stop());

  it('was killed at least 5 times during the month, once with face verification in flight and once right after a payroll CSV', () => {
    const inMonth = gut.restarts.filter((x) => x.why !== AFTER_MONTH_KILL);
    expect(inMonth.length).toBeGreaterThanOrEqual(5);
    expect(gut.restarts.length).toBe(inMonth.length + 1);
    for (const why of ['photo-wave', 'after-payroll-csv', 'during-payroll-csv']) expect(inMonth.map((x) => x.why)).toContain(why);
    expect(csvPosts.map((h) => h.reposted)).toEqual([false, true]); // the second CSV got no answer and was posted again
    expect(inMonth.some((x) => x.resent > 0)).toBe(true); // kills with publishes in flight, resent
    expect(wageKillSeen).toBeGreaterThan(0);
  });

  it('is compared with a reference that has something to lose: every kind of check raised alerts', () => {
    const kinds = new Set(reference.raw.map((a) => a.kind.split('.')[0]));
    for (const k of ['hazard', 'keystaff', 'checkin', 'wage']) expect(kinds).toContain(k);
    const hazardExpected = (s.expected.alerts as ExpectedAlert[]).filter((e) => e.kind.startsWith('hazard.'));
    expect(hazardExpected.filter((e) => !reference.raw.some((a) => alertScorer(s).matches(e, a)))).toEqual([]); // the replayed part keeps every hazard condition
    const wageFindings = Object.values(s.expected.wageFindings as Record<string, unknown[]>).reduce((n, f) => n + f.length, 0);
    expect(reference.raw.filter((a) => a.kind.startsWith('wage.'))).toHaveLength(wageFindings);
    expect(reference.ledger.verdict).toBe(s.events.filter((e) => (e.payload as { method?: string })?.method === 'face').length);
    expect(twice(reference.raw)).toEqual([]);
  });

  it('stores every message once: the same ledger contents as the clean replay', () => {
    expect(withoutAlertRecords(crashed.ledger)).toEqual(withoutAlertRecords(reference.ledger));
  });

  it('raises exactly the alerts of the clean replay, none missing, none twice', () => {
    expect(twice(crashed.raw)).toEqual([]);
    expect(crashed.alerts).toEqual(reference.alerts);
  });

  it('gives the same attendance and the same wage findings per site', () => {
    expect(crashed.attendance).toEqual(reference.attendance);
    expect(crashed.wages).toEqual(reference.wages);
  });

  it('keeps an audit chain that verifies', () => {
    expect(audit).toMatchObject({ ok: true });
  });

  // Found by this test and fixed (alerts/alertLedger.ts): a kill between an alert change's state
  // commit and the ledger's next group commit lost the event's ledger record (what the sinks write
  // as the contract §4 `alert` point) for good; a start now appends the alert events of the audit
  // trail after the last one known to be in the ledger. Seen before the fix: the `opened` events of
  // 3 keystaff.absent alerts lost to the photo-wave kill, a hazard `cleared`, 8 `withdrawn`.
  it('loses no alert event\'s ledger record (what the sinks write) to a kill', () => {
    const missing = (us: UnrecordedEvent[]) => us.map((u) => `${u.line} #${u.n} ${u.event}`);
    expect(missing(crashedUnrecorded)).toEqual([]);
  });

  // Found by this test and fixed: the ledger record of an alert event was keyed by the alert's
  // history length when the after-commit listener ran, so two events of one alert committed in
  // one transaction (a hazard batch that opens and clears) got one key and the second was dropped
  // as a duplicate (3–5 hazard alerts per run). Records are now keyed by the event's audit entry.
  it('records each alert event in the ledger under its own key (the sinks\' copy is complete)', () => {
    const missing = (us: UnrecordedEvent[]) => us.map((u) => `${u.line} #${u.n} ${u.event}`);
    expect(missing(referenceUnrecorded)).toEqual([]);
  });
});

interface UnrecordedEvent { line: string; event: string; n: number; at: string }

/**
 * Alert events (each alert's history, from the audit trail; withdrawn alerts included) without
 * their ledger record (msg_id `<alert id>:<event>:<at ms>`, one record per event).
 */
async function alertEventsNotInLedger(api: Api, dataDir: string): Promise<UnrecordedEvent[]> {
  const alerts = await allAlerts({ api }, '&includeWithdrawn=true') as (ListedAlert & { history: { event: string; at: string }[] })[];
  const db = new Database(path.join(dataDir, 'ledger.db'), { readonly: true, fileMustExist: true });
  let recorded: Set<string>;
  try {
    recorded = new Set((db.prepare("SELECT msg_id FROM records WHERE kind = 'alert'").all() as { msg_id: string }[]).map((r) => r.msg_id));
  } finally {
    db.close();
  }
  return alerts.flatMap((a) => a.history.flatMap((h, k) =>
    recorded.has(`${a.id}:${h.event}:${Date.parse(h.at)}`) ? [] : [{ line: alertLine(a), event: h.event, n: k + 1, at: h.at }]));
}

/** The fields of a restart log line worth printing (counts, not the whole record). */
function pick(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([k, v]) => typeof v === 'number' && !['level', 'time', 'pid'].includes(k)));
}

/** Committed records the face check has not been through yet: check-ins queued, in hand or being verified. */
function faceLag(r: { status: number; text: string }): number {
  const m = /^sitegate_check_lag_records\{check="face-verification"\} (\d+)/m.exec(r.text);
  return m ? Number(m[1]) : 0;
}

/** Polls `cond` until it holds; fails with `what` after `ms`. */
async function until(cond: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = performance.now() + ms;
  while (!(await cond())) {
    if (performance.now() > deadline) throw new Error(`no ${what} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Polls the process until its results and ledger equal the reference's and nothing has changed
 * for longer than one check tick (so an alert raised twice late would still show), or until
 * nothing has changed for several ticks (it will not converge), or the deadline. The caller's
 * expectations then show the difference.
 */
async function converged(g: GatewayUnderTest, s: Scenario, ref: Results & { ledger: Record<string, number> }, ms: number) {
  const deadline = performance.now() + ms;
  let last = '';
  let quietSince = performance.now();
  for (;;) {
    const now = { ...(await results(g.api, s)), ledger: ledgerCounts(g.dataDir) };
    const seq = (await g.api('GET', '/readyz')).json?.ledger?.lastSeq;
    const state = JSON.stringify([now.alerts, now.attendance, now.wages, now.ledger, seq]);
    if (state !== last) { last = state; quietSince = performance.now(); }
    const quiet = performance.now() - quietSince;
    const same = isDeepStrictEqual([now.alerts, now.attendance, now.wages, withoutAlertRecords(now.ledger)], [ref.alerts, ref.attendance, ref.wages, withoutAlertRecords(ref.ledger)]);
    if ((same && quiet > QUIET_MS) || quiet > 4 * QUIET_MS || performance.now() > deadline) return now;
    await new Promise((r) => setTimeout(r, 500));
  }
}
