import { SiteCalendar } from '../calendar/siteCalendar.ts';
import type { StoredRecord } from '../ledger/types.ts';
import type { Site } from '../registry/registry.ts';
import type { Check, CheckContext } from './check.ts';

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

  constructor(protected readonly ctx: CheckContext) {}

  /** The month a record belongs to for this check, or undefined when it does not concern it. */
  protected abstract monthOf(r: StoredRecord, site: Site): string | undefined;
  /** The latest month whose deadline the watermark has passed. */
  protected abstract latestDue(site: Site, watermark: number): string;
  /** Decides (site, month); `revisit` when late records of an already-decided month arrived. */
  protected abstract decide(site: Site, month: string, watermark: number, revisit: boolean): Promise<void> | void;

  onRecords(records: StoredRecord[]): void {
    for (const r of records) {
      const through = this.decidedThrough.get(r.siteId);
      const site = through && this.ctx.registry.site(r.siteId);
      if (!site) continue;
      const month = this.monthOf(r, site);
      if (month === undefined || month > through) continue;
      this.markDirty(r.siteId, month);
    }
  }

  private ticking: Promise<void> | null = null;

  /** One tick at a time: a decision may wait for the report thread, and the next tick must see its outcome. */
  async tick(now: number): Promise<void> {
    while (this.ticking) await this.ticking;
    this.ticking = this.decideDue(now).finally(() => { this.ticking = null; });
    return this.ticking;
  }

  private async decideDue(now: number): Promise<void> {
    for (const site of this.ctx.registry.listSites()) {
      const watermark = this.ctx.live.siteWatermark(site, now);
      if (watermark === undefined) continue;
      const latest = this.latestDue(site, watermark);
      const redo = [...(this.dirty.get(site.siteId) ?? [])].map((m) => [m, true] as const);
      this.dirty.delete(site.siteId);
      const through = this.decidedThrough.get(site.siteId);
      const fresh: (readonly [string, boolean])[] = [];
      if (!through || latest > through) {
        for (let m = through ? SiteCalendar.addMonths(through, 1) : SiteCalendar.addMonths(latest, 1 - LOOKBACK_MONTHS); m <= latest; m = SiteCalendar.addMonths(m, 1)) fresh.push([m, false]);
        // Marked before deciding: a decision waits for the report thread, and records of these
        // months arriving meanwhile must make them dirty (decided again), not be missed.
        this.decidedThrough.set(site.siteId, latest);
      }
      for (const [month, revisit] of [...redo, ...fresh]) {
        try {
          await this.decide(site, month, watermark, revisit);
        } catch (err) {
          this.markDirty(site.siteId, month); // decided again at the next tick
          throw err;
        }
      }
    }
  }

  private markDirty(siteId: string, month: string): void {
    let s = this.dirty.get(siteId);
    if (!s) this.dirty.set(siteId, (s = new Set()));
    s.add(month);
  }
}
