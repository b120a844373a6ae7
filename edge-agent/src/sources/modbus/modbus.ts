import modbusSerial from 'modbus-serial';
import type { z } from 'zod';
import type { ModbusSource, RegisterSpec } from '../../../../schemas/src/agent.ts';
import type { AgentErrorCode } from '../../errors.ts';
import type { Input, InputContext } from '../input.ts';
import { decode, planReads, type ReadPlan } from './registerMap.ts';

type Config = z.infer<typeof ModbusSource>;
// modbus-serial is CommonJS: under NodeNext its default import is module.exports, whose
// `default` property is the client class (its typings declare it as an ES default export).
const ModbusRTU = modbusSerial.default;
type ModbusClient = InstanceType<typeof ModbusRTU>;

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
  private client?: ModbusClient;
  private ctx?: InputContext;

  constructor(private readonly cfg: Config, specs: RegisterSpec[]) {
    this.name = `modbus:${cfg.deviceId}`;
    this.devices = [{ deviceId: cfg.deviceId, secret: cfg.secret }];
    this.intervalS = cfg.intervalS;
    this.plans = planReads(specs);
  }

  async start(ctx: InputContext): Promise<void> {
    this.ctx = ctx;
  }

  private async connect(): Promise<ModbusClient> {
    if (this.client?.isOpen) return this.client;
    this.client?.close(() => {});
    const c = new ModbusRTU();
    c.setID(this.cfg.unitId);
    c.setTimeout(this.cfg.timeoutMs);
    await c.connectTCP(this.cfg.host, { port: this.cfg.port });
    this.client = c;
    return c;
  }

  async gather(): Promise<void> {
    const ctx = this.ctx!;
    const ts = ctx.now();
    const metrics: Record<string, number> = {};
    let step = 'connect';
    try {
      const c = await this.connect();
      for (const p of this.plans) {
        step = `read ${p.table} ${p.start}+${p.length}`;
        const r = p.table === 'holding' ? await c.readHoldingRegisters(p.start, p.length) : await c.readInputRegisters(p.start, p.length);
        for (const s of p.specs) metrics[s.metric] = decode(s, r.data, p.start);
      }
    } catch (e) {
      const err = e as { message?: string; name?: string; errno?: string; modbusCode?: number };
      const code: AgentErrorCode = step === 'connect' ? 'modbus_connect'
        : err.name === 'TransactionTimedOutError' || err.errno === 'ETIMEDOUT' ? 'modbus_timeout'
        : err.modbusCode !== undefined ? 'modbus_exception' : 'modbus_connect';
      ctx.error(code, `${this.cfg.host}:${this.cfg.port} unit ${this.cfg.unitId} ${step}: ${err.message ?? String(e)}${err.modbusCode !== undefined ? ` (exception ${err.modbusCode})` : ''}`);
      // After a timeout the answer may still arrive and be taken for the next request's: start afresh.
      if (code !== 'modbus_exception') this.drop();
      return;
    }
    const reading = { id: String(ts), ts, metrics };
    ctx.enqueue([{ deviceId: this.cfg.deviceId, channel: 'telemetry', msgId: reading.id, payload: Buffer.from(JSON.stringify(reading)) }]);
  }

  private drop(): void {
    const c = this.client;
    this.client = undefined;
    if (c?.isOpen) c.close(() => {});
  }

  async stop(): Promise<void> {
    this.drop();
  }
}
