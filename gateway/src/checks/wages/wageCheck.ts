import { SiteCalendar } from '../../calendar/siteCalendar.ts';
import type { StoredRecord } from '../../ledger/types.ts';
import type { Site } from '../../registry/registry.ts';
import type { Check, CheckContext, CheckFactory } from '../check.ts';
import { wageCheckReport } from './findings.ts';
import type { WageFinding, WageKind } from './rule.ts';
import { WAGE_RULES } from './rules/index.ts';
import { DEFAULT_LATENESS_S, latestDuePeriod, wageSettings } from './settings.ts';

/** On a (re)start, periods this far back whose due date has passed are decided if they never were (alerts are one-shot per key). */
export const LOOKBACK_PERIODS = 12;

/** Contract §5 "Keys": `wage.*` is site + worker + period. */
export const wageAlertKey = (kind: WageKind, siteId: string, workerId: string, period: string) => `${kind}:${siteId}:${workerId}:${period}`;

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
export class WageCheck implements Check {
  readonly name = 'wages';
  private readonly decidedThrough = new Map<string, string>();
  private readonly dirty = new Map<string, Set<string>>();

  constructor(private readonly ctx: CheckContext) {}

  private cal(site: Site): SiteCalendar {
    return SiteCalendar.of(site.timezone);
  }

  onRecords(records: StoredRecord[]): void {
    for (const r of records) {
      if (r.kind !== 'wage_payment' && r.kind !== 'checkin' && r.kind !== 'verdict') continue;
      const through = this.decidedThrough.get(r.siteId);
      if (!through) continue;
      const site = this.ctx.registry.site(r.siteId);
      if (!site) continue;
      const period = r.kind === 'wage_payment' ? (r.body.period as string) : this.cal(site).localMonth(r.ts);
      if (period > through) continue;
      let s = this.dirty.get(r.siteId);
      if (!s) this.dirty.set(r.siteId, (s = new Set()));
      s.add(period);
    }
  }

  tick(now: number): void {
    for (const site of this.ctx.registry.listSites()) {
      const watermark = this.ctx.live.watermark(site.siteId, now, (site.settings.lateness ?? DEFAULT_LATENESS_S) * 1000);
      if (watermark === undefined) continue;
      const latest = latestDuePeriod(this.cal(site), watermark, wageSettings(site).wageDueMonths);
      const through = this.decidedThrough.get(site.siteId);
      const redo = this.dirty.get(site.siteId);
      this.dirty.delete(site.siteId);
      for (const period of redo ?? []) this.decide(site, period, watermark, true);
      if (through && latest <= through) continue;
      for (let p = through ? SiteCalendar.addMonths(through, 1) : SiteCalendar.addMonths(latest, 1 - LOOKBACK_PERIODS); p <= latest; p = SiteCalendar.addMonths(p, 1)) {
        this.decide(site, p, watermark, false);
      }
      this.decidedThrough.set(site.siteId, latest);
    }
  }

  private decide(site: Site, period: string, asOf: number, revisit: boolean): void {
    const { alerts, registry, ledger } = this.ctx;
    const report = wageCheckReport(registry, ledger, site, period, asOf);
    const raised = new Set<string>();
    for (const f of report.findings) {
      const key = wageAlertKey(f.kind, site.siteId, f.workerId, period);
      raised.add(key);
      if (alerts.hasAny(key)) continue;
      alerts.apply({
        type: 'raise', kind: f.kind, siteId: site.siteId, key, severity: SEVERITY.get(f.kind)!,
        subject: { workerId: f.workerId, ...(f.with ? { with: f.with } : {}) },
        openedAt: report.dueAt, message: f.message, evidence: evidenceOf(f, period, report),
      });
    }
    if (!revisit) return;
    for (const w of registry.listWorkers(site.siteId)) {
      for (const kind of SEVERITY.keys()) {
        const key = wageAlertKey(kind, site.siteId, w.workerId, period);
        if (raised.has(key)) continue;
        const a = alerts.active(key);
        if (a && a.openedAt === report.dueAt) {
          alerts.apply({ type: 'clear', kind, siteId: site.siteId, key, at: report.dueAt, retracts: a.openedAt, evidence: { reason: 'data that arrived later shows the finding did not hold at the due date', period } });
        }
      }
    }
  }
}

function evidenceOf(f: WageFinding, period: string, r: { dueAt: number; settings: { minDailyWage: number; wageDueMonths: number } }): Record<string, unknown> {
  const { message: _m, kind, ...numbers } = f;
  return { rule: `domain.md Wages: ${kind}`, period, dueAt: new Date(r.dueAt).toISOString(), wageDueMonths: r.settings.wageDueMonths, ...numbers };
}

export const wageCheck: CheckFactory = (ctx) => new WageCheck(ctx);
