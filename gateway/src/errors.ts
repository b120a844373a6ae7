/**
 * The error catalogue: every reason a message or request can be refused, defined once. Ingest
 * rejections carry `reason` (sent to the device's `…/errors` topic and counted per reason); HTTP
 * errors answer `{error: code, message, details?}` with the status given here (contract §2).
 */
export const REASONS = {
  // Content of a device message (contract §1) — the message is acknowledged, not stored.
  invalid_json: { status: 400, message: 'payload is not valid UTF-8 JSON' },
  schema_invalid: { status: 400, message: 'payload does not match the schema' },
  ts_no_offset: { status: 400, message: 'timestamp has no UTC offset; use RFC 3339 with an offset or epoch milliseconds' },
  ts_invalid: { status: 400, message: 'timestamp is not a valid RFC 3339 date-time or epoch milliseconds' },
  ts_in_future: { status: 400, message: 'timestamp is more than 5 minutes ahead of the gateway clock' },
  metric_not_numeric: { status: 400, message: 'a metric value is not a finite number' },
  payload_too_large: { status: 413, message: 'payload exceeds the size limit of its topic' },
  batch_too_large: { status: 400, message: 'a batch holds more than 1000 readings' },
  batch_empty: { status: 400, message: 'a batch holds no readings' },
  unknown_channel: { status: 400, message: 'unknown topic under the device (expected checkin, telemetry, status, snapshot or command-results)' },
  not_a_jpeg: { status: 400, message: 'snapshot or photo is not a JPEG image' },
  // Command results (contract §7) — acknowledged, not stored.
  unknown_command: { status: 400, message: 'no such command for this device' },
  // Wage payment rows (contract §2).
  unknown_worker: { status: 400, message: 'worker is not registered at this site' },
  bad_period: { status: 400, message: 'period is not a month YYYY-MM' },
  negative_amount: { status: 400, message: 'amount is negative' },
  bad_card: { status: 400, message: 'card is not a plausible bank-card number' },
  csv_invalid: { status: 400, message: 'the CSV could not be parsed' },
  // Face enrolment photos (contract §2 `PUT …/workers/{workerId}/face`; domain.md "Face verification").
  image_undecodable: { status: 400, message: 'the photo is not a decodable JPEG image' },
  no_face: { status: 422, message: 'no face found in the photo' },
  multiple_faces: { status: 422, message: 'more than one face in the photo; enrolment needs exactly one' },
  face_too_small: { status: 422, message: 'the face is too small; enrolment needs a face of at least 60 px' },
  // Topic access (contract §1): the connection is closed (MQTT-3.3.5-2), or HTTP 403.
  wrong_site: { status: 403, message: 'device is registered under another site' },
  wrong_device: { status: 403, message: 'a device may publish only under its own topics' },
  topic_not_allowed: { status: 403, message: 'topic is outside this client\'s permissions' },
  // HTTP API.
  unauthorized: { status: 401, message: 'missing, unknown, expired or revoked token' },
  forbidden: { status: 403, message: 'this token\'s role or scope does not allow this' },
  not_found: { status: 404, message: 'no such resource' },
  conflict: { status: 409, message: 'conflicts with an existing resource' },
  bad_request: { status: 400, message: 'the request is not valid' },
  unsupported_media_type: { status: 415, message: 'unsupported content type' },
  body_too_large: { status: 413, message: 'request body too large' },
  unavailable: { status: 503, message: 'the gateway is shutting down or not ready' },
  internal: { status: 500, message: 'internal error' },
} as const satisfies Record<string, { status: number; message: string }>;

export type Reason = keyof typeof REASONS;

/** An error that maps to one catalogue entry. Thrown in handlers; the API's error handler renders it. */
export class SitegateError extends Error {
  readonly code: Reason;
  readonly status: number;
  readonly details?: unknown;

  constructor(code: Reason, message?: string, details?: unknown) {
    super(message ?? REASONS[code].message);
    this.code = code;
    this.status = REASONS[code].status;
    this.details = details;
  }
}

export function errorBody(code: Reason, message?: string, details?: unknown) {
  return { error: code, message: message ?? REASONS[code].message, ...(details === undefined ? {} : { details }) };
}
