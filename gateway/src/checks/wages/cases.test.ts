import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { SiteCalendar } from '../../calendar/siteCalendar.ts';
import { parseTimestamp } from '../../ingest/timestamps.ts';
import type { CardHolder, Payment, WageFacts } from './facts.ts';
import { decideWageFindings } from './findings.ts';
import { DEFAULT_MIN_DAILY_WAGE, DEFAULT_WAGE_DUE_MONTHS, periodRange, wageDueAt } from './settings.ts';

/**
 * Wage rules as data (style.md §4): each folder of cases/ holds one case.json — workers (card
 * labels stand for card hashes, their last 4 characters for the last 4 digits), days present,
 * payments, optional settings and decision time — and the findings expected (kind, worker and any
 * numbers named). Findings not listed must not appear. Adding a case is adding a folder.
 */
const CASES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'cases');
const PERIOD = '2026-09';
const cal = new SiteCalendar('Asia/Shanghai');

interface Case {
  about: string;
  settings?: { minDailyWage?: number; wageDueMonths?: number };
  workers: Record<string, { card?: string }>;
  days: Record<string, number>;
  payments: { id: string; workerId: string; amount: number; status: Payment['status']; card: string; paidAt: string }[];
  asOf?: string;
  expected: Record<string, unknown>[];
  pending?: string[];
}

const ms = (t: string) => {
  const r = parseTimestamp(t, Number.MAX_SAFE_INTEGER);
  if (!r.ok) throw new Error(`${t}: ${r.message}`);
  return r.ms;
};

function facts(c: Case): WageFacts {
  const settings = { minDailyWage: c.settings?.minDailyWage ?? DEFAULT_MIN_DAILY_WAGE, wageDueMonths: c.settings?.wageDueMonths ?? DEFAULT_WAGE_DUE_MONTHS };
  const [periodStart, periodEnd] = periodRange(cal, PERIOD);
  const holder = (workerId: string, card?: string): CardHolder => ({ siteId: 'S1', workerId, ...(card ? { cardHash: card, cardLast4: card.slice(-4) } : {}) });
  const workers = new Map(Object.entries(c.workers).map(([id, w]) => [id, holder(id, w.card)]));
  const daysPresent = new Map([...workers.keys()].map((id) => [id, SiteCalendar.daysOfMonth(PERIOD).slice(0, c.days[id] ?? 0)]));
  const payments: Payment[] = c.payments.map((p) => ({ ...p, period: PERIOD, cardHash: p.card, cardLast4: p.card.slice(-4), paidAt: ms(p.paidAt) }));
  const cardHolders = new Map<string, CardHolder[]>();
  for (const card of new Set([...payments.map((p) => p.cardHash), ...Object.values(c.workers).flatMap((w) => (w.card ? [w.card] : []))])) {
    cardHolders.set(card, [...workers.values()].filter((w) => w.cardHash === card));
  }
  return { siteId: 'S1', period: PERIOD, settings, periodStart, periodEnd, dueAt: wageDueAt(cal, PERIOD, settings.wageDueMonths), workers, daysPresent, payments, cardHolders };
}

describe('wage rules (cases/)', () => {
  for (const name of fs.readdirSync(CASES).sort()) {
    const c = JSON.parse(fs.readFileSync(path.join(CASES, name, 'case.json'), 'utf8')) as Case;
    it(`${name}: ${c.about}`, () => {
      const f = facts(c);
      const asOf = c.asOf ? ms(c.asOf) : ms('2026-11-20T12:00:00+08:00');
      const d = decideWageFindings(f, asOf);
      expect(d.findings.map((x) => `${x.kind} ${x.workerId}`).sort()).toEqual(c.expected.map((x) => `${x.kind} ${x.workerId}`).sort());
      for (const want of c.expected) {
        expect(d.findings.find((x) => x.kind === want.kind && x.workerId === want.workerId)).toMatchObject(want);
      }
      expect(d.pending).toEqual(c.pending ?? []);
    });
  }

  it('the due date is the end of month M + wageDueMonths in site time', () => {
    expect(new Date(wageDueAt(cal, '2026-09', 1)).toISOString()).toBe('2026-10-31T16:00:00.000Z');
    expect(new Date(wageDueAt(new SiteCalendar('Europe/Berlin'), '2026-09', 1)).toISOString()).toBe('2026-10-31T23:00:00.000Z'); // after the DST change
    expect(new Date(wageDueAt(cal, '2026-12', 0)).toISOString()).toBe('2026-12-31T16:00:00.000Z');
  });
});
