/**
 * The agent's error catalogue: what a piece of site equipment did wrong (or what went wrong
 * talking to it), with the HTTP status a pushing device is answered with. Every one is counted
 * per source and shown by `sitegate-agent status`.
 */
export const AGENT_ERRORS = {
  unauthorized: { status: 401, message: 'missing or wrong terminal token' },
  invalid_json: { status: 400, message: 'body is not valid JSON' },
  schema_invalid: { status: 422, message: 'event does not match the documented shape' },
  photo_not_an_image: { status: 200, message: 'photo is not a readable image: the check-in is queued without it' },
  queue_full: { status: 507, message: 'the agent queue is full: telemetry and snapshots are refused until it drains' },
  queue_write_failed: { status: 503, message: 'the agent could not store the event: retry' },
  camera_http: { status: 502, message: 'the camera did not answer with a snapshot' },
  camera_not_an_image: { status: 502, message: 'the camera answered with something that is not an image' },
  modbus_connect: { status: 502, message: 'cannot connect to the Modbus TCP device' },
  modbus_timeout: { status: 504, message: 'the Modbus device did not answer in time' },
  source_failed: { status: 500, message: 'the source failed unexpectedly' },
  modbus_exception: { status: 502, message: 'the Modbus device answered a read with an exception' },
  command_invalid: { status: 400, message: 'a command from the gateway does not match the contract (§7)' },
  command_failed: { status: 502, message: 'a command could not be executed on the equipment (answered ok: false)' },
} as const;

export type AgentErrorCode = keyof typeof AGENT_ERRORS;

export class AgentError extends Error {
  /** `counted`: already counted where it happened (a queue refusal is counted by the runtime). */
  constructor(readonly code: AgentErrorCode, message?: string, readonly details?: unknown, readonly counted = false) {
    super(message ?? AGENT_ERRORS[code].message);
  }
  get status(): number { return AGENT_ERRORS[this.code].status; }
  body() { return { error: this.code, message: this.message, ...(this.details !== undefined ? { details: this.details } : {}) }; }
}
