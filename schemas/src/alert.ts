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
export const AlertState = z.enum(['open', 'acked', 'resolved', 'cleared']);

export const AlertHistoryEntry = z.object({
  at: z.string(),
  event: z.enum(['opened', 'escalated', 'acked', 'resolved', 'cleared', 'severity', 'withdrawn']),
  by: z.string().optional(),
  note: z.string().optional(),
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
});
export type Alert = z.infer<typeof Alert>;

export const AlertNote = z.strictObject({ note: z.string().max(2000).optional() });
