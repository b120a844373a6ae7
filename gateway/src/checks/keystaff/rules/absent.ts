import type { KeyRole } from '../../../../../schemas/src/api.ts';
import { countsAsPresence, type CheckinFact } from '../../../attendance/attendance.ts';
import type { RaiseSignal } from '../../types.ts';
import { alertKeys } from '../settings.ts';

export interface AbsentInput {
  siteId: string;
  workerId: string;
  keyRole: KeyRole;
  /** Local date `YYYY-MM-DD`, a working day of the site. */
  day: string;
  cutoffHour: number;
  /** Epoch ms of `cutoffHour`:00 local on `day`. */
  cutoff: number;
  /** The worker's check-ins at the site on `day`, stamped at or before the cut-off. */
  checkins: CheckinFact[];
}

/**
 * `keystaff.absent` (domain.md "Key staff"): no accepted check-in by the cut-off hour of a working
 * day. A check-in that failed face verification is a proxy check-in and does not count; a
 * check-in still waiting for its verdict counts until the verdict says otherwise (the check
 * re-decides when it arrives). Returns the alert the facts imply, or undefined when present.
 */
export function absentSignal(i: AbsentInput): RaiseSignal | undefined {
  const counted = i.checkins.filter((c) => c.ts <= i.cutoff && countsAsPresence(c));
  if (counted.length > 0) return undefined;
  const proxies = i.checkins.filter((c) => c.ts <= i.cutoff && !countsAsPresence(c));
  return {
    type: 'raise', kind: 'keystaff.absent', siteId: i.siteId, subject: { workerId: i.workerId },
    key: alertKeys.absent(i.siteId, i.workerId, i.day), severity: 'warning', openedAt: i.cutoff,
    message: `${i.keyRole} ${i.workerId} has no check-in by ${String(i.cutoffHour).padStart(2, '0')}:00 on ${i.day}`,
    evidence: {
      rule: 'keystaff.absent', day: i.day, keyRole: i.keyRole, cutoffHour: i.cutoffHour, cutoff: new Date(i.cutoff).toISOString(),
      ...(proxies.length ? { rejectedCheckins: proxies.map((c) => ({ id: c.id, ts: new Date(c.ts).toISOString(), verdict: c.verdict })) } : {}),
    },
  };
}
