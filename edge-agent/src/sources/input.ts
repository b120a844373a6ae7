import type { FastifyInstance } from 'fastify';
import type { NewEvent, PutResult } from '../buffer/outbox.ts';
import type { AgentErrorCode } from '../errors.ts';

/**
 * What a source is given (Telegraf's accumulator): a way into the durable queue, a way to report
 * equipment errors, the clock, and the agent's local HTTP server for equipment that pushes.
 * Counting and logging belong to the runtime, not to each source.
 */
export interface InputContext {
  /** Stores events durably (returns once they are on disk) or refuses them (queue full, counted). */
  enqueue(events: NewEvent[]): PutResult;
  /** Counts an equipment error against this source; the agent keeps running. */
  error(code: AgentErrorCode, message: string): void;
  /** Counts something that is not an error (`unchanged` frames). */
  count(what: string, n?: number): void;
  /** Event-time clock: the system clock, or the simulator's. */
  now(): number;
  /** The agent's local HTTP server, encapsulated per source (register routes here). */
  http: FastifyInstance;
}

/** One source of events (a face terminal, a camera, a Modbus device, …): Telegraf's `Input`. */
export interface Input {
  /** Unique among the agent's sources: `<type>:<deviceId>`. */
  readonly name: string;
  /** Devices whose MQTT identity this source publishes under, with their secrets. */
  readonly devices: { deviceId: string; secret: string }[];
  start(ctx: InputContext): Promise<void>;
  stop(): Promise<void>;
  /** Polled sources: one poll (the runtime schedules it; tests call it directly). */
  gather?(): Promise<void>;
  /** Seconds between polls for polled sources. */
  readonly intervalS?: number;
}
