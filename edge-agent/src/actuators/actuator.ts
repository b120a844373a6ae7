import type { CommandMessage } from '../../../schemas/src/command.ts';

/** What became of a command on the equipment: the `ok` and `message` of its result (contract §7). */
export interface ActuatorResult {
  ok: boolean;
  message: string;
}

/**
 * Equipment that executes the gateway's commands (a fog cannon's controller): the counterpart of
 * a source's `Input`. `execute` never throws: every failure is an `ok: false` with the reason.
 */
export interface Actuator {
  /** `<type>:<deviceId>`, unique among the agent's actuators. */
  readonly name: string;
  readonly device: { deviceId: string; secret: string };
  execute(command: CommandMessage): Promise<ActuatorResult>;
  stop(): Promise<void>;
}
