import { SiteCalendar } from '../../calendar/siteCalendar.ts';
import type { StoredRecord } from '../../ledger/types.ts';
import type { Site } from '../../registry/registry.ts';
import { checkTransaction, type CheckFactory } from '../check.ts';
import { MonthlyDecisionCheck } from '../monthlyDecisions.ts';
import { wageCheckReport } from './findings.ts';
import type { WageFinding, WageKind } from './rule.ts';
import { WAGE_RULES } from './rules/index.ts';
import { latestDuePeriod, wageSettings } from './settings.ts';

/** Contract §5 "Keys": `wage.*` is site + worker + period. */
export const wageAlertKey = (kind: WageKind, siteId: string, workerId: string, period: string) => `${kind}:${siteId}:${workerId}:${period}`;

const WITHDRAWN = 'data that arrived later shows the finding did not hold at the due date';
/** Reconciles per transaction (and per turn of the event loop) when a decision is applied. */
const DECIDE_SLICE = 100;

const SEVERITY = new Map(WAGE_RULES.map((r) => [r.kind, r.severity]));

/**
 * Raises the wage findings of a period as alerts once the site's event-time WATERMARK passes the
 * period's due date (domain.md "Time-triggered decisions": never on the wall clock alone, so a
 * replay of an old month decides as living through it did). One alert per site + worker +
 * period and kind, opened at the due date; a key that ever had an alert is never raised again,
 * so restarts and re-decisions repeat nothing. Payments, check-ins or verdicts of an
 * already-decided period arriving later re-decide it: new findings are raised, and an open alert
 * whose finding no longer holds as of its due date is withdrawn (the late data shows it never did).
 */
export class WageCheck extends MonthlyDecisionCheck {
  readonly name = 'wages';
  /** What `monthOf` reads: readings and the rest never make a month dirty, so they pass by. */
  readonly kinds = ['wage_payment', 'checkin', 'verdict'] as const;

  protected monthOf(r: StoredRecord, site: Site): string | undefined {
    if (r.kind === 'wage_payment') return r.body.period as string;
    return r.kind === 'checkin' || r.kind === 'verdict' ? SiteCalendar.of(site.timezone).localMonth(r.ts) : undefined;
  }

  protected latestDue(site: Site, watermark: number): string {
    return latestDuePeriod(SiteCalendar.of(site.timezone), watermark, wageSettings(site).wageDueMonths);
  }

  protected async decideMonth(site: Site, period: string, asOf: number, revisit: boolean): Promise<void> {
    const { alerts, registry, ledger, reports } = this.ctx;
    // A period's check-ins and payments are read on the report thread: never month-wide on the event loop.
    const report = reports ? await reports.wageCheck(site, period, asOf) : await wageCheckReport(registry, ledger, site, period, asOf);
    // A site's findings and withdrawals are thousands of reconciles: one commit (one fsync) per
    // slice of them instead of per change (~300 ms on the event loop for 406 workers before), and
    // the event loop is let go between slices. A decision cut short by a crash is taken again
    // (reconcile is idempotent).
    const steps = this.steps(site, period, report, revisit);
    for (let i = 0; i < steps.length; i += DECIDE_SLICE) {
      if (i > 0) await new Promise((resolve) => setImmediate(resolve));
      checkTransaction(this.ctx, () => { for (const step of steps.slice(i, i + DECIDE_SLICE)) step(); });
    }
  }

  /** The reconciles a decision consists of: the findings raised, and (revisiting) the rest withdrawn. */
  private steps(site: Site, period: string, report: Awaited<ReturnType<typeof wageCheckReport>>, revisit: boolean): (() => void)[] {
    const { alerts, registry } = this.ctx;
    const raised = new Set<string>();
    const steps: (() => void)[] = [];
    for (const f of report.findings) {
      const key = wageAlertKey(f.kind, site.siteId, f.workerId, period);
      raised.add(key);
      steps.push(() => alerts.reconcile(key, {
        type: 'raise', kind: f.kind, siteId: site.siteId, key, severity: SEVERITY.get(f.kind)!,
        subject: { workerId: f.workerId, ...(f.with ? { with: f.with } : {}) },
        openedAt: report.dueAt, message: f.message, evidence: evidenceOf(f, period, report),
      }, { exclusive: true, reason: WITHDRAWN }));
    }
    if (!revisit) return steps;
    for (const w of registry.listWorkers(site.siteId)) {
      for (const kind of SEVERITY.keys()) {
        const key = wageAlertKey(kind, site.siteId, w.workerId, period);
        if (!raised.has(key)) steps.push(() => alerts.reconcile(key, null, { exclusive: true, reason: WITHDRAWN }));
      }
    }
    return steps;
  }
}

function evidenceOf(f: WageFinding, period: string, r: { dueAt: number; settings: { minDailyWage: number; wageDueMonths: number } }): Record<string, unknown> {
  const { message: _m, kind, ...numbers } = f;
  return { rule: `domain.md Wages: ${kind}`, period, dueAt: new Date(r.dueAt).toISOString(), wageDueMonths: r.settings.wageDueMonths, ...numbers };
}

export const wageCheck: CheckFactory = (ctx) => new WageCheck(ctx);
