import type { AlertKind, Severity } from '../types.ts';
import type { Payment, WageFacts } from './facts.ts';

export type WageKind = Extract<AlertKind, `wage.${string}`>;

/**
 * When a rule's findings can be told: `always` (facts of payments and registrations already made,
 * which no later data undoes), `periodEnd` (needs the whole period's attendance), `due` (needs
 * the payment deadline to have passed).
 */
export type Decidable = 'always' | 'periodEnd' | 'due';

export interface PaymentRef {
  id: string;
  status: Payment['status'];
  amount: number;
  paidAt: string;
  cardLast4: string;
}

/** One finding for one worker and period, with the numbers behind it (contract §2 wage-check). */
export interface WageFinding {
  kind: WageKind;
  workerId: string;
  message: string;
  /** wage.shared_card: the other worker (the card's first holder). */
  with?: string;
  withSiteId?: string;
  daysPresent: number;
  /** Sum of the `paid` amounts the finding is about. */
  amount?: number;
  /** wage.underpaid: days present × minDailyWage, and how much is missing. */
  minimum?: number;
  minDailyWage?: number;
  shortfall?: number;
  /** The card concerned (last 4 digits only), the worker's registered card, the cards paid to. */
  cardLast4?: string;
  registeredCardLast4?: string;
  paidCardLast4?: string[];
  /** wage.shared_card: every worker on the card, sorted. */
  workers?: string[];
  dueAt?: string;
  payments: PaymentRef[];
}

/** A wage rule of domain.md "Wages": a pure function of the period's facts. */
export interface WageRule {
  kind: WageKind;
  severity: Severity;
  decidable: Decidable;
  find(f: WageFacts): WageFinding[];
}

export const paymentRef = (p: Payment): PaymentRef => ({ id: p.id, status: p.status, amount: p.amount, paidAt: new Date(p.paidAt).toISOString(), cardLast4: p.cardLast4 });

/** Money in fen-exact sums: amounts are CNY with at most 2 decimals. */
export const sum = (ps: Payment[]) => Math.round(ps.reduce((a, p) => a + p.amount * 100, 0)) / 100;

export const byWorker = (ps: Payment[]): Map<string, Payment[]> => {
  const m = new Map<string, Payment[]>();
  for (const p of ps) {
    let l = m.get(p.workerId);
    if (!l) m.set(p.workerId, (l = []));
    l.push(p);
  }
  return m;
};

export const days = (f: WageFacts, workerId: string) => f.daysPresent.get(workerId)?.length ?? 0;
