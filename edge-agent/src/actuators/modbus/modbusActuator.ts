import type { ActuatorWrite, ModbusActuator as Config } from '../../../../schemas/src/agent.ts';
import type { CommandMessage } from '../../../../schemas/src/command.ts';
import type { Actuator, ActuatorResult } from '../actuator.ts';

import { isModbusTimeout, ModbusLink, type ModbusError } from '../../modbus/modbusLink.ts';

/** Why a write failed, as the result's message says it (people read it in the gateway's API). */
function reason(err: ModbusError, what: string, cfg: Config): string {
  if (isModbusTimeout(err)) return `Modbus timeout: no answer within ${cfg.timeoutMs} ms to ${what}`;
  if (err.modbusCode !== undefined) return `Modbus exception ${err.modbusCode} to ${what}: ${err.message ?? ''}`.trim();
  return `Modbus error on ${what}: ${err.message ?? String(err)}`;
}

/**
 * A controller on Modbus TCP that executes commands with the writes the config maps each action
 * to: a coil (function 05, `on`/`off`) or a holding register (function 06, a fixed value or a
 * command parameter × scale). Writes of one actuator run one after another; a failed connection
 * or a timeout drops the connection so the next command starts afresh.
 */
export class ModbusActuator implements Actuator {
  readonly name: string;
  readonly device: { deviceId: string; secret: string };
  private readonly link: ModbusLink;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly cfg: Config) {
    this.name = `modbus:${cfg.deviceId}`;
    this.link = new ModbusLink(cfg);
    this.device = { deviceId: cfg.deviceId, secret: cfg.secret };
  }

  execute(command: CommandMessage): Promise<ActuatorResult> {
    const run = this.queue.then(() => this.run(command));
    this.queue = run.catch(() => {});
    return run;
  }

  private async run(command: CommandMessage): Promise<ActuatorResult> {
    const writes = this.cfg.actions[command.action];
    if (!writes) {
      return { ok: false, message: `unknown action "${command.action}" for ${this.cfg.deviceId} (known: ${Object.keys(this.cfg.actions).join(', ')})` };
    }
    const planned: { w: ActuatorWrite; value: boolean | number; what: string }[] = [];
    for (const w of writes) {
      if (w.write === 'coil') { planned.push({ w, value: w.value, what: `write coil ${w.address} = ${w.value ? 'on' : 'off'}` }); continue; }
      let v = w.value;
      if (w.param !== undefined) {
        const p = command.params?.[w.param];
        if (typeof p !== 'number' || !Number.isFinite(p)) return { ok: false, message: `action "${command.action}" needs a numeric parameter "${w.param}"` };
        v = Math.round(p * w.scale);
      }
      if (v === undefined || v < 0 || v > 65_535) return { ok: false, message: `register value ${String(v)} out of 0–65535 for "${command.action}"` };
      planned.push({ w, value: v, what: `write register ${w.address} = ${v}` });
    }
    let what = `connect ${this.cfg.host}:${this.cfg.port}`;
    try {
      const c = await this.link.connect();
      for (const p of planned) {
        what = p.what;
        if (p.w.write === 'coil') await c.writeCoil(p.w.address, p.value as boolean);
        else await c.writeRegister(p.w.address, p.value as number);
      }
    } catch (e) {
      const err = e as { modbusCode?: number };
      if (err.modbusCode === undefined) this.link.drop(); // a late answer must not be taken for the next request's
      return { ok: false, message: reason(e as object, what, this.cfg) };
    }
    return { ok: true, message: planned.map((p) => p.what).join('; ') };
  }

  async stop(): Promise<void> {
    await this.queue;
    this.link.drop();
  }
}
