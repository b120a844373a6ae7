import { isPaid } from '../facts.ts';
import { byWorker, days, paymentRef, type WageRule } from '../rule.ts';

/**
 * wage.unpaid (domain.md "Wages"; 保障农民工工资支付条例 2020 [Nat]): present in period M and no
 * `paid` payment for M before the due date. `failed` and `returned` payments do not count; a
 * `paid` payment to another card still does (that is wage.card_mismatch); one paid after the due
 * date is late and does not undo the finding.
 */
export const unpaid: WageRule = {
  kind: 'wage.unpaid',
  severity: 'critical',
  decidable: 'due',
  find(f) {
    const paymentsOf = byWorker(f.payments);
    const out = [];
    for (const workerId of f.workers.keys()) {
      const n = days(f, workerId);
      if (n === 0) continue;
      const ps = paymentsOf.get(workerId) ?? [];
      if (ps.some((p) => isPaid(p) && p.paidAt < f.dueAt)) continue;
      const due = new Date(f.dueAt).toISOString();
      out.push({
        kind: 'wage.unpaid' as const, workerId, daysPresent: n, dueAt: due, payments: ps.map(paymentRef),
        message: `${workerId} was present ${n} day(s) in ${f.period} and has no paid payment for it before ${due}${ps.length ? ` (${ps.map((p) => `${p.id}: ${p.status}${p.paidAt >= f.dueAt ? ', late' : ''}`).join('; ')})` : ''}`,
      });
    }
    return out;
  },
};
