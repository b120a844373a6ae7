import type { KeyRole } from '../../../../../schemas/src/api.ts';
import type { RaiseSignal } from '../../types.ts';
import { alertKeys } from '../settings.ts';

export interface MultiSiteInput {
  workerId: string;
  /** Local date `YYYY-MM-DD` (each site's own zone). */
  day: string;
  /** Sites where the worker is registered, with the key role held there (if any). */
  sites: { siteId: string; keyRole?: KeyRole }[];
  /** siteId → event time of the worker's first accepted check-in there on `day`. */
  firstCheckin: Map<string, number>;
}

/**
 * `keystaff.multi_site` (domain.md "Key staff", 一人多岗 / 挂证): the same workerId has accepted
 * check-ins at two or more sites on the same local day and is key staff at one of them. One alert
 * per site involved (contract §5), opened when the second site's first check-in happened.
 * Returns one signal per site involved; empty when the condition does not hold.
 */
export function multiSiteSignals(i: MultiSiteInput): RaiseSignal[] {
  const involved = i.sites.filter((s) => i.firstCheckin.has(s.siteId));
  if (involved.length < 2 || !involved.some((s) => s.keyRole)) return [];
  const openedAt = [...involved.map((s) => i.firstCheckin.get(s.siteId)!)].sort((a, b) => a - b)[1]!;
  const evidenceSites = involved.map((s) => ({ siteId: s.siteId, ...(s.keyRole ? { keyRole: s.keyRole } : {}), firstCheckin: new Date(i.firstCheckin.get(s.siteId)!).toISOString() }));
  return involved.map((s) => ({
    type: 'raise', kind: 'keystaff.multi_site', siteId: s.siteId, subject: { workerId: i.workerId },
    key: alertKeys.multiSite(s.siteId, i.workerId, i.day), severity: 'warning', openedAt,
    message: `${i.workerId} checked in at ${involved.length} sites on ${i.day}: ${involved.map((x) => x.siteId).join(', ')}`,
    evidence: { rule: 'keystaff.multi_site', day: i.day, sites: evidenceSites, otherSites: involved.filter((x) => x.siteId !== s.siteId).map((x) => x.siteId) },
  }));
}
