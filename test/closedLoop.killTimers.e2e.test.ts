import mqtt from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { ChildClock } from './support/clock.ts';
import { tempDir } from './support/gateway.ts';
import { restartableGateway, type RestartableGateway } from './support/restartable.ts';
import { webhookReceiver, type Received } from './support/webhookReceiver.ts';

const S = 1000;
const MIN = 60 * S;
const H = 60 * MIN;
/** Alert A opens here on the gateway's clock; W, its witness, one second earlier. */
const T0 = Date.parse('2026-11-02T01:00:00Z');
const SECRET = 'receiver-secret-timers-0123456789';
const iso = (t: number) => new Date(t).toISOString();

/**
 * The gateway's timer steps of one critical alert (defaults of alerts/deadlines.ts: acknowledge
 * within 30 min at level 1, rectify within 24 h, a reminder at 80 % of each), and where the kill -9
 * lands: `justBefore` — a pass over the timers ran one second before the deadline and fired
 * nothing for A, then the process is killed, restarted, and the deadline comes while it runs;
 * `downAcross` — the process is killed before the deadline and started after it, so the step
 * fires at the start. Either way A's webhook delivery of the step is then held in flight and the
 * process killed again: between the step's commit and its delivery.
 */
const STEPS: { name: string; due: number; event: 'reminder' | 'escalated'; level: number; kill: 'justBefore' | 'downAcross' }[] = [
  { name: 'reminder to acknowledge (80 % of 30 min)', due: T0 + 24 * MIN, event: 'reminder', level: 1, kill: 'justBefore' },
  { name: 'level 2: not acknowledged within 30 min', due: T0 + 30 * MIN, event: 'escalated', level: 2, kill: 'downAcross' },
  // acknowledged here; the rectification deadline was set at the move to level 2: T0 + 30 min + 24 h
  { name: 'reminder to rectify (80 % of 24 h)', due: T0 + 30 * MIN + 0.8 * 24 * H, event: 'reminder', level: 2, kill: 'downAcross' },
  { name: 'level 3: not rectified by dueAt', due: T0 + 30 * MIN + 24 * H, event: 'escalated', level: 3, kill: 'justBefore' },
];

/** Rejects after `ms` of real time: a bound on an awaited event, not a pause. */
function within<T>(p: Promise<T>, what: string, ms = 20_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms); });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/**
 * Contract §6 "none is lost, none fires twice" for the gateway's own steps (issue 12, "kill -9
 * between any two steps … no timer lost or doubled"): the gateway as its own process on a clock
 * this test sets (libfaketime, test/support/clock.ts), SIGKILLed around each timer step of a
 * critical wind alert. Each step fires once — in the alert's history (which is its audit-trail
 * entries), with the instant it fired, and on the webhook (one delivery id, made again after a kill
 * took it in flight) — and the audit chain verifies after every restart. A second alert W, opened
 * one second before A, is the witness that a pass ran just before A's deadline: its own step is
 * due then. In-process timers on a TestClock are test/closedLoop.e2e.test.ts; the people's steps
 * across kill -9 are test/closedLoop.kill.e2e.test.ts.
 */
describe('closed-loop timers across kill -9 of the gateway process', () => {
  const dataDir = tempDir('sitegate-kill-timers-');
  const clock = new ChildClock(T0 - S, tempDir('sitegate-clock-'));
  let gw: RestartableGateway;
  const start = async () => {
    // SITEGATE_ALERT_TIMER_MS: a deadline fires within 100 ms of real time after the clock passed it.
    gw ??= await restartableGateway(dataDir, { env: { SITEGATE_ALERT_TIMER_MS: '100' }, clock });
    await within(gw.start(), 'gateway start', 30_000);
  };
  const api: RestartableGateway['api'] = (...args) => gw.api(...args);
  async function kill9(): Promise<void> {
    expect(await gw.kill9()).toBe('SIGKILL');
  }
  afterAll(async () => gw?.stop());

  it('reminders and escalations to levels 2 and 3 fire once each: killed just before a deadline, down across one, and between a step\'s commit and its webhook delivery', async () => {
    const receiver = await webhookReceiver(SECRET);
    await start();
    expect((await api('GET', '/healthz')).status).toBe(200);
    await api('PUT', '/sites/S1', { name: '滨江一号地块', regionCode: '330106' });
    const secrets = {
      W: (await api('PUT', '/sites/S1/devices/WIND-W', { kind: 'sensor' })).json.secret as string,
      A: (await api('PUT', '/sites/S1/devices/WIND-A', { kind: 'sensor' })).json.secret as string,
    };
    const unit = (await api('POST', '/tokens', { role: 'construction_unit', scope: { sites: ['S1'] }, label: 'unit' })).json.token;
    // The wind alerts only: the device-offline alerts the clock's jumps raise have timers of their own.
    expect((await api('PUT', '/webhooks/wh', { url: receiver.url, secret: SECRET, scope: { sites: ['S1'] }, kinds: ['hazard.'] })).status).toBe(201);

    // A gust beyond the critical limit (13.8 m/s) from each device opens a critical alert: W at T0 − 1 s, A at T0.
    const arrived = async (match: (r: Received) => boolean, what: string) => {
      await within(receiver.until(() => receiver.accepted.some(match)), what);
      return receiver.accepted.find(match)!;
    };
    const ids = { W: '', A: '' };
    for (const who of ['W', 'A'] as const) {
      const dev = await mqtt.connectAsync(gw.mqttUrl, { username: `WIND-${who}`, password: secrets[who], reconnectPeriod: 0 });
      await dev.publishAsync(`sites/S1/devices/WIND-${who}/telemetry`, JSON.stringify({ id: `g-${who}`, ts: clock.now, metrics: { wind_speed_ms: 15.2 } }), { qos: 1 });
      ids[who] = (await arrived((r) => r.event === 'opened' && r.alertId !== ids.W, `${who} opened`)).alertId;
      await dev.endAsync();
      if (who === 'W') clock.set(T0);
    }
    expect((await api('GET', `/alerts/${ids.A}`)).json).toMatchObject({ severity: 'critical', level: 1, state: 'open', recordedAt: iso(T0), dueAt: iso(T0 + 24 * H) });

    /** What each alert's history must be, [event, at], step by step. */
    const expected = { W: [['opened', iso(T0 - S)]], A: [['opened', iso(T0)]] };
    const expectHistory = async (who: 'W' | 'A', context: string) => {
      const h = (await api('GET', `/alerts/${ids[who]}`)).json.history as { at: string; event: string; by?: string }[];
      expect(h.map((x) => [x.event, x.at]), `${who}'s history, ${context}`).toEqual(expected[who]);
    };

    for (const [i, s] of STEPS.entries()) {
      if (i === 2) {
        // Acknowledged at level 2: the acknowledgement timer stops, the rectification deadline runs.
        for (const who of ['W', 'A'] as const) {
          expect((await api('POST', `/alerts/${ids[who]}/ack`, { note: '收到' }, { token: unit })).status).toBe(200);
          expected[who].push(['acked', iso(clock.now)]);
        }
      }
      const held = receiver.holdNext((r) => r.alertId === ids.A && r.event === s.event && r.level === s.level);
      if (s.kill === 'justBefore') {
        clock.set(s.due - S);
        // W's step is due now: once its webhook arrived, a pass has run at due − 1 s, and it left A alone.
        await within(receiver.until(() => receiver.eventsOf(ids.W).length > expected.W.length), `${s.name}: W's step`);
        expected.W.push([s.event, iso(s.due - S)]);
        await expectHistory('W', `${s.name} due`);
        await expectHistory('A', `1 s before ${s.name}`);
        await kill9();
        await start(); // its pass at the start, at due − 1 s: nothing again for W, nothing yet for A
        await expectHistory('W', `restarted 1 s before ${s.name}`);
        await expectHistory('A', `restarted 1 s before ${s.name}`);
        clock.set(s.due);
        expected.A.push([s.event, iso(s.due)]);
      } else {
        await kill9();
        clock.set(s.due + MIN);
        await start(); // down across both deadlines: both fire at this start
        expected.W.push([s.event, iso(s.due + MIN)]);
        expected.A.push([s.event, iso(s.due + MIN)]);
      }
      // A's step committed (its outbox row goes in the step's transaction) and its delivery is in flight: kill.
      const inFlight = await within(held, `${s.name}: A's step`);
      await kill9();
      await start();
      await arrived((r) => r.deliveryId === inFlight.deliveryId, `${s.name}: A's delivery made again`);
      await expectHistory('A', `after ${s.name} and two kills`);
      await expectHistory('W', `after ${s.name} and two kills`);
      expect((await api('GET', `/alerts/${ids.A}`)).json.level, s.name).toBe(s.level);
      expect((await api('GET', '/audit/verify')).json, `audit chain after ${s.name}`).toMatchObject({ ok: true });
    }

    const final = (await api('GET', `/alerts/${ids.A}`)).json;
    expect(final).toMatchObject({ level: 3, state: 'acked', dueAt: iso(T0 + 30 * MIN + 48 * H) });
    expect(final.history.filter((h: { by?: string }) => h.by === 'gateway').map((h: { event: string }) => h.event)).toEqual(STEPS.map((s) => s.event));

    // Webhooks: every step once (one delivery id each; a delivery made again keeps its id), in order, signed.
    for (const who of ['W', 'A'] as const) {
      await within(receiver.until(() => receiver.eventsOf(ids[who]).length >= expected[who].length), `${who}'s webhooks`);
      expect(receiver.eventsOf(ids[who]), `${who}'s webhook events`).toEqual(expected[who].map(([event]) => event));
    }
    const byDelivery = new Map(receiver.accepted.filter((r) => r.alertId === ids.A).map((r) => [r.deliveryId, [r.event, r.level]]));
    expect([...byDelivery.values()]).toEqual([['opened', 1], ...STEPS.slice(0, 2).map((s) => [s.event, s.level]), ['acked', 2], ...STEPS.slice(2).map((s) => [s.event, s.level])]);
    expect(receiver.accepted.every((r) => r.signatureOk)).toBe(true);
    await receiver.close();
  }, 60_000);
});
