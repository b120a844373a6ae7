import type { z } from 'zod';
import type { ModbusSource, RegisterSpec } from '../../../../schemas/src/agent.ts';
import type { AgentErrorCode } from '../../errors.ts';
import type { Input, InputContext } from '../input.ts';
import { decode, planReads, type ReadPlan } from './registerMap.ts';
import { isModbusTimeout, ModbusLink, type ModbusError } from '../../modbus/modbusLink.ts';

type Config = z.infer<typeof ModbusSource>;

/**
 * A sensor polled over Modbus TCP with the register map of its model (config `models`): every
 * poll reads the map in as few requests as possible and queues one reading `{id, ts, metrics}`
 * (id: the poll's time, stable once stored); the device link sends runs of them as batches. A
 * poll that fails (no connection, timeout, exception answer) queues nothing, is counted by kind,
 * and the next poll reconnects: a partial reading would look like a sensor that lost a metric.
 */
export class ModbusInput implements Input {
  readonly name: string;
  readonly devices: { deviceId: string; secret: string }[];
  readonly intervalS: number;
  private readonly plans: ReadPlan[];
  private readonly link: ModbusLink;
  private ctx?: InputContext;

  constructor(private readonly cfg: Config, specs: RegisterSpec[]) {
    this.name = `modbus:${cfg.deviceId}`;
    this.devices = [{ deviceId: cfg.deviceId, secret: cfg.secret }];
    this.intervalS = cfg.intervalS;
    this.plans = planReads(specs);
    this.link = new ModbusLink(cfg);
  }

  async start(ctx: InputContext): Promise<void> {
    this.ctx = ctx;
  }

  async gather(): Promise<void> {
    const ctx = this.ctx!;
    const ts = ctx.now();
    const metrics: Record<string, number> = {};
    let step = 'connect';
    try {
      const c = await this.link.connect();
      for (const p of this.plans) {
        step = `read ${p.table} ${p.start}+${p.length}`;
        const r = p.table === 'holding' ? await c.readHoldingRegisters(p.start, p.length) : await c.readInputRegisters(p.start, p.length);
        for (const s of p.specs) metrics[s.metric] = decode(s, r.data, p.start);
      }
    } catch (e) {
      const err = e as ModbusError;
      const code: AgentErrorCode = step === 'connect' ? 'modbus_connect'
        : isModbusTimeout(err) ? 'modbus_timeout'
        : err.modbusCode !== undefined ? 'modbus_exception' : 'modbus_connect';
      ctx.error(code, `${this.cfg.host}:${this.cfg.port} unit ${this.cfg.unitId} ${step}: ${err.message ?? String(e)}${err.modbusCode !== undefined ? ` (exception ${err.modbusCode})` : ''}`);
      // After a timeout the answer may still arrive and be taken for the next request's: start afresh.
      if (code !== 'modbus_exception') this.link.drop();
      return;
    }
    const reading = { id: String(ts), ts, metrics };
    ctx.enqueue([{ deviceId: this.cfg.deviceId, channel: 'telemetry', msgId: reading.id, payload: Buffer.from(JSON.stringify(reading)) }]);
  }

  async stop(): Promise<void> {
    this.link.drop();
  }
}
