import { checkinFacts, presence } from '../../attendance/attendance.ts';
import { SiteCalendar } from '../../calendar/siteCalendar.ts';
import type { LedgerReads } from '../../ledger/ledgerQueries.ts';
import type { StoredRecord } from '../../ledger/types.ts';
import type { Registry, Site } from '../../registry/registry.ts';
import { periodRange, wageDueAt, wageSettings, type WageSettings } from './settings.ts';

export type PaymentStatus = 'paid' | 'failed' | 'returned';

/** One stored wage payment (the ledger's `wage_payment` record: never the card number, only its keyed hash and last 4). */
export interface Payment {
  id: string;
  workerId: string;
  period: string;
  amount: number;
  status: PaymentStatus;
  cardHash: string;
  cardLast4: string;
  paidAt: number;
}

/** A worker the wage rules apply to, or who holds a card they look at. */
export interface CardHolder {
  siteId: string;
  workerId: string;
  cardHash?: string;
  cardLast4?: string;
}

/**
 * Everything the wage rules of one site and period look at, gathered once. Rules are pure
 * functions of these facts (and the decision time), so a test can hand them facts directly.
 */
export interface WageFacts {
  siteId: string;
  period: string;
  settings: WageSettings;
  /** [start, end) of the period in site time. */
  periodStart: number;
  periodEnd: number;
  /** Payments count when paid before this instant (domain.md: end of month M + wageDueMonths). */
  dueAt: number;
  /** Registered workers of the site without a keyRole (domain.md "Wages": the rules apply to them only). */
  workers: Map<string, CardHolder>;
  /** Present local days in the period, per worker (attendance.ts: a face_mismatch check-in is no presence). */
  daysPresent: Map<string, string[]>;
  /** The period's payments of those workers at this site, by paidAt. */
  payments: Payment[];
  /** Every worker without a keyRole, at any site, registered with a card a payment or worker here uses. */
  cardHolders: Map<string, CardHolder[]>;
}

export const isPaid = (p: Payment) => p.status === 'paid';

export function toPayment(r: StoredRecord): Payment {
  const b = r.body as Record<string, unknown>;
  return {
    id: r.msgId, workerId: b.workerId as string, period: b.period as string, amount: b.amount as number,
    status: b.status as PaymentStatus, cardHash: b.cardHash as string, cardLast4: b.cardLast4 as string, paidAt: r.ts,
  };
}

/** Gathers the facts of (site, period) from the registry and the ledger, as known now. */
export async function wageFacts(registry: Pick<Registry, 'listWorkers' | 'listSites'>, ledger: LedgerReads, site: Site, period: string): Promise<WageFacts> {
  const cal = SiteCalendar.of(site.timezone);
  const settings = wageSettings(site);
  const [periodStart, periodEnd] = periodRange(cal, period);
  const holder = (w: { siteId: string; workerId: string; cardHash?: string; cardLast4?: string }): CardHolder => ({
    siteId: w.siteId, workerId: w.workerId, ...(w.cardHash ? { cardHash: w.cardHash, cardLast4: w.cardLast4! } : {}),
  });
  const workers = new Map(registry.listWorkers(site.siteId).filter((w) => !w.keyRole).map((w) => [w.workerId, holder(w)]));
  const present = presence(await checkinFacts(ledger, site.siteId, periodStart, periodEnd), cal);
  const daysPresent = new Map([...workers.keys()].map((id) => [id, present.get(id)?.days ?? []]));
  const payments = (await ledger.paymentsOf(site.siteId, period)).map(toPayment).filter((p) => workers.has(p.workerId));
  // One pass over every registered worker of the installation (a card may be shared across sites).
  const cards = new Set([...payments.map((p) => p.cardHash), ...[...workers.values()].flatMap((w) => (w.cardHash ? [w.cardHash] : []))]);
  const cardHolders = new Map<string, CardHolder[]>([...cards].map((h) => [h, []]));
  for (const s of registry.listSites()) {
    for (const w of registry.listWorkers(s.siteId)) if (w.cardHash && !w.keyRole && cards.has(w.cardHash)) cardHolders.get(w.cardHash)!.push(holder(w));
  }
  return { siteId: site.siteId, period, settings, periodStart, periodEnd, dueAt: wageDueAt(cal, period, settings.wageDueMonths), workers, daysPresent, payments, cardHolders };
}
