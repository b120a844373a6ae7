import { SiteCalendar } from '../calendar/siteCalendar.ts';
import type { StoredRecord } from '../ledger/types.ts';
import type { Site } from '../registry/registry.ts';
import { checkTransaction, type Check, type CheckContext } from './check.ts';
import { CheckProgress } from './progress.ts';

/** On a (re)start, months this far back whose deadline passed while the gateway was down are decided then. */
export const LOOKBACK_MONTHS = 12;

/**
 * The skeleton of a check that decides something once per site and month when the site's
 * event-time watermark passes that month's deadline (domain.md "Time-triggered decisions":
 * never on the wall clock alone), and decides a month again when records of it arrive late.
 * Subclasses say which month a record concerns, which month is the latest due, and what to do.
 */
export abstract class MonthlyDecisionCheck implements Check {
  abstract readonly name: string;
  private readonly decidedThrough = new Map<string, string>();
  private readonly dirty = new Map<string, Set<string>>();
  private progress: CheckProgress | undefined;

  constructor(protected readonly ctx: CheckContext) {}

  /** The month a record belongs to for this check, or undefined when it does not concern it. */
  protected abstract monthOf(r: StoredRecord, site: Site): string | undefined;
  /** The latest month whose deadline the watermark has passed. */
  protected abstract latestDue(site: Site, watermark: number): string;
  /** Decides (site, month); `revisit` when late records of an already-decided month arrived. */
  protected abstract decideMonth(site: Site, month: string, watermark: number, revisit: boolean): Promise<void> | void;

  /**
   * What was decided, and the months late records made dirty, from `check_progress` (scopes
   * `through:<site>` = yyyymm, `dirty:<site>:<yyyymm>`): both are written in the transaction of the
   * step or decision that changes them, so a restart neither decides a month twice nor forgets one.
   */
  start(): void {
    this.progress ??= new CheckProgress(this.ctx.registry.db, this.name);
    this.decidedThrough.clear();
    this.dirty.clear();
    const owns = this.ctx.owns ?? (() => true);
    for (const [scope, value] of this.progress.all()) {
      const [what, siteId, month] = scope.split(':');
      if (siteId && !owns(siteId)) continue; // another shard's site (region mode)
      if (what === 'through' && siteId) this.decidedThrough.set(siteId, fromNumber(value));
      else if (what === 'dirty' && siteId && month) this.markDirty(siteId, fromNumber(Number(month)));
    }
  }

  onRecords(records: StoredRecord[]): void {
    for (const r of records) {
      const through = this.decidedThrough.get(r.siteId);
      const site = through && this.ctx.registry.site(r.siteId);
      if (!site) continue;
      const month = this.monthOf(r, site);
      if (month === undefined || month > through) continue;
      if (this.markDirty(r.siteId, month)) this.store().set(`dirty:${r.siteId}:${toNumber(month)}`, 1);
    }
  }

  /** Months whose deadline the site's watermark passed, and dirty ones, decided one at a time. */
  async decide(now: number): Promise<void> {
    for (const site of this.ctx.registry.listSites()) {
      if (this.ctx.owns && !this.ctx.owns(site.siteId)) continue;
      const watermark = this.ctx.live.siteWatermark(site, now);
      if (watermark === undefined) continue;
      const latest = this.latestDue(site, watermark);
      const redo = [...(this.dirty.get(site.siteId) ?? [])].map((m) => [m, true] as const);
      const through = this.decidedThrough.get(site.siteId);
      const fresh: (readonly [string, boolean])[] = [];
      if (!through || latest > through) {
        for (let m = through ? SiteCalendar.addMonths(through, 1) : SiteCalendar.addMonths(latest, 1 - LOOKBACK_MONTHS); m <= latest; m = SiteCalendar.addMonths(m, 1)) fresh.push([m, false]);
      }
      for (const [month, revisit] of [...redo, ...fresh]) {
        this.dirty.get(site.siteId)?.delete(month);
        // Decided, then recorded as decided: a crash in between decides it again (reconciled, harmless).
        try {
          await this.decideMonth(site, month, watermark, revisit);
        } catch (err) {
          if (revisit) this.markDirty(site.siteId, month); // decided again at the next tick
          throw err;
        }
        checkTransaction(this.ctx, () => {
          if (revisit) this.store().remove(`dirty:${site.siteId}:${toNumber(month)}`);
          if (!revisit && month > (this.decidedThrough.get(site.siteId) ?? '')) {
            this.decidedThrough.set(site.siteId, month);
            this.store().set(`through:${site.siteId}`, toNumber(month));
          }
        });
      }
    }
  }

  private store(): CheckProgress {
    return (this.progress ??= new CheckProgress(this.ctx.registry.db, this.name));
  }

  private markDirty(siteId: string, month: string): boolean {
    let s = this.dirty.get(siteId);
    if (!s) this.dirty.set(siteId, (s = new Set()));
    if (s.has(month)) return false;
    s.add(month);
    return true;
  }
}

const toNumber = (month: string) => Number(month.replace('-', ''));
const fromNumber = (n: number) => `${Math.floor(n / 100)}-${String(n % 100).padStart(2, '0')}`;
