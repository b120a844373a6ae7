import { z } from 'zod';
import { Id, LocalDate, RegionCode, Timestamp } from './common.ts';
import { LinkageRule } from './command.ts';

/** Contract §2: request and response bodies of the HTTP API. */

export const KeyRole = z.enum([
  'project_manager', 'technical_lead', 'safety_officer', 'quality_officer', 'chief_supervisor', 'supervisor',
]);
export type KeyRole = z.infer<typeof KeyRole>;

/** Per-device ingest rate (issue 15): above it a device's connection is read more slowly, never refused. */
const IngestRate = z.strictObject({
  readingsPerS: z.number().positive().optional(),
  burst: z.number().positive().optional(),
});

/** One metric's (or rule's) limits in site or device settings; the hazard rules take exactly this (checks/hazard/settings.ts). */
export const Threshold = z
  .strictObject({
    warning: z.number().nonnegative().optional(),
    critical: z.number().nonnegative().optional(),
    /** Clear level = clearRatio × warning limit (domain.md: 0.9). */
    clearRatio: z.number().gt(0).max(1).optional(),
  })
  .refine((t) => t.warning === undefined || t.critical === undefined || t.warning <= t.critical, {
    message: 'warning must not be above critical',
  });
export type Threshold = z.infer<typeof Threshold>;

/** Site settings: every key optional; unknown keys are rejected with a 400 naming them (domain.md). */
export const SiteSettings = z.strictObject({
  cutoffHour: z.number().int().min(0).max(23).optional(),
  keyStaffMinRate: z.number().min(0).max(1).optional(),
  extraWorkdays: z.array(LocalDate).optional(),
  faceThreshold: z.number().min(-1).max(1).optional(),
  minFacePx: z.number().int().min(1).optional(),
  minDailyWage: z.number().min(0).optional(),
  wageDueMonths: z.number().int().min(0).max(12).optional(),
  thresholds: z.record(z.string(), Threshold).optional(),
  devices: z.record(Id, z.strictObject({
    thresholds: z.record(z.string(), Threshold).optional(),
    intervalS: z.number().positive().optional(),
    ingestRate: IngestRate.optional(),
  })).optional(),
  ingestRate: IngestRate.optional(),
  offlineAfterS: z.strictObject({
    sensor: z.number().positive().optional(),
    camera: z.number().positive().optional(),
    face_terminal: z.number().positive().optional(),
  }).optional(),
  escalationS: z.strictObject({
    critical: z.array(z.number().positive()).max(2).optional(),
    warning: z.array(z.number().positive()).max(2).optional(),
  }).optional(),
  lateness: z.number().int().min(0).optional(),
  rectifyS: z.strictObject({
    critical: z.number().positive().optional(),
    warning: z.number().positive().optional(),
  }).optional().describe('rectification deadline after recordedAt, seconds (contract §6; default critical 86400, warning 604800)'),
  linkage: z.array(LinkageRule).max(100).optional().describe('commands sent when matching alerts open and clear (contract §7)'),
});
export type SiteSettings = z.infer<typeof SiteSettings>;

export const SiteBody = z.strictObject({
  name: z.string().min(1).max(200),
  regionCode: RegionCode,
  timezone: z.string().refine(isIanaZone, 'an IANA time zone, e.g. Asia/Shanghai').optional(),
  location: z.strictObject({ lat: z.number().min(-90).max(90), lon: z.number().min(-180).max(180) }).optional(),
  workdays: z.array(z.number().int().min(1).max(7)).optional(),
  holidays: z.array(LocalDate).optional(),
  settings: SiteSettings.optional(),
});
export type SiteBody = z.infer<typeof SiteBody>;

export const Site = SiteBody.extend({ siteId: Id, timezone: z.string(), workdays: z.array(z.number()), holidays: z.array(z.string()) });

export const WorkerBody = z.strictObject({
  name: z.string().min(1).max(200),
  employer: z.string().max(200).optional(),
  trade: z.string().max(100).optional(),
  keyRole: KeyRole.optional(),
  wageCard: z.string().regex(/^\d{12,19}$/, 'a bank-card number: 12–19 digits').optional()
    .describe('full card number: kept only as a keyed hash and its last 4 digits'),
});
export type WorkerBody = z.infer<typeof WorkerBody>;

export const Worker = z.object({
  siteId: Id,
  workerId: Id,
  name: z.string(),
  employer: z.string().optional(),
  trade: z.string().optional(),
  keyRole: KeyRole.optional(),
  wageCardLast4: z.string().optional(),
  sharedCardWith: z.array(Id).optional(),
});

export const DeviceKind = z.enum(['face_terminal', 'camera', 'sensor']);
export type DeviceKind = z.infer<typeof DeviceKind>;
export const DeviceBody = z.strictObject({
  kind: DeviceKind,
  intervalS: z.number().positive().max(86_400).optional(),
});
export const DeviceCreated = z.object({
  deviceId: Id,
  siteId: Id,
  kind: DeviceKind,
  intervalS: z.number().optional(),
  secret: z.string().optional().describe('the MQTT password: returned once, on creation or rotation'),
});

export const Role = z.enum(['admin', 'regulator', 'construction_unit', 'auditor', 'payroll', 'terminal']);
export type Role = z.infer<typeof Role>;

export const TokenScope = z.union([
  z.strictObject({ regions: z.array(RegionCode).min(1) }),
  z.strictObject({ sites: z.array(Id).min(1) }),
  z.strictObject({ siteId: Id, deviceId: Id }),
]);
export type TokenScope = z.infer<typeof TokenScope>;

export const TokenBody = z.strictObject({
  role: Role,
  scope: TokenScope.optional(),
  expiresAt: Timestamp.optional(),
  label: z.string().max(200).optional(),
});
export const TokenCreated = z.object({ id: z.string(), token: z.string(), role: Role, scope: TokenScope.optional(), expiresAt: z.string().optional() });

export const IngestOutcome = z.object({
  accepted: z.number().int(),
  duplicate: z.number().int(),
  rejected: z.number().int(),
  results: z.array(z.object({
    ref: z.string(),
    outcome: z.enum(['accepted', 'duplicate', 'rejected']),
    reason: z.string().optional(),
    message: z.string().optional(),
    row: z.number().int().optional(),
  })),
});

export const SiteStatus = z.object({
  siteId: Id,
  now: z.string(),
  watermark: z.string().optional(),
  devices: z.array(z.object({
    deviceId: Id,
    kind: DeviceKind,
    online: z.boolean(),
    connected: z.boolean(),
    lastSeen: z.string().optional(),
    status: z.object({ state: z.string(), ts: z.string(), firmware: z.string().optional(), batteryPct: z.number().optional() }).optional(),
    latest: z.record(z.string(), z.object({ value: z.number(), ts: z.string() })),
  })),
  onSiteNow: z.array(z.object({ workerId: Id, since: z.string() })).optional(),
  keyStaffPresentToday: z.array(z.object({ workerId: Id, keyRole: KeyRole, firstCheckin: z.string() })).optional(),
  openAlerts: z.number().int().optional(),
});

export const DeadLetter = z.object({
  id: z.number().int(),
  sink: z.string(),
  seq: z.number().int(),
  line: z.string(),
  error: z.string(),
  at: z.string(),
});

/** Contract §2 `GET /sites/{siteId}/attendance?month=`; domain.md "Calendar" for days, hours and rate. */
export const Attendance = z.object({
  siteId: Id,
  month: z.string(),
  timezone: z.string(),
  workingDays: z.number().int().describe('working days of the month in site time: the key-staff rate\'s denominator'),
  workers: z.array(z.object({
    workerId: Id,
    keyRole: KeyRole.optional(),
    days: z.array(LocalDate).describe('present days in site time (a face_mismatch check-in does not count)'),
    daysPresent: z.number().int(),
    hours: z.number().describe('sum of in→out intervals within each day'),
    rate: z.number().optional().describe('key staff: present working days ÷ workingDays'),
    presentWorkingDays: z.number().int().optional(),
  })),
});

/** Contract §2 `PUT /sites/{siteId}/workers/{workerId}/face` answer: the template, never the embedding. */
export const FaceEnrolment = z.object({
  siteId: Id,
  workerId: Id,
  photoSha256: z.string().describe('SHA-256 of the enrolment photo, kept as an evidence file'),
  modelId: z.string().describe('embedding space; templates of another model are not comparable'),
  faceSizePx: z.number().describe('larger side of the detected face box, photo pixels'),
  enrolledAt: z.string(),
});

export function isIanaZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** Contract §6 `GET /sites/{siteId}/devices/{deviceId}/snapshots`: a camera's snapshots, oldest first. */
export const SnapshotsQuery = z.object({
  since: z.string().max(40).optional().describe('arrival time from (inclusive): RFC 3339 with an offset, or epoch milliseconds'),
  limit: z.coerce.number().int().min(1).default(100).transform((n) => Math.min(n, 1000)).describe('default 100, clamped to 1000'),
  cursor: z.string().max(100).optional().describe('`next` of the previous page'),
});

export const SnapshotList = z.object({
  items: z.array(z.object({
    ts: z.string().describe('arrival time (a snapshot carries no time of its own, contract §1)'),
    sha256: z.string().describe('the image: GET /sites/{siteId}/photos/{sha256}'),
    bytes: z.number().int().optional(),
  })),
  next: z.string().optional(),
});
