import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClock } from './support/clock.ts';
import { COMMAND_ANSWER_TIMEOUT_S } from '../schemas/src/command.ts';
import { startGateway, tempDir, type TestGateway } from './support/gateway.ts';
import { grantedCodes, nextMessage } from './support/mqtt.ts';

/**
 * Contract §7 commands through the real gateway and real MQTT clients: created over the API,
 * delivered on the device's own `…/commands` when it subscribes (now or after a gateway
 * restart), `delivered` on its PUBACK, `succeeded`/`failed` from its `…/command-results`,
 * `expired` when nobody took it in time; a device hears only its own commands, and only the
 * construction unit of the site (or an admin) may send them.
 */
const T0 = Date.parse('2026-11-02T08:00:00+08:00');


/** Resolves after the gateway handled the device's next PUBACK of a command. */
const nextAck = (g: TestGateway) => new Promise<void>((resolve) => g.gw.broker.aedes.once('ack', () => resolve()));

describe('commands to site equipment (contract §7)', () => {
  const clock = new TestClock(T0);
  const dataDir = tempDir('sitegate-commands-');
  let g: TestGateway;
  let fog: string;
  let other: string;
  const tokens: Record<string, string> = {};

  beforeAll(async () => {
    g = await startGateway({}, { now: clock.now, commandSweepMs: 0 }, dataDir);
    fog = await g.device('S1', 'FOG-1');
    other = await g.device('S2', 'FOG-9', 'sensor', '511302');
    for (const [name, body] of Object.entries({
      cu: { role: 'construction_unit', scope: { sites: ['S1'] } },
      cuOther: { role: 'construction_unit', scope: { sites: ['S2'] } },
      regulator: { role: 'regulator', scope: { regions: ['3301'] } },
    })) tokens[name] = (await g.api('POST', '/tokens', body)).json.token;
  });
  afterAll(async () => g?.stop());

  it('a command for an offline device waits, reaches it when it subscribes, and ends with its result', async () => {
    const created = await g.api('POST', '/sites/S1/devices/FOG-1/commands', { action: 'on', params: { level: 2 }, ttlS: 300 }, { token: tokens.cu });
    expect(created.status, created.text).toBe(201);
    expect(created.json).toEqual({ commandId: expect.stringMatching(/^cmd_/), state: 'pending', expiresAt: new Date(T0 + 300_000).toISOString() });
    const id = created.json.commandId as string;

    const c = await g.connect('FOG-1', fog);
    const got = nextMessage(c, 'sites/S1/devices/FOG-1/commands');
    const acked = nextAck(g);
    await c.subscribeAsync('sites/S1/devices/FOG-1/commands', { qos: 1 });
    expect(await got).toEqual({ commandId: id, action: 'on', params: { level: 2 }, expiresAt: new Date(T0 + 300_000).toISOString() });
    await acked;
    expect((await g.api('GET', `/sites/S1/devices/FOG-1/commands/${id}`, undefined, { token: tokens.regulator })).json).toMatchObject({ state: 'delivered', deliveredAt: new Date(T0).toISOString() });

    clock.advance(1500);
    await c.publishAsync('sites/S1/devices/FOG-1/command-results', JSON.stringify({ commandId: id, ts: clock.now(), ok: true, message: 'coil 0 on' }), { qos: 1 });
    const done = await g.api('GET', `/sites/S1/devices/FOG-1/commands/${id}`);
    expect(done.json).toMatchObject({ state: 'succeeded', message: 'coil 0 on', resultTs: new Date(T0 + 1500).toISOString(), by: expect.stringMatching(/^construction_unit /) });
    // A repeated answer (the device resent it after a reconnect) changes nothing.
    await c.publishAsync('sites/S1/devices/FOG-1/command-results', JSON.stringify({ commandId: id, ts: clock.now(), ok: false }), { qos: 1 });
    expect((await g.api('GET', `/sites/S1/devices/FOG-1/commands/${id}`)).json.state).toBe('succeeded');

    // A command created while the device listens goes out at once; a failure is recorded with its reason.
    const live = nextMessage(c, 'sites/S1/devices/FOG-1/commands');
    const acked2 = nextAck(g);
    const second = (await g.api('POST', '/sites/S1/devices/FOG-1/commands', { action: 'dance' })).json;
    expect((await live).commandId).toBe(second.commandId);
    await acked2;
    await c.publishAsync('sites/S1/devices/FOG-1/command-results', JSON.stringify({ commandId: second.commandId, ts: clock.now(), ok: false, message: 'unknown action dance' }), { qos: 1 });
    expect((await g.api('GET', `/sites/S1/devices/FOG-1/commands/${second.commandId}`)).json).toMatchObject({ state: 'failed', message: 'unknown action dance' });
    expect((await g.api('GET', '/sites/S1/devices/FOG-1/commands')).json.items.map((x: { commandId: string }) => x.commandId)).toEqual([second.commandId, id]);
    const audit = g.gw.audit.bySubject(`command:${id}`).map((e) => e.type);
    expect(audit).toEqual(['command.created', 'command.succeeded']);
    await c.endAsync();
  });

  it('survives a gateway restart and expires what nobody took in time', async () => {
    const keep = (await g.api('POST', '/sites/S1/devices/FOG-1/commands', { action: 'off', ttlS: 600 })).json.commandId as string;
    const lapse = (await g.api('POST', '/sites/S1/devices/FOG-1/commands', { action: 'on', ttlS: 60 })).json.commandId as string;
    await g.stop({ keepDataDir: true });
    clock.advance(120_000);
    g = await startGateway({}, { now: clock.now, commandSweepMs: 0 }, dataDir);
    expect(g.gw.commandDelivery.sweep()).toBe(1);
    expect(g.gw.commands.get(lapse)!.state).toBe('expired');

    const c = await g.connect('FOG-1', fog);
    const got = nextMessage(c, 'sites/S1/devices/FOG-1/commands');
    const acked = nextAck(g);
    await c.subscribeAsync('sites/S1/devices/FOG-1/commands', { qos: 1 });
    expect((await got).commandId).toBe(keep);
    await acked;
    expect(g.gw.commands.get(keep)!.state).toBe('delivered');
    expect(g.gw.audit.bySubject(`command:${lapse}`).map((e) => e.type)).toEqual(['command.created', 'command.expired']);
    expect(g.gw.audit.verify().ok).toBe(true);
  });

  it('a delivered command never answered expires after COMMAND_ANSWER_TIMEOUT_S, counted; a late answer is kept, not applied', async () => {
    // `keep` was PUBACKed by FOG-1 in the test before and never answered.
    const keep = g.gw.commands.list('FOG-1').find((x) => x.action === 'off' && x.state === 'delivered')!;
    expect(keep).toBeDefined();
    const metric = async (event: string) => {
      const line = (await g.api('GET', '/metrics')).text.split('\n').find((l) => l.startsWith(`sitegate_commands_total{event="${event}"} `));
      return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
    };
    clock.set(keep.deliveredAt! + COMMAND_ANSWER_TIMEOUT_S * 1000 - 1);
    expect(g.gw.commandDelivery.sweep()).toBe(0);
    expect(g.gw.commands.get(keep.commandId)!.state).toBe('delivered');
    clock.advance(1);
    expect(g.gw.commandDelivery.sweep()).toBe(1);
    const view = (await g.api('GET', `/sites/S1/devices/FOG-1/commands/${keep.commandId}`)).json;
    expect(view).toMatchObject({ state: 'expired', deliveredAt: new Date(keep.deliveredAt!).toISOString(), message: expect.stringContaining(`no answer within ${COMMAND_ANSWER_TIMEOUT_S} s`) });
    expect(view.resultAt).toBeUndefined();
    expect(await metric('expired_unanswered')).toBe(1);
    expect(g.gw.commandDelivery.sweep()).toBe(0); // once

    // The answer comes after all: acknowledged (the device must not resend it for ever), kept in the audit trail, state unchanged.
    const c = await g.connect('FOG-1', fog);
    await c.publishAsync('sites/S1/devices/FOG-1/command-results', JSON.stringify({ commandId: keep.commandId, ts: clock.now(), ok: true, message: 'coil 0 off' }), { qos: 1 });
    const after = (await g.api('GET', `/sites/S1/devices/FOG-1/commands/${keep.commandId}`)).json;
    expect(after).toMatchObject({ state: 'expired', resultAt: new Date(clock.now()).toISOString(), message: view.message });
    expect(await metric('late_result')).toBe(1);
    await c.publishAsync('sites/S1/devices/FOG-1/command-results', JSON.stringify({ commandId: keep.commandId, ts: clock.now(), ok: true }), { qos: 1 });
    expect(await metric('late_result')).toBe(1); // a repeat of it is a duplicate
    const entries = g.gw.audit.bySubject(`command:${keep.commandId}`);
    expect(entries.map((e) => e.type)).toEqual(['command.created', 'command.expired', 'command.late_result']);
    expect(entries[1]!.data).toMatchObject({ unanswered: true, deliveredAt: keep.deliveredAt });
    expect(entries[2]!.data).toMatchObject({ ok: true, message: 'coil 0 off' });
    expect(g.gw.audit.verify().ok).toBe(true);
    await c.endAsync();
  });

  it('a device hears only its own commands, cannot publish commands, and bad results are answered on its errors topic', async () => {
    const c = await g.connect('FOG-1', fog);
    expect(await grantedCodes(c, ['sites/S1/devices/FOG-1/commands', 'sites/S2/devices/FOG-9/commands', 'sites/+/devices/+/commands', 'sites/S1/devices/FOG-1/command-results'], 1))
      .toEqual([1, 128, 128, 128]);
    await c.subscribeAsync('sites/S1/devices/FOG-1/errors', { qos: 1 });
    const theirs = (await g.api('POST', '/sites/S2/devices/FOG-9/commands', { action: 'on' })).json.commandId as string;
    for (const [payload, reason] of [
      ['{not json', 'invalid_json'],
      [JSON.stringify({ commandId: 'x', ok: 'yes' }), 'schema_invalid'],
      [JSON.stringify({ commandId: theirs, ts: clock.now(), ok: true }), 'unknown_command'],
      [JSON.stringify({ commandId: 'cmd_nope', ts: clock.now(), ok: true }), 'unknown_command'],
    ] as const) {
      const err = nextMessage(c, 'sites/S1/devices/FOG-1/errors');
      await c.publishAsync('sites/S1/devices/FOG-1/command-results', payload, { qos: 1 });
      expect(await err).toMatchObject({ ref: 'sites/S1/devices/FOG-1/command-results', reason });
    }
    expect(g.gw.commands.get(theirs)!.state).toBe('pending');
    // Publishing on a commands topic (even its own) closes the connection (MQTT-3.3.5-2).
    const closed = new Promise<void>((r) => c.once('close', () => r()));
    c.publish('sites/S1/devices/FOG-1/commands', JSON.stringify({ commandId: 'self', action: 'on', expiresAt: clock.now() }), { qos: 1 });
    await closed;
    const o = await g.connect('FOG-9', other);
    expect(await grantedCodes(o, ['sites/S1/devices/FOG-1/commands'], 1)).toEqual([128]);
  });

  it('only an admin or the site\'s construction unit sends commands; readers of the site follow them', async () => {
    const body = { action: 'on' };
    expect((await g.api('POST', '/sites/S1/devices/FOG-1/commands', body, { token: null })).status).toBe(401);
    expect((await g.api('POST', '/sites/S1/devices/FOG-1/commands', body, { token: tokens.regulator })).status).toBe(403);
    expect((await g.api('POST', '/sites/S1/devices/FOG-1/commands', body, { token: tokens.cuOther })).status).toBe(403);
    expect((await g.api('GET', '/sites/S1/devices/FOG-1/commands', undefined, { token: tokens.cuOther })).status).toBe(403);
    expect((await g.api('POST', '/sites/S1/devices/FOG-9/commands', body)).status).toBe(404);
    const bad = await g.api('POST', '/sites/S1/devices/FOG-1/commands', { action: 'on', ttlS: 0, extra: 1 });
    expect(bad.status).toBe(400);
    expect((await g.api('GET', '/sites/S1/devices/FOG-1/commands/cmd_none')).status).toBe(404);
  });

  it('site settings take linkage rules and refuse what they do not know', async () => {
    const rule = { on: { kind: 'hazard.threshold', metric: 'pm10', severity: 'warning' }, deviceId: 'FOG-1', action: 'on', clearAction: 'off' };
    const ok = await g.api('PUT', '/sites/S1', { name: 'S1', regionCode: '330106', settings: { linkage: [rule] } });
    expect(ok.status, ok.text).toBe(200);
    expect(ok.json.settings.linkage).toEqual([rule]);
    for (const bad of [{ ...rule, colour: 'red' }, { ...rule, on: { kind: 'hazard.smoke' } }, { ...rule, deviceId: 'no spaces' }]) {
      const r = await g.api('PUT', '/sites/S1', { name: 'S1', regionCode: '330106', settings: { linkage: [bad] } });
      expect(r.status, JSON.stringify(bad)).toBe(400);
    }
  });
});
