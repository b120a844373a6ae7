import type { KeyRole } from '../../../../../schemas/src/api.ts';
import type { RaiseSignal } from '../../types.ts';
import { alertKeys } from '../settings.ts';

export interface AttendanceLowInput {
  siteId: string;
  workerId: string;
  keyRole: KeyRole;
  month: string;
  /** Every working day of the month (the rate's denominator), sorted. */
  workingDays: string[];
  /** Days of the month that have ended (watermark past their end), sorted. */
  decidedDays: string[];
  /** Days the worker was present (any day; only working days count for the rate). */
  presentDays: Set<string>;
  minRate: number;
  /** Epoch ms at which a day ends (local midnight after it). */
  endOfDay: (day: string) => number;
}

/**
 * `keystaff.attendance_low` (domain.md "Key staff", Hunan 80 % [Loc]): the monthly rate is
 * present working days ÷ working days. Decided day by day as each day ends: the alert opens at
 * the end of the first day after which even full attendance on every remaining working day can
 * no longer reach `minRate` (early), which at month end is simply "rate below `minRate`". The
 * condition is monotone (present + remaining never grows), so the first such day is the one.
 */
export function attendanceLowSignal(i: AttendanceLowInput): RaiseSignal | undefined {
  const n = i.workingDays.length;
  if (n === 0) return undefined;
  const working = new Set(i.workingDays);
  const target = i.minRate * n;
  let present = 0;
  for (const day of i.decidedDays) {
    if (working.has(day) && i.presentDays.has(day)) present++;
    const remaining = i.workingDays.filter((d) => d > day).length;
    // Compare counts, with a hair of slack so 0.8 × 25 = 20 reads as 20.
    if (present + remaining < target - 1e-9) {
      const final = remaining === 0;
      return {
        type: 'raise', kind: 'keystaff.attendance_low', siteId: i.siteId, subject: { workerId: i.workerId },
        key: alertKeys.attendanceLow(i.siteId, i.workerId, i.month), severity: 'warning', openedAt: i.endOfDay(day),
        message: final
          ? `${i.keyRole} ${i.workerId}: attendance ${present}/${n} working days in ${i.month} (${pct(present / n)}), below ${pct(i.minRate)}`
          : `${i.keyRole} ${i.workerId}: at most ${present + remaining}/${n} working days reachable in ${i.month} (${pct((present + remaining) / n)}), below ${pct(i.minRate)}`,
        evidence: {
          rule: 'keystaff.attendance_low', month: i.month, keyRole: i.keyRole, decidedOn: day, final,
          workingDays: n, presentWorkingDays: present, remainingWorkingDays: remaining, minRate: i.minRate,
          rateSoFar: round4(present / n), bestReachableRate: round4((present + remaining) / n),
        },
      };
    }
  }
  return undefined;
}

const round4 = (x: number) => Math.round(x * 10_000) / 10_000;
const pct = (x: number) => `${Math.round(x * 1000) / 10} %`;
