import { isPaid } from '../facts.ts';
import { byWorker, days, paymentRef, sum, type WageRule } from '../rule.ts';

/** wage.ghost (domain.md "Wages"): a `paid` payment for period M to a worker with no presence in M. */
export const ghost: WageRule = {
  kind: 'wage.ghost',
  severity: 'critical',
  decidable: 'periodEnd',
  find(f) {
    const out = [];
    for (const [workerId, ps] of byWorker(f.payments.filter(isPaid))) {
      if (days(f, workerId) > 0) continue;
      const amount = sum(ps);
      out.push({
        kind: 'wage.ghost' as const, workerId, daysPresent: 0, amount, payments: ps.map(paymentRef),
        message: `${workerId} was paid ${amount} for ${f.period} with no day present in it`,
      });
    }
    return out;
  },
};
