import type { KeyRole } from '../../../schemas/src/api.ts';
import { SiteCalendar } from '../calendar/siteCalendar.ts';
import type { LedgerReads } from '../ledger/ledgerQueries.ts';
import type { StoredRecord } from '../ledger/types.ts';
import type { Registry, Site } from '../registry/registry.ts';

export type Verdict = 'verified' | 'face_mismatch' | 'no_face' | 'unverified';

/** One accepted check-in with its face verdict (when verification has run). */
export interface CheckinFact {
  seq: number;
  id: string;
  siteId: string;
  deviceId: string;
  workerId: string;
  ts: number;
  receivedAt: number;
  direction: 'in' | 'out';
  method: string;
  terminalScore?: number;
  photoSha256?: string;
  verdict: Verdict;
  similarity?: number;
  /** A `face` check-in whose verdict is not recorded yet (verification still queued). */
  awaitingVerdict?: boolean;
}

/** The site's working calendar (domain.md "Calendar"): weekdays, holidays, 调休 extra workdays. */
export class WorkCalendar {
  readonly cal: SiteCalendar;
  private readonly workdays: Set<number>;
  private readonly holidays: Set<string>;
  private readonly extra: Set<string>;

  constructor(site: Site) {
    this.cal = SiteCalendar.of(site.timezone);
    this.workdays = new Set(site.workdays);
    this.holidays = new Set(site.holidays);
    this.extra = new Set(site.settings.extraWorkdays ?? []);
  }

  isWorkingDay(day: string): boolean {
    if (this.extra.has(day)) return true;
    if (this.holidays.has(day)) return false;
    return this.workdays.has(SiteCalendar.isoWeekday(day));
  }

  workingDays(month: string): string[] {
    return SiteCalendar.daysOfMonth(month).filter((d) => this.isWorkingDay(d));
  }

  /** [start, end) of a month in epoch ms. */
  monthRange(month: string): [number, number] {
    return [this.cal.startOfDay(`${month}-01`), this.cal.startOfDay(`${SiteCalendar.addMonths(month, 1)}-01`)];
  }
}

/** Check-ins of a site with event time in [from, to), by event time, each with its latest verdict. */
export async function checkinFacts(ledger: LedgerReads, siteId: string, from: number, to: number): Promise<CheckinFact[]> {
  // Verdicts are stamped with their check-in's event time, so the same range finds them.
  const verdicts = await ledger.bySiteKind(siteId, 'verdict', from, to);
  return withVerdicts(await ledger.bySiteKind(siteId, 'checkin', from, to), verdicts);
}

/** Check-ins as facts, each with its latest verdict (a verdict names its check-in's dedupe key). */
export function withVerdicts(checkins: StoredRecord[], verdicts: StoredRecord[]): CheckinFact[] {
  const byCheckin = new Map<string, StoredRecord>();
  for (const v of verdicts) byCheckin.set(v.body.checkinKey as string, v);
  return checkins.map((r) => toFact(r, byCheckin.get(r.dedupeKey)));
}

/** One worker's check-ins of a site in [from, to), with verdicts: by the worker index, not the site's month. */
export async function workerCheckinFacts(ledger: LedgerReads, siteId: string, workerId: string, from: number, to: number): Promise<CheckinFact[]> {
  const verdicts = await ledger.byWorker(siteId, 'verdict', workerId, from, to);
  return withVerdicts(await ledger.byWorker(siteId, 'checkin', workerId, from, to), verdicts);
}

export function toFact(r: StoredRecord, verdict?: StoredRecord): CheckinFact {
  const b = r.body as Record<string, unknown>;
  const v = verdict?.body as { verdict?: Verdict; similarity?: number } | undefined;
  return {
    seq: r.seq, id: r.msgId, siteId: r.siteId, deviceId: r.deviceId, workerId: b.workerId as string, ts: r.ts, receivedAt: r.receivedAt,
    direction: b.direction as 'in' | 'out', method: b.method as string,
    ...(b.terminalScore !== undefined ? { terminalScore: b.terminalScore as number } : {}),
    ...(b.photoSha256 ? { photoSha256: b.photoSha256 as string } : {}),
    verdict: v?.verdict ?? 'unverified', ...(v?.similarity !== undefined ? { similarity: v.similarity } : {}),
    ...(!verdict && b.method === 'face' ? { awaitingVerdict: true } : {}),
  };
}

/**
 * A check-in counts as presence unless face verification found someone else's face
 * (domain.md: `face_mismatch` is evidence of a proxy check-in; `no_face` still counts).
 */
export const countsAsPresence = (c: CheckinFact) => c.verdict !== 'face_mismatch';

export interface WorkerDays {
  /** Present local days, sorted. */
  days: string[];
  /** Hours on site per day: the sum of in→out intervals within the day. */
  hoursByDay: Map<string, number>;
}

/** Presence per worker from check-ins (any order). */
export function presence(facts: CheckinFact[], cal: SiteCalendar): Map<string, WorkerDays> {
  const byWorkerDay = new Map<string, Map<string, CheckinFact[]>>();
  for (const f of facts) {
    if (!countsAsPresence(f)) continue;
    const day = cal.localDay(f.ts);
    let days = byWorkerDay.get(f.workerId);
    if (!days) byWorkerDay.set(f.workerId, (days = new Map()));
    let list = days.get(day);
    if (!list) days.set(day, (list = []));
    list.push(f);
  }
  const out = new Map<string, WorkerDays>();
  for (const [workerId, days] of byWorkerDay) {
    const hoursByDay = new Map<string, number>();
    for (const [day, list] of days) hoursByDay.set(day, hoursOnSite(list));
    out.set(workerId, { days: [...days.keys()].sort(), hoursByDay });
  }
  return out;
}

/** Sum of in→out intervals; an `in` with no later `out` adds nothing, a repeated `in` keeps the first. */
export function hoursOnSite(list: CheckinFact[]): number {
  const sorted = [...list].sort((a, b) => a.ts - b.ts || a.seq - b.seq);
  let open: number | null = null;
  let ms = 0;
  for (const c of sorted) {
    if (c.direction === 'in') open ??= c.ts;
    else if (open !== null) {
      ms += c.ts - open;
      open = null;
    }
  }
  return ms / 3_600_000;
}

export interface WorkerAttendance {
  workerId: string;
  keyRole?: KeyRole;
  days: string[];
  daysPresent: number;
  hours: number;
  /** Key staff: present working days ÷ working days of the month. */
  rate?: number;
  presentWorkingDays?: number;
}

export interface MonthAttendance {
  siteId: string;
  month: string;
  timezone: string;
  workingDays: number;
  workers: WorkerAttendance[];
}

/** Contract §2 `GET /sites/{siteId}/attendance?month=`: every registered worker, zero days included. */
export async function monthAttendance(registry: Pick<Registry, 'listWorkers'>, ledger: LedgerReads, site: Site, month: string): Promise<MonthAttendance> {
  const wc = new WorkCalendar(site);
  const [from, to] = wc.monthRange(month);
  const working = new Set(wc.workingDays(month));
  const present = presence(await checkinFacts(ledger, site.siteId, from, to), wc.cal);
  const round = (h: number) => Math.round(h * 100) / 100;
  const workers = registry.listWorkers(site.siteId).sort((a, b) => (a.workerId < b.workerId ? -1 : 1)).map((w) => {
    const p = present.get(w.workerId);
    const days = p?.days ?? [];
    const hours = round([...(p?.hoursByDay.values() ?? [])].reduce((a, h) => a + h, 0));
    const base: WorkerAttendance = { workerId: w.workerId, ...(w.keyRole ? { keyRole: w.keyRole } : {}), days, daysPresent: days.length, hours };
    if (!w.keyRole) return base;
    const presentWorkingDays = days.filter((d) => working.has(d)).length;
    return { ...base, presentWorkingDays, rate: working.size ? Math.round((presentWorkingDays / working.size) * 10_000) / 10_000 : 0 };
  });
  return { siteId: site.siteId, month, timezone: site.timezone, workingDays: working.size, workers };
}
