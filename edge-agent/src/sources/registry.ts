import type { AgentConfig } from '../../../schemas/src/agent.ts';
import { CameraInput } from './camera/camera.ts';
import { FaceTerminalInput } from './face-terminal/faceTerminal.ts';
import type { Input } from './input.ts';
import { ModbusInput } from './modbus/modbus.ts';
import { SimulatorInput } from './simulator/simulator.ts';
import { StationInput } from './station/station.ts';

/** One line per source type: a new source is its folder and a line here. */
export function createInputs(config: AgentConfig): Input[] {
  return config.sources.map((s): Input => {
    switch (s.type) {
      case 'face_terminal': return new FaceTerminalInput(s);
      case 'station': return new StationInput(s);
      case 'camera': return new CameraInput(s);
      case 'modbus': return new ModbusInput(s, config.models[s.model]!);
      case 'simulator': return new SimulatorInput(s);
    }
  });
}
