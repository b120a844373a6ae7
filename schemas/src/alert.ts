import { z } from 'zod';
import { Id } from './common.ts';

/** Contract §5: an alert record as the API and the `sites/{siteId}/alerts` topic carry it. */
export const AlertKind = z.enum([
  'keystaff.absent', 'keystaff.attendance_low', 'keystaff.multi_site',
  'checkin.face_mismatch', 'checkin.no_face', 'checkin.unknown_worker',
  'wage.unpaid', 'wage.ghost', 'wage.card_mismatch', 'wage.shared_card', 'wage.underpaid',
  'hazard.threshold', 'hazard.rate', 'device.offline',
]);
export const Severity = z.enum(['info', 'warning', 'critical']);
/** Contract §6 closed loop: open → acked → rectified → resolved; cleared by the gateway (§5). */
export const AlertState = z.enum(['open', 'acked', 'rectified', 'resolved', 'cleared']);
/** States in which an alert is still being handled (one per key; timers run in open and acked). */
export const ACTIVE_STATES = ['open', 'acked', 'rectified'] as const;

/**
 * What can happen to an alert: one entry of its history (and, but for `severity` and `linkage`, a
 * webhook event, contract §6). `linkage`: a command its site's linkage sent (contract §7).
 */
export const AlertEventType = z.enum(['opened', 'escalated', 'acked', 'rectified', 'resolved', 'reopened', 'cleared', 'severity', 'withdrawn', 'reminder', 'linkage']);

export const AlertHistoryEntry = z.object({
  at: z.string(),
  event: AlertEventType,
  by: z.string().optional(),
  note: z.string().optional(),
  photos: z.array(z.string()).optional().describe('rectification photos (SHA-256; GET /sites/{siteId}/photos/{sha256})'),
});

export const Alert = z.object({
  id: z.string(),
  siteId: Id,
  kind: AlertKind,
  severity: Severity,
  level: z.number().int().min(1).max(3),
  state: AlertState,
  subject: z.object({ workerId: Id.optional(), deviceId: Id.optional(), metric: z.string().optional(), with: Id.optional() }),
  openedAt: z.string(),
  recordedAt: z.string(),
  message: z.string(),
  evidence: z.record(z.string(), z.unknown()),
  history: z.array(AlertHistoryEntry),
  withdrawn: z.boolean().optional().describe('late data showed the condition never held; listed only with includeWithdrawn=true'),
  dueAt: z.string().optional().describe('rectification deadline (warning and critical, contract §6); missing it moves the alert up a level'),
  overdue: z.boolean().optional().describe('not rectified by a rectification deadline, now or before'),
});
export type Alert = z.infer<typeof Alert>;

export const AlertNote = z.strictObject({ note: z.string().max(2000).optional() });
/** resolve and reopen (contract §6): a regulator says why. */
export const AlertNoteRequired = z.strictObject({ note: z.string().min(1).max(2000) });
export const Sha256 = z.string().regex(/^[0-9a-fA-F]{64}$/, '64 hex digits').transform((s) => s.toLowerCase());
/** rectify (contract §6): what the construction unit did, with photos uploaded first (POST /sites/{siteId}/photos). */
export const AlertRectify = z.strictObject({ note: z.string().min(1).max(2000), photos: z.array(Sha256).max(20).optional() });
