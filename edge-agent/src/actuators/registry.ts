import type { AgentConfig } from '../../../schemas/src/agent.ts';
import type { Actuator } from './actuator.ts';
import { ModbusActuator } from './modbus/modbusActuator.ts';

/** One line per actuator type: a new kind of equipment is its folder and a line here. */
export function createActuators(config: AgentConfig): Actuator[] {
  return config.actuators.map((a): Actuator => {
    switch (a.type) {
      case 'modbus': return new ModbusActuator(a);
    }
  });
}
