import { EventEmitter, once } from 'node:events';
import modbusSerial from 'modbus-serial';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAgent, type Agent } from '../edge-agent/src/agent.ts';
import { TestClock } from './support/clock.ts';
import { agentConfig, T0 } from './support/agent.ts';
import { freePort, startGateway, type TestGateway } from './support/gateway.ts';

const { ServerTCP } = modbusSerial;

/**
 * Linkage end to end (contract §7, issue 13): a dust sensor and a fog cannon's controller, both
 * served by modbus-serial's own Modbus TCP server, an edge agent polling the one and executing
 * commands on the other, the real gateway in between. pm10 above its limit → hazard alert →
 * linkage command → the fog-cannon coil goes on; the dust settles, the alert clears → it goes off.
 * Then what the agent answers when a command cannot be done: an unknown action, a Modbus
 * exception, a timeout — each `ok: false` with its reason, the agent running on.
 */
describe('pm10 hazard → linkage → edge agent → Modbus coil, and back', () => {
  const holding: Record<number, number> = { 0: 200 };
  const coils: Record<number, boolean> = {};
  const writes = new EventEmitter();
  let server: InstanceType<typeof ServerTCP>;
  let g: TestGateway;
  let agent: Agent;
  const clock = new TestClock(T0);

  /** The next write of coil `addr` (an event of the server, not a sleep). */
  const coilWrite = (addr: number) => once(writes, `coil:${addr}`).then(([v]) => v as boolean);
  /** Resolves once the gateway has stored the result of `commandId` (committed). */
  const resultOf = (commandId: string) => new Promise<void>((resolve) => {
    const off = g.gw.commands.onFinished((c) => {
      if (c.commandId !== commandId) return;
      off();
      resolve();
    });
  });
  const dust = () => agent.inputs.find((i) => i.name === 'modbus:DUST-1')!;
  async function poll(times: number, pm10: number): Promise<void> {
    holding[0] = Math.round(pm10 * 10);
    for (let i = 0; i < times; i++) {
      clock.advance(60_000);
      await agent.gather(dust());
    }
  }

  beforeAll(async () => {
    const port = await freePort();
    server = new ServerTCP({
      getHoldingRegister: (addr: number) => holding[addr] ?? 0,
      getCoil: (addr: number) => coils[addr] ?? false,
      setCoil: (addr: number, value: boolean) => {
        if (addr === 99) throw new Error('relay board fault'); // answered as an exception
        coils[addr] = value;
        writes.emit(`coil:${addr}`, value);
      },
      setRegister: (addr: number, value: number, _unit: number, cb: (err: Error | null) => void) => {
        if (addr === 77) return; // never answers: the client's timeout
        holding[addr] = value;
        cb(null);
      },
    } as never, { host: '127.0.0.1', port, unitID: 1 });
    await new Promise((r) => server.on('initialized', r));

    g = await startGateway({}, { now: clock.now, commandSweepMs: 0 });
    const site = await g.api('PUT', '/sites/S1', {
      name: 'S1', regionCode: '330106',
      settings: { linkage: [{ on: { kind: 'hazard.threshold', metric: 'pm10' }, deviceId: 'FOG-1', action: 'on', clearAction: 'off', ttlS: 3600 }] },
    });
    expect(site.status, site.text).toBe(201);
    const secret = async (deviceId: string) => {
      const r = await g.api('PUT', `/sites/S1/devices/${deviceId}`, { kind: 'sensor', intervalS: 60 });
      expect(r.status, r.text).toBe(201);
      return r.json.secret as string;
    };
    const config = agentConfig(g.mqttUrl, [
      { type: 'modbus', deviceId: 'DUST-1', secret: await secret('DUST-1'), host: '127.0.0.1', port, model: 'dust', intervalS: 60, timeoutMs: 300 },
    ], {
      models: { dust: [{ metric: 'pm10', register: 0, scale: 0.1 }] },
      actuators: [{
        type: 'modbus', deviceId: 'FOG-1', secret: await secret('FOG-1'), host: '127.0.0.1', port, timeoutMs: 300,
        actions: {
          on: [{ write: 'coil', address: 0, value: true }],
          off: [{ write: 'coil', address: 0, value: false }],
          level: [{ write: 'register', address: 10, param: 'level', scale: 10 }],
          broken: [{ write: 'coil', address: 99, value: true }],
          stuck: [{ write: 'register', address: 77, value: 1 }],
        },
      }],
    });
    agent = buildAgent(config, { now: clock.now, poll: false });
    await agent.start();
  });
  afterAll(async () => { await agent?.stop(); await g?.stop(); await new Promise((r) => server.close(r)); });

  it('turns the fog cannon on when the pm10 alert opens and off when it clears', async () => {
    await poll(5, 20); // clean air: no alert, no command
    const on = coilWrite(0);
    // The 1-hour mean rule fires once half its window is filled (30 samples at intervalS 60).
    await poll(31, 250);
    expect(await on).toBe(true);
    const [alert] = (await g.api('GET', '/alerts?siteId=S1&kind=hazard.threshold')).json.items;
    expect(alert).toMatchObject({ state: 'open', subject: { deviceId: 'DUST-1', metric: 'pm10' } });
    const [cmdOn] = g.gw.commands.ofAlert(alert.id);
    await (g.gw.commands.get(cmdOn!.commandId)!.state === 'succeeded' ? undefined : resultOf(cmdOn!.commandId));
    expect((await g.api('GET', `/sites/S1/devices/FOG-1/commands/${cmdOn!.commandId}`)).json).toMatchObject({ action: 'on', state: 'succeeded', message: 'write coil 0 = on', alertId: alert.id, by: 'linkage' });

    const off = coilWrite(0);
    await poll(35, 20); // the hour's mean falls below the clear level (90 % of 150)
    expect(await off).toBe(false);
    const after = (await g.api('GET', `/alerts/${alert.id}`)).json;
    expect(after.state).toBe('cleared');
    expect(after.history.map((h: { event: string }) => h.event)).toEqual(['opened', 'linkage', 'cleared', 'linkage']);
    expect(after.history[3].note).toMatch(/^联动解除：已向 FOG-1 发送「off」/);
    const cmdOff = g.gw.commands.ofAlert(alert.id).find((c) => c.action === 'off')!;
    await (g.gw.commands.get(cmdOff.commandId)!.state === 'succeeded' ? undefined : resultOf(cmdOff.commandId));
    expect(g.gw.commands.get(cmdOff.commandId)!.state).toBe('succeeded');
    expect(coils[0]).toBe(false);
    expect(g.gw.audit.verify().ok).toBe(true);
  });

  it('answers ok: false with the reason for an unknown action, a Modbus exception and a timeout, and executes a parameter write', async () => {
    const send = async (action: string, params?: Record<string, number>) => {
      const r = await g.api('POST', '/sites/S1/devices/FOG-1/commands', { action, ...(params ? { params } : {}) });
      expect(r.status, r.text).toBe(201);
      const done = resultOf(r.json.commandId);
      await (g.gw.commands.get(r.json.commandId)!.resultAt !== undefined ? undefined : done);
      return (await g.api('GET', `/sites/S1/devices/FOG-1/commands/${r.json.commandId}`)).json;
    };
    expect(await send('dance')).toMatchObject({ state: 'failed', message: expect.stringMatching(/^unknown action "dance" for FOG-1 \(known: on, off, level, broken, stuck\)/) });
    expect(await send('broken')).toMatchObject({ state: 'failed', message: expect.stringMatching(/^Modbus exception 4 to write coil 99/) });
    expect(await send('stuck')).toMatchObject({ state: 'failed', message: expect.stringMatching(/^Modbus timeout: no answer within 300 ms to write register 77/) });
    expect(await send('level', { level: 2.5 })).toMatchObject({ state: 'succeeded', message: 'write register 10 = 25' });
    expect(holding[10]).toBe(25);
    const st = agent.status().sources.find((s) => s.name === 'actuator:modbus:FOG-1')!;
    expect(st.errors).toEqual({ command_failed: 3 });
    expect(st.counts).toMatchObject({ succeeded: 3, failed: 3 });
  });
});
