import type { StoredRecord } from '../../../ledger/types.ts';
import type { RaiseSignal } from '../../types.ts';
import { alertKeys } from '../settings.ts';

/**
 * `checkin.unknown_worker` (contract §5): a check-in for a worker not registered at that site.
 * Key site + worker: one open alert however many check-ins follow; it clears when the worker is
 * registered and checks in.
 */
export function unknownWorkerSignal(r: StoredRecord): RaiseSignal {
  const b = r.body as { workerId: string; direction: string; method: string };
  return {
    type: 'raise', kind: 'checkin.unknown_worker', siteId: r.siteId, subject: { workerId: b.workerId },
    key: alertKeys.unknownWorker(r.siteId, b.workerId), severity: 'warning', openedAt: r.ts,
    message: `check-in ${r.msgId} at ${r.siteId} for ${b.workerId}, who is not registered at this site`,
    evidence: { rule: 'checkin.unknown_worker', checkinId: r.msgId, deviceId: r.deviceId, ts: new Date(r.ts).toISOString(), direction: b.direction, method: b.method },
  };
}
