import { isPaid, type CardHolder } from '../facts.ts';
import { days, paymentRef, type WageFinding, type WageRule } from '../rule.ts';

/**
 * wage.shared_card (domain.md "Wages": one card per worker [Nat]): one card hash received `paid`
 * payments for M for two or more workers of the site, or is registered to two or more workers
 * (at any site). The card's first holder — a worker it is registered to, then the lowest
 * workerId — is named in `with`; each other worker of this site on the card gets one finding,
 * for the periods in which that worker was present or paid.
 */
export const sharedCard: WageRule = {
  kind: 'wage.shared_card',
  severity: 'warning',
  decidable: 'always',
  find(f) {
    const out: WageFinding[] = [];
    const paid = f.payments.filter(isPaid);
    const cards = new Set([...paid.map((p) => p.cardHash), ...f.cardHolders.keys()]);
    for (const card of cards) {
      const registered = f.cardHolders.get(card) ?? [];
      const paidTo = paid.filter((p) => p.cardHash === card);
      const paidWorkers = new Set(paidTo.map((p) => p.workerId));
      if (paidWorkers.size < 2 && registered.length < 2) continue;
      const members = new Map<string, CardHolder & { registered: boolean }>();
      for (const h of registered) members.set(`${h.siteId}/${h.workerId}`, { ...h, registered: true });
      for (const w of paidWorkers) if (!members.has(`${f.siteId}/${w}`)) members.set(`${f.siteId}/${w}`, { siteId: f.siteId, workerId: w, registered: false });
      const ranked = [...members.values()].sort((a, b) => Number(b.registered) - Number(a.registered) || cmp(a.workerId, b.workerId) || cmp(a.siteId, b.siteId));
      const first = ranked[0]!;
      const last4 = paidTo[0]?.cardLast4 ?? registered[0]?.cardLast4;
      const everyone = [...new Set(ranked.map((m) => m.workerId))].sort();
      for (const m of ranked.slice(1)) {
        if (m.siteId !== f.siteId || !f.workers.has(m.workerId)) continue;
        // A registration is not a period's fact: it is reported for the periods the worker worked or was paid in.
        if (days(f, m.workerId) === 0 && !f.payments.some((p) => p.workerId === m.workerId)) continue;
        const mine = paidTo.filter((p) => p.workerId === m.workerId);
        out.push({
          kind: 'wage.shared_card', workerId: m.workerId, with: first.workerId, ...(first.siteId !== f.siteId ? { withSiteId: first.siteId } : {}),
          daysPresent: days(f, m.workerId), ...(last4 ? { cardLast4: last4 } : {}), workers: everyone, payments: mine.map(paymentRef),
          message: `card ending ${last4} is shared by ${everyone.join(', ')}: ${m.registered ? 'registered' : 'paid'} for ${m.workerId}, ${first.registered ? 'registered' : 'paid'} for ${first.workerId}${first.siteId !== f.siteId ? ` at ${first.siteId}` : ''} (${f.period})`,
        });
      }
    }
    return out;
  },
};

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
