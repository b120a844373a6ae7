import { isPaid } from '../facts.ts';
import { days, paymentRef, sum, type WageRule } from '../rule.ts';

/**
 * wage.underpaid (domain.md "Wages"; minimum daily wage 120 CNY by default [Loc]): for a worker
 * with at least one `paid` payment for M before the due date (none at all is wage.unpaid), the
 * sum of those payments is below days present × minDailyWage. Payments to another card count.
 */
export const underpaid: WageRule = {
  kind: 'wage.underpaid',
  severity: 'warning',
  decidable: 'due',
  find(f) {
    const out = [];
    const min = f.settings.minDailyWage;
    for (const workerId of f.workers.keys()) {
      const ps = f.payments.filter((p) => p.workerId === workerId && isPaid(p) && p.paidAt < f.dueAt);
      if (!ps.length) continue;
      const n = days(f, workerId);
      const amount = sum(ps);
      const minimum = Math.round(n * min * 100) / 100;
      if (amount >= minimum) continue;
      const shortfall = Math.round((minimum - amount) * 100) / 100;
      out.push({
        kind: 'wage.underpaid' as const, workerId, daysPresent: n, amount, minimum, minDailyWage: min, shortfall, payments: ps.map(paymentRef),
        message: `${workerId} was paid ${amount} for ${f.period}, below ${n} day(s) × ${min} = ${minimum} (short by ${shortfall})`,
      });
    }
    return out;
  },
};
