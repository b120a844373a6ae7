import { z } from 'zod';
import { Id, Timestamp } from './common.ts';

/** Contract §1: the payloads devices publish. */

export const Direction = z.enum(['in', 'out']);
export const CheckinMethod = z.enum(['face', 'card', 'fingerprint', 'manual']);

export const MessageId = z.string().min(1).max(128);

export const Checkin = z.strictObject({
  id: MessageId,
  workerId: Id,
  ts: Timestamp,
  direction: Direction,
  method: CheckinMethod,
  terminalScore: z.number().min(0).max(1).optional(),
  photo: z.string().max(2_900_000).optional().describe('base64 JPEG'),
});
export type Checkin = z.infer<typeof Checkin>;

export const METRICS = [
  'pm2_5', 'pm10', 'tsp', 'noise_dba', 'wind_speed_ms', 'temperature_c', 'humidity_pct',
  'crane_load_pct', 'crane_moment_pct', 'crane_tilt_deg', 'hoist_load_pct', 'pit_displacement_mm',
  'pit_settlement_mm', 'formwork_settlement_mm', 'gas_lel_pct', 'water_level_m',
] as const;

/** Metric names: unknown names are stored but have no default rule (contract §1). */
export const MetricName = z.string().regex(/^[A-Za-z][A-Za-z0-9_]{0,63}$/, 'metric name: a letter then letters, digits, _');

export const Reading = z.strictObject({
  id: MessageId,
  ts: Timestamp,
  metrics: z.record(MetricName, z.number().refine(Number.isFinite, 'finite number'))
    .refine((m) => Object.keys(m).length > 0, 'at least one metric'),
});
export type Reading = z.infer<typeof Reading>;

export const MAX_BATCH = 1000;
export const ReadingBatch = z.strictObject({
  batch: z.array(z.unknown()).min(1).max(MAX_BATCH),
});

export const DeviceStatus = z.strictObject({
  state: z.enum(['online', 'offline']),
  ts: Timestamp,
  firmware: z.string().max(64).optional(),
  batteryPct: z.number().min(0).max(100).optional(),
});
export type DeviceStatus = z.infer<typeof DeviceStatus>;

export const DeviceError = z.object({
  ref: z.string().describe('the rejected message id, or its topic when it has none'),
  reason: z.string().describe('a code of the error catalogue'),
  message: z.string().optional(),
});

export const WagePaymentStatus = z.enum(['paid', 'failed', 'returned']);
export const WagePayment = z.strictObject({
  id: MessageId,
  workerId: Id,
  period: z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/, 'YYYY-MM'),
  amount: z.number().min(0, 'must not be negative').refine(Number.isFinite, 'finite number'),
  paidAt: Timestamp,
  card: z.string().regex(/^\d{12,19}$/, 'a bank-card number: 12–19 digits').describe('full card number, hashed on receipt'),
  status: WagePaymentStatus,
});
export type WagePayment = z.infer<typeof WagePayment>;
