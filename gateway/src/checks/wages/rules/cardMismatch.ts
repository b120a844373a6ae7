import { isPaid } from '../facts.ts';
import { byWorker, days, paymentRef, sum, type WageRule } from '../rule.ts';

/**
 * wage.card_mismatch (domain.md "Wages": pay goes to the worker's own card, one card per worker
 * [Nat]): a `paid` payment whose card hash differs from the worker's registered card (or the
 * worker has no card registered). One finding per worker and period, naming every such payment.
 */
export const cardMismatch: WageRule = {
  kind: 'wage.card_mismatch',
  severity: 'warning',
  decidable: 'always',
  find(f) {
    const out = [];
    for (const [workerId, ps] of byWorker(f.payments.filter(isPaid))) {
      const registered = f.workers.get(workerId)?.cardHash;
      const off = ps.filter((p) => p.cardHash !== registered);
      if (!off.length) continue;
      const registeredLast4 = f.workers.get(workerId)?.cardLast4;
      const paidCardLast4 = [...new Set(off.map((p) => p.cardLast4))];
      const amount = sum(off);
      out.push({
        kind: 'wage.card_mismatch' as const, workerId, daysPresent: days(f, workerId), amount, paidCardLast4,
        ...(registeredLast4 ? { registeredCardLast4: registeredLast4 } : {}), payments: off.map(paymentRef),
        message: `${workerId} was paid ${amount} for ${f.period} to card(s) ending ${paidCardLast4.join(', ')}, ${registeredLast4 ? `not to the registered card ending ${registeredLast4}` : 'with no card registered'}`,
      });
    }
    return out;
  },
};
