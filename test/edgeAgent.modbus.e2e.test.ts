import modbusSerial from 'modbus-serial';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAgent, type Agent } from '../edge-agent/src/agent.ts';
import { TestClock } from './support/clock.ts';
import { agentConfig, T0 } from './support/agent.ts';
import { freePort, startGateway, type TestGateway } from './support/gateway.ts';

const { ServerTCP } = modbusSerial;

/**
 * A Modbus TCP sensor served by modbus-serial's own server: readings arrive at the gateway
 * scaled by the model's register map; a timeout, an exception answer and a refused connection
 * are counted and lose nothing already queued.
 */
describe('Modbus TCP sensor → gateway', () => {
  // pm10 523 × 0.1; temperature int16 -30 × 0.1; wind float32 12.15 (0x41426666, high word first); noise 655 × 0.1
  const holding: Record<number, number> = { 0: 523, 1: 0xffe2, 10: 0x4142, 11: 0x6666 };
  const input: Record<number, number> = { 5: 655 };
  let hang = false;
  let server: InstanceType<typeof ServerTCP>;
  let port = 0;
  let g: TestGateway;
  let agent: Agent;
  const clock = new TestClock(T0);
  const readingsOf = async () => (await g.gw.ledger.readAfter(0, 10_000)).filter((r) => r.kind === 'reading' && r.deviceId === 'MB-1');

  beforeAll(async () => {
    port = await freePort();
    server = new ServerTCP({
      getHoldingRegister: (addr: number) => {
        if (addr === 100) throw new Error('sensor board fault'); // answered as exception 04
        if (!(addr in holding)) return 0;
        return holding[addr]!;
      },
      getInputRegister: (addr: number, _unit: number, cb: (err: Error | null, v: number) => void) => {
        if (hang) return; // never answers: the client's timeout
        cb(null, input[addr] ?? 0);
      },
    } as never, { host: '127.0.0.1', port, unitID: 1 });
    await new Promise((r) => server.on('initialized', r));
    g = await startGateway();
    const secret = await g.device('S1', 'MB-1', 'sensor');
    const config = agentConfig(g.mqttUrl, [
      { type: 'modbus', deviceId: 'MB-1', secret, host: '127.0.0.1', port, model: 'dust-v2', intervalS: 3600, timeoutMs: 300 },
      { type: 'modbus', deviceId: 'MB-2', secret: 'unused', host: '127.0.0.1', port: await freePort(), model: 'broken', intervalS: 3600, timeoutMs: 300 },
    ], {
      models: {
        'dust-v2': [
          { metric: 'pm10', register: 0, scale: 0.1 },
          { metric: 'temperature_c', register: 1, type: 'int16', scale: 0.1 },
          { metric: 'wind_speed_ms', register: 10, type: 'float32' },
          { metric: 'noise_dba', register: 5, table: 'input', scale: 0.1 },
        ],
        broken: [{ metric: 'pm2_5', register: 100 }],
      },
    });
    agent = buildAgent(config, { now: clock.now, poll: false });
    await agent.start();
  });
  afterAll(async () => { await agent.stop(); await g.stop(); await new Promise((r) => server.close(r)); });

  it('reads the register map and the readings arrive scaled', async () => {
    await agent.gather(agent.inputs.find((i) => i.name === 'modbus:MB-1')!);
    expect(agent.status().sources.find((s) => s.name === 'modbus:MB-1')!.errors).toEqual({});
    await agent.drained();
    expect((await readingsOf()).map((r) => ({ ts: r.ts, msgId: r.msgId, metrics: (r.body as { metrics: unknown }).metrics }))).toEqual([
      { ts: T0, msgId: String(T0), metrics: { pm10: 52.3, temperature_c: -3, wind_speed_ms: 12.15, noise_dba: 65.5 } },
    ]);
  });

  it('counts a timeout, an exception answer and a refused connection, and keeps going', async () => {
    const mb1 = agent.inputs.find((i) => i.name === 'modbus:MB-1')!;
    const mb2 = agent.inputs.find((i) => i.name === 'modbus:MB-2')!;
    hang = true;
    clock.advance(10_000);
    await agent.gather(mb1);
    hang = false;
    clock.advance(10_000);
    await agent.gather(mb1); // reconnects after the timeout
    await agent.gather(mb2);
    await agent.drained();
    const st = agent.status().sources;
    const s1 = st.find((s) => s.name === 'modbus:MB-1')!;
    expect(s1.errors).toEqual({ modbus_timeout: 1 });
    expect(s1.lastError?.message).toMatch(/read input 5\+1/);
    expect(s1.accepted).toBe(2);
    expect(st.find((s) => s.name === 'modbus:MB-2')!.errors).toEqual({ modbus_connect: 1 });
    expect(await readingsOf()).toHaveLength(2);
    expect((await readingsOf())[1]!.ts).toBe(T0 + 20_000);
  });

  it('counts a register read error (exception answer) without a reading', async () => {
    const cfg = agent.config;
    // The exception answer comes at once; a generous timeout keeps a loaded machine's slow answer from looking like none.
    const only = buildAgent({ ...cfg, queue: { ...cfg.queue, file: `${cfg.queue.file}.2` }, sources: [
      { type: 'modbus', deviceId: 'MB-3', secret: 's', host: '127.0.0.1', port, unitId: 1, model: 'broken', intervalS: 3600, timeoutMs: 5000 },
    ] }, { now: clock.now });
    const input = only.inputs[0]!;
    const errors: string[] = [];
    await input.start({ enqueue: (e) => only.outbox.put(e), error: (code, message) => errors.push(`${code}: ${message}`), count: () => {}, now: clock.now, http: only.http });
    await input.gather!();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^modbus_exception: .*read holding 100\+1.*exception 4/);
    expect(only.outbox.depth).toBe(0);
    await input.stop();
    only.outbox.close();
  });
});
