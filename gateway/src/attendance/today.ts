import { checkinFacts, countsAsPresence } from './attendance.ts';
import type { KeyRole } from '../../../schemas/src/api.ts';
import { SiteCalendar } from '../calendar/siteCalendar.ts';
import type { LedgerReads } from '../ledger/ledgerQueries.ts';
import type { Registry, Site } from '../registry/registry.ts';

export interface SiteToday {
  /** Local date in site time. */
  day: string;
  /** Registered workers whose latest accepted check-in of the day is an `in`, since that stay began. */
  onSiteNow: { workerId: string; since: number }[];
  /** Key staff with an accepted check-in today (domain.md "Key staff"), with the first of them. */
  keyStaffPresentToday: { workerId: string; keyRole: KeyRole; firstCheckin: number }[];
}

/**
 * Who is on site now and which key staff came today, as of `at` (the site's event-time now:
 * the wall clock while the site is live, its latest event otherwise). Check-ins rejected by face
 * verification do not count (domain.md "Calendar").
 */
export async function siteToday(registry: Registry, ledger: LedgerReads, site: Site, at: number): Promise<SiteToday> {
  const cal = SiteCalendar.of(site.timezone);
  const day = cal.localDay(at);
  const facts = (await checkinFacts(ledger, site.siteId, cal.startOfDay(day), at + 1)).filter(countsAsPresence);
  const byWorker = new Map<string, typeof facts>();
  for (const f of facts) {
    let list = byWorker.get(f.workerId);
    if (!list) byWorker.set(f.workerId, (list = []));
    list.push(f);
  }
  const onSiteNow: SiteToday['onSiteNow'] = [];
  const keyStaffPresentToday: SiteToday['keyStaffPresentToday'] = [];
  for (const [workerId, list] of [...byWorker].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const worker = registry.worker(site.siteId, workerId);
    if (!worker) continue;
    list.sort((a, b) => a.ts - b.ts || a.seq - b.seq);
    let since: number | null = null;
    for (const c of list) since = c.direction === 'in' ? (since ?? c.ts) : null;
    if (since !== null) onSiteNow.push({ workerId, since });
    if (worker.keyRole) keyStaffPresentToday.push({ workerId, keyRole: worker.keyRole, firstCheckin: list[0]!.ts });
  }
  return { day, onSiteNow, keyStaffPresentToday };
}
