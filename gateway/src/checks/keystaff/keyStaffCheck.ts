import type { KeyRole } from '../../../../schemas/src/api.ts';
import { SiteCalendar } from '../../calendar/siteCalendar.ts';
import { countsAsPresence, WorkCalendar } from '../../attendance/attendance.ts';
import { CheckinDays } from '../../attendance/checkinDays.ts';
import type { StoredRecord } from '../../ledger/types.ts';
import type { Site } from '../../registry/registry.ts';
import type { Check, CheckContext, CheckFactory } from '../check.ts';
import { CheckProgress } from '../progress.ts';
import { absentSignal } from './rules/absent.ts';
import { attendanceLowSignal } from './rules/attendanceLow.ts';
import { multiSiteSignals } from './rules/multiSite.ts';
import { unknownWorkerSignal } from './rules/unknownWorker.ts';
import { alertKeys, keyStaffSettings, type KeyStaffSettings } from './settings.ts';

export const KEY_STAFF = 'keystaff';

/** Device messages: they move a site's watermark (domain.md "Time-triggered decisions"). */
const DEVICE_KINDS = new Set(['checkin', 'reading', 'status', 'snapshot']);

/** workerId → every site where that person is registered, with the key role held there. */
type StaffIndex = Map<string, { siteId: string; keyRole?: KeyRole }[]>;

interface SiteView {
  site: Site;
  wc: WorkCalendar;
  s: KeyStaffSettings;
}

/**
 * Key staff and check-in checks (domain.md "Calendar", "Key staff"; contract §5):
 * `keystaff.absent`, `keystaff.attendance_low`, `keystaff.multi_site`, `checkin.unknown_worker`.
 * The rules are pure functions in `rules/`; this file decides *when* they are asked.
 *
 * - Time-triggered decisions (the cut-off of each working day, the end of each day) are taken when
 *   the site's event-time watermark passes them, never on the wall clock alone, so a replay of last
 *   month decides as living through it did. `decided[site]` is the event time up to which they are
 *   taken.
 * - Every decision is re-derived from the ledger (check-ins with their face verdicts) and
 *   reconciled with the alert store: raise what the facts imply and is not on record; withdraw
 *   (`retracts`) what is on record and the facts now disprove. So late check-ins stamped before a
 *   cut-off, and face verdicts arriving after it, correct earlier decisions, and redoing a decision
 *   after a restart neither repeats nor misses an alert.
 * - Per-record effects (unknown worker, multi-site, late corrections) and the progress (ledger
 *   cursor, `decided`) are applied in one state.db transaction per batch, so after a crash the
 *   records after the cursor are simply applied again.
 */
export const keyStaffCheck: CheckFactory = (ctx) => new KeyStaffCheck(ctx);

export class KeyStaffCheck implements Check {
  readonly name = KEY_STAFF;
  /** Check-ins and verdicts; the other device messages move a site's watermark (`since`). */
  readonly kinds = ['checkin', 'verdict', 'reading', 'status', 'snapshot'] as const;
  private readonly ctx: CheckContext;
  private readonly progress: CheckProgress;
  private readonly decided = new Map<string, number>();
  /** siteId → event time of the site's first device message: when the gateway began to watch it. */
  private readonly since = new Map<string, number>();
  private readonly views = new Map<string, SiteView>();
  /** Check-ins per site and local day, kept from the records this check sees (no month-wide reads). */
  private days: CheckinDays;

  constructor(ctx: CheckContext) {
    this.ctx = ctx;
    this.progress = new CheckProgress(ctx.registry.db, KEY_STAFF);
    this.days = this.newDays();
  }

  /** The day cache, empty: reads inside the step through `stepReads` where the ledger answers later; other shards' days never kept. */
  private newDays(): CheckinDays {
    return new CheckinDays(this.ctx.stepReads ?? this.ctx.ledger, (siteId) => this.calendar(siteId), this.ctx.owns ? { owns: this.ctx.owns } : {});
  }

  /** What was decided per site (the runner replays the records after its cursor). */
  start(): void {
    this.decided.clear();
    this.since.clear();
    this.days = this.newDays();
    const owns = this.ctx.owns ?? (() => true);
    for (const [scope, value] of this.progress.all()) {
      if (scope.startsWith('site:') && owns(scope.slice(5))) this.decided.set(scope.slice(5), value);
      else if (scope.startsWith('since:') && owns(scope.slice(6))) this.since.set(scope.slice(6), value);
    }
  }

  /** In the runner's transaction, with the cursor: per-record effects and the decisions they let through. */
  onRecords(records: StoredRecord[]): void {
    this.days.apply(records);
    const now = this.ctx.now();
    // A site's decisions start at its first device message (minus the lateness): nothing is
    // decided for a cut-off that passed before the gateway heard from the site at all.
    const first = new Map<string, number>();
    for (const r of records) {
      if (!DEVICE_KINDS.has(r.kind) || this.decided.has(r.siteId)) continue;
      first.set(r.siteId, Math.min(first.get(r.siteId) ?? Infinity, r.ts));
    }
    for (const [siteId, ts] of first) {
      const view = this.view(siteId);
      if (!view) continue;
      this.since.set(siteId, ts);
      this.progress.set(`since:${siteId}`, ts);
      this.setDecided(siteId, ts - view.s.latenessMs);
    }
    let index: StaffIndex | undefined;
    const staff = () => (index ??= this.staffIndex());
    const touched = new Set<string>();
    for (const r of records) {
      if (DEVICE_KINDS.has(r.kind)) touched.add(r.siteId);
      if (r.kind === 'checkin') this.onCheckin(r, staff);
      else if (r.kind === 'verdict') this.onVerdict(r, staff);
    }
    for (const siteId of touched) this.advance(siteId, now);
  }

  tick(now: number): void {
    for (const siteId of this.decided.keys()) this.advance(siteId, now);
  }

  private setDecided(siteId: string, at: number): void {
    this.decided.set(siteId, at);
    this.progress.set(`site:${siteId}`, at);
  }

  // — time-triggered decisions —

  /** Takes every decision whose moment (cut-off, end of day) the site's watermark has passed. */
  private advance(siteId: string, now: number): void {
    const from = this.decided.get(siteId);
    const view = this.view(siteId);
    if (from === undefined || !view) return;
    const to = this.ctx.live.watermark(siteId, now, view.s.latenessMs);
    if (to === undefined || to <= from) return;
    const cal = view.wc.cal;
    let crossed = false;
    for (let day = cal.localDay(from); day <= cal.localDay(to); day = SiteCalendar.addDays(day, 1)) {
      const cutoff = cal.atHour(day, view.s.cutoffHour);
      if (cutoff > from && cutoff <= to && view.wc.isWorkingDay(day)) {
        this.decideAbsent(view, day, cutoff);
        crossed = true;
      }
      const end = cal.startOfDay(SiteCalendar.addDays(day, 1));
      if (end > from && end <= to) {
        this.decideMonth(view, day.slice(0, 7), day);
        crossed = true;
      }
    }
    // The in-memory mark follows the watermark; the stored one moves when a decision was taken
    // (redoing the decisions after it on restart is harmless: they are reconciled).
    if (crossed) this.setDecided(siteId, to);
    else this.decided.set(siteId, to);
  }

  private decideAbsent(view: SiteView, day: string, cutoff: number, onlyWorker?: string): void {
    const { siteId } = view.site;
    const keyStaff = this.ctx.registry.listWorkers(siteId).filter((w) => w.keyRole && (!onlyWorker || w.workerId === onlyWorker));
    if (keyStaff.length === 0) return;
    for (const w of keyStaff) {
      const desired = absentSignal({
        siteId, workerId: w.workerId, keyRole: w.keyRole!, day, cutoffHour: view.s.cutoffHour, cutoff,
        checkins: this.days.worker(siteId, view.wc.cal, day, w.workerId).filter((f) => f.ts <= cutoff),
      });
      this.ctx.alerts.reconcile(alertKeys.absent(siteId, w.workerId, day), desired ?? null, { exclusive: true });
    }
  }

  /** `keystaff.attendance_low` for `month`, with every day up to `throughDay` ended. */
  private decideMonth(view: SiteView, month: string, throughDay: string, onlyWorker?: string): void {
    const { siteId } = view.site;
    const keyStaff = this.ctx.registry.listWorkers(siteId).filter((w) => w.keyRole && (!onlyWorker || w.workerId === onlyWorker));
    if (keyStaff.length === 0) return;
    const cal = view.wc.cal;
    // A month's rate needs the whole month watched: not decided for the month the site's first
    // message fell in after its first day (no data is not absence).
    const since = this.since.get(siteId);
    if (since === undefined || cal.localDay(since) > `${month}-01`) return;
    const decidedDays = SiteCalendar.daysOfMonth(month).filter((d) => d <= throughDay);
    if (decidedDays.length === 0) return;
    const endOfDay = (d: string) => cal.startOfDay(SiteCalendar.addDays(d, 1));
    const workingDays = view.wc.workingDays(month);
    for (const w of keyStaff) {
      const presentDays = new Set(decidedDays.filter((d) => this.days.worker(siteId, cal, d, w.workerId).some(countsAsPresence)));
      const desired = attendanceLowSignal({
        siteId, workerId: w.workerId, keyRole: w.keyRole!, month, workingDays, decidedDays, presentDays, minRate: view.s.minRate, endOfDay,
      });
      this.ctx.alerts.reconcile(alertKeys.attendanceLow(siteId, w.workerId, month), desired ?? null, { exclusive: true });
    }
  }

  // — per-record effects —

  private onCheckin(r: StoredRecord, staff: () => StaffIndex): void {
    const workerId = r.body.workerId as string;
    const worker = this.ctx.registry.worker(r.siteId, workerId);
    const key = alertKeys.unknownWorker(r.siteId, workerId);
    if (!worker) {
      // Nothing more for an unregistered worker (domain.md "Wages": unknown_worker and nothing more).
      const last = this.ctx.alerts.lastOfKey(key);
      const open = last && (last.state === 'open' || last.state === 'acked');
      if (!open && !(last && last.openedAt >= r.ts)) this.ctx.alerts.apply(unknownWorkerSignal(r));
      return;
    }
    if (this.ctx.alerts.active(key)) {
      this.ctx.alerts.apply({ type: 'clear', kind: 'checkin.unknown_worker', siteId: r.siteId, key, at: r.ts, evidence: { reason: 'registered', checkinId: r.msgId } });
    }
    this.afterPresenceChange(r.siteId, workerId, r.ts, staff);
  }

  /** A face verdict can take presence away (face_mismatch) or confirm a check-in that was waiting for it. */
  private onVerdict(r: StoredRecord, staff: () => StaffIndex): void {
    const workerId = r.body.workerId as string;
    if (!this.ctx.registry.worker(r.siteId, workerId)) return;
    this.afterPresenceChange(r.siteId, workerId, r.ts, staff);
  }

  /** Re-decides what a check-in (or its verdict) stamped `ts` can change. */
  private afterPresenceChange(siteId: string, workerId: string, ts: number, staff: () => StaffIndex): void {
    const view = this.view(siteId);
    if (!view) return;
    const cal = view.wc.cal;
    const day = cal.localDay(ts);
    const sites = staff().get(workerId);
    if (sites && sites.length >= 2 && sites.some((s) => s.keyRole)) this.decideMultiSite(workerId, day, sites);
    const decided = this.decided.get(siteId);
    const keyRole = this.ctx.registry.worker(siteId, workerId)?.keyRole;
    if (decided === undefined || !keyRole) return;
    // Late data: a decision already taken for that day or month is taken again.
    const cutoff = cal.atHour(day, view.s.cutoffHour);
    const watchedFrom = (this.since.get(siteId) ?? Infinity) - view.s.latenessMs;
    if (ts <= cutoff && cutoff > watchedFrom && cutoff <= decided && view.wc.isWorkingDay(day)) this.decideAbsent(view, day, cutoff, workerId);
    const lastEnded = SiteCalendar.addDays(cal.localDay(decided), -1);
    if (day <= lastEnded) this.decideMonth(view, day.slice(0, 7), lastEnded, workerId);
  }

  private decideMultiSite(workerId: string, day: string, sites: { siteId: string; keyRole?: KeyRole }[]): void {
    const firstCheckin = new Map<string, number>();
    for (const s of sites) {
      const cal = this.calendar(s.siteId);
      if (!cal) continue;
      // A face check-in counts once its verdict is in: a proxy check-in at the other site is not presence.
      // Sites of other shards (region mode) are decided on too, by their own shard as well: both
      // decide from the ledger as it is now, never from a day kept at this shard's cursor, so
      // neither takes back what the other raised from a newer view.
      const day_ = this.ctx.owns ? this.days.workerNow(s.siteId, cal, day, workerId) : this.days.worker(s.siteId, cal, day, workerId);
      const facts = day_.filter((f) => countsAsPresence(f) && !f.awaitingVerdict);
      if (facts.length) firstCheckin.set(s.siteId, Math.min(...facts.map((f) => f.ts)));
    }
    const signals = new Map(multiSiteSignals({ workerId, day, sites, firstCheckin }).map((sig) => [sig.siteId, sig]));
    for (const s of sites) this.ctx.alerts.reconcile(alertKeys.multiSite(s.siteId, workerId, day), signals.get(s.siteId) ?? null, { exclusive: true });
  }

  // — registry views —

  private view(siteId: string): SiteView | undefined {
    const site = this.ctx.registry.site(siteId);
    if (!site) return undefined;
    let v = this.views.get(siteId);
    if (!v || v.site !== site) this.views.set(siteId, (v = { site, wc: new WorkCalendar(site), s: keyStaffSettings(site) }));
    return v;
  }

  private calendar(siteId: string): SiteCalendar | undefined {
    return this.view(siteId)?.wc.cal;
  }

  private staffIndex(): StaffIndex {
    const out: StaffIndex = new Map();
    for (const site of this.ctx.registry.listSites()) {
      for (const w of this.ctx.registry.listWorkers(site.siteId)) {
        let list = out.get(w.workerId);
        if (!list) out.set(w.workerId, (list = []));
        list.push({ siteId: site.siteId, ...(w.keyRole ? { keyRole: w.keyRole } : {}) });
      }
    }
    return out;
  }
}
