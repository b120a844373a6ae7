import { z } from 'zod';
import { Id, Timestamp } from './common.ts';
import { CheckinMethod, Direction, METRICS, MessageId } from './messages.ts';
import { CommandAction } from './command.ts';

/**
 * The edge agent a site installs (issue 13): its configuration file and the JSON shapes its local
 * HTTP endpoints accept from site equipment. Unknown keys are an error, not a silence.
 */

const Device = { deviceId: Id, secret: z.string().min(1).describe('the MQTT password the gateway issued for this device') };
const PushToken = z.string().min(16, 'at least 16 characters').describe('Bearer token this equipment sends to the agent');
/** A field of a vendor's JSON, as a dot path (`AccessControllerEvent.employeeNoString`). */
const FieldPath = z.string().min(1).max(200);

/** Contract §1 metric vocabulary only: a register map feeds hazard rules, so a typo must not pass. */
export const ContractMetric = z.enum(METRICS);

export const RegisterSpec = z.strictObject({
  metric: ContractMetric,
  register: z.number().int().min(0).max(65_535).describe('0-based register address'),
  table: z.enum(['holding', 'input']).default('holding').describe('function code 03 (holding) or 04 (input)'),
  type: z.enum(['uint16', 'int16', 'uint32', 'int32', 'float32']).default('uint16'),
  wordOrder: z.enum(['big', 'little']).default('big').describe('32-bit types: which register holds the high word'),
  scale: z.number().default(1),
  offset: z.number().default(0).describe('value = raw × scale + offset'),
});
export type RegisterSpec = z.infer<typeof RegisterSpec>;

/** Where a vendor puts the check-in fields (dot paths), and how it spells direction and method. */
export const TerminalMapping = z.strictObject({
  id: FieldPath, workerId: FieldPath, ts: FieldPath, direction: FieldPath,
  method: FieldPath.optional(), photo: FieldPath.optional(), score: FieldPath.optional(),
  directionValues: z.record(z.string(), Direction).default({}),
  methodValues: z.record(z.string(), CheckinMethod).default({}),
  defaultMethod: CheckinMethod.default('face'),
  scoreScale: z.number().positive().default(1).describe('divide the vendor score by this to get 0–1 (100 for percent)'),
});
export type TerminalMapping = z.infer<typeof TerminalMapping>;

export const PhotoEncoding = z.strictObject({
  maxSide: z.number().int().min(64).max(4096).default(1024).describe('longest side in pixels after re-encoding'),
  quality: z.number().int().min(30).max(100).default(80).describe('JPEG quality'),
});

export const FaceTerminalSource = z.strictObject({
  type: z.literal('face_terminal'), ...Device, token: PushToken,
  vendor: z.enum(['sitegate', 'hikvision-acs']).default('sitegate').describe('a preset mapping; `mapping` overrides it'),
  mapping: TerminalMapping.optional(),
  photo: PhotoEncoding.prefault({}),
});

export const StationSource = z.strictObject({
  type: z.literal('station'), ...Device, token: PushToken,
  fields: z.record(z.string(), ContractMetric).default({}).describe('vendor field → metric; empty: the contract reading shape'),
  idField: FieldPath.default('id'), tsField: FieldPath.default('ts'),
});

export const CameraSource = z.strictObject({
  type: z.literal('camera'), ...Device,
  url: z.url().describe('HTTP snapshot URL (JPEG)'),
  username: z.string().optional(), password: z.string().optional(),
  intervalS: z.number().min(1).max(86_400).default(60),
  timeoutMs: z.number().int().min(100).max(60_000).default(5000),
  photo: PhotoEncoding.prefault({ maxSide: 1280, quality: 75 }),
  unchangedDiff: z.number().min(0).max(255).default(1).describe('mean absolute difference (0–255) of a 16×16 grey thumbnail at or below which a frame counts as unchanged'),
});

export const ModbusSource = z.strictObject({
  type: z.literal('modbus'), ...Device,
  host: z.string().min(1), port: z.number().int().min(1).max(65_535).default(502),
  unitId: z.number().int().min(0).max(255).default(1),
  model: z.string().min(1).describe('a key of `models`'),
  intervalS: z.number().min(0.1).max(86_400).default(10),
  timeoutMs: z.number().int().min(50).max(30_000).default(1000),
});

export const SimulatorSource = z.strictObject({
  type: z.literal('simulator'),
  terminal: z.strictObject(Device), dust: z.strictObject(Device), noise: z.strictObject(Device),
  crane: z.strictObject(Device), pit: z.strictObject(Device),
  workers: z.number().int().min(1).max(5000).default(80),
  start: Timestamp.describe('simulated time at start-up'),
  speed: z.number().min(1).max(100_000).default(60).describe('simulated seconds per real second'),
  stepS: z.number().min(1).max(3600).default(60).describe('simulated seconds between sensor readings'),
});

export const SourceConfig = z.discriminatedUnion('type', [FaceTerminalSource, StationSource, CameraSource, ModbusSource, SimulatorSource]);
export type SourceConfig = z.infer<typeof SourceConfig>;

const Address = z.number().int().min(0).max(65_535).describe('0-based coil or register address');

/** What one command action does on the equipment: a coil (function 05) or a holding register (06) write. */
export const ActuatorWrite = z.discriminatedUnion('write', [
  z.strictObject({ write: z.literal('coil'), address: Address, value: z.boolean() }),
  z.strictObject({
    write: z.literal('register'), address: Address,
    value: z.number().int().min(0).max(65_535).optional().describe('a fixed value'),
    param: z.string().min(1).max(64).optional().describe('or the command parameter of this name, × scale'),
    scale: z.number().default(1),
  }).refine((w) => (w.value === undefined) !== (w.param === undefined), 'exactly one of value or param'),
]);
export type ActuatorWrite = z.infer<typeof ActuatorWrite>;

/**
 * Equipment the gateway sends commands to (contract §7): a fog cannon's or sprinkler's
 * controller on Modbus TCP; `actions` maps each command action to the write that performs it.
 */
export const ModbusActuator = z.strictObject({
  type: z.literal('modbus'), ...Device,
  host: z.string().min(1), port: z.number().int().min(1).max(65_535).default(502),
  unitId: z.number().int().min(0).max(255).default(1),
  timeoutMs: z.number().int().min(50).max(30_000).default(1000),
  actions: z.record(CommandAction, z.array(ActuatorWrite).min(1).max(16))
    .refine((a) => Object.keys(a).length > 0, 'at least one action').describe('command action → the writes that perform it, in order'),
});
export type ModbusActuator = z.infer<typeof ModbusActuator>;

export const AgentConfig = z.strictObject({
  version: z.literal(1).default(1),
  gateway: z.strictObject({
    url: z.string().regex(/^(mqtts?|wss?):\/\//, 'mqtt://, mqtts://, ws:// or wss://'),
    siteId: Id,
    window: z.number().int().min(1).max(1000).default(100).describe('QoS 1 messages in flight per device'),
    heartbeatS: z.number().min(5).max(900).default(300),
    reconnectMs: z.number().int().min(50).max(600_000).default(2000),
  }),
  queue: z.strictObject({
    file: z.string().min(1).default('./agent-outbox.db'),
    maxBytes: z.number().int().min(64 * 1024).default(1024 ** 3).describe('telemetry and snapshots are refused beyond this; check-ins never'),
  }).prefault({}),
  http: z.strictObject({
    host: z.string().min(1).default('0.0.0.0'),
    port: z.number().int().min(0).max(65_535).default(8090),
  }).prefault({}),
  models: z.record(z.string(), z.array(RegisterSpec).min(1)).default({}),
  sources: z.array(SourceConfig).default([]),
  actuators: z.array(ModbusActuator).default([]).describe('equipment that executes the gateway\'s commands (contract §7)'),
}).superRefine((c, ctx) => {
  const seen = new Set<string>();
  c.actuators.forEach((a, i) => {
    if (seen.has(a.deviceId)) ctx.addIssue({ code: 'custom', path: ['actuators', i, 'deviceId'], message: `two actuators for ${a.deviceId}` });
    seen.add(a.deviceId);
  });
  c.sources.forEach((s, i) => {
    if (s.type === 'modbus' && !c.models[s.model]) ctx.addIssue({ code: 'custom', path: ['sources', i, 'model'], message: `no model "${s.model}" under models` });
  });
});
export type AgentConfig = z.infer<typeof AgentConfig>;

/** `POST /terminals/{deviceId}/events` in the agent's own shape (vendor `sitegate`). */
export const TerminalEvent = z.strictObject({
  id: MessageId.describe("the terminal's own record id: stable across its retries"),
  workerId: Id, ts: Timestamp, direction: Direction,
  method: CheckinMethod.default('face'),
  score: z.number().min(0).max(1).optional(),
  photo: z.string().max(8_000_000).optional().describe('base64 image (JPEG or PNG); re-encoded by the agent'),
});
export type TerminalEvent = z.infer<typeof TerminalEvent>;
