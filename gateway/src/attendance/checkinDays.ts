import { toFact, withVerdicts, type CheckinFact, type Verdict } from './attendance.ts';
import { SiteCalendar } from '../calendar/siteCalendar.ts';
import type { LedgerReads } from '../ledger/ledgerQueries.ts';
import type { MaybePromise, StoredRecord } from '../ledger/types.ts';


/** One local day of a site: its check-ins with their latest verdicts, by dedupe key and by worker. */
interface DayFacts {
  facts: Map<string, CheckinFact>;
  byWorker: Map<string, string[]>;
}

/**
 * Check-ins (with their face verdicts) per site and local day, kept incrementally: a day is read
 * from the ledger once, by its (site, kind, ts) index — a read bounded by one day's check-ins,
 * never by the site's history — and then kept up to date from the records the owner hands in.
 * What a check asks of a month is then a lookup per day instead of a month-wide scan on the
 * event loop (issue 16). The most recently used `maxDays` site-days are kept.
 *
 * Applying a record twice (a day read that already saw it, then the record itself) changes
 * nothing: facts are keyed by the check-in's dedupe key, and a verdict replaces its fields.
 */
export class CheckinDays {
  private readonly days = new Map<string, DayFacts>();

  constructor(
    private readonly ledger: LedgerReads,
    private readonly calendarOf: (siteId: string) => SiteCalendar | undefined,
    /**
     * `maxDays`: site-days kept (the most recently used). `owns` (region mode with shards): the
     * sites whose records the owner hands in; another site's day (a key person's other site) is
     * read from the ledger each time it is asked for, never kept: its records go to another shard,
     * so a kept copy would go stale.
     */
    private readonly o: { maxDays?: number; owns?: (siteId: string) => boolean } = {},
  ) {}

  /** Keeps the cached days current with committed check-ins and verdicts (any order, repeats harmless). */
  apply(records: StoredRecord[]): void {
    for (const r of records) {
      if (r.kind !== 'checkin' && r.kind !== 'verdict') continue;
      const cal = this.calendarOf(r.siteId);
      if (!cal) continue;
      const d = this.days.get(key(r.siteId, cal, cal.localDay(r.ts)));
      if (!d) continue; // read from the ledger, this record included, when first asked for
      if (r.kind === 'checkin') add(d, toFact(r));
      else verdict(d, r);
    }
  }

  /** A worker's check-ins of a local day, by event time. */
  worker(siteId: string, cal: SiteCalendar, day: string, workerId: string): CheckinFact[] {
    const d = this.day(siteId, cal, day);
    const keys = d.byWorker.get(workerId);
    if (!keys) return [];
    return keys.map((k) => d.facts.get(k)!).sort(byTime);
  }

  /**
   * The same, read from the ledger now rather than from the kept day: what every shard sees alike
   * (region mode), for a decision that spans sites of different shards.
   */
  workerNow(siteId: string, cal: SiteCalendar, day: string, workerId: string): CheckinFact[] {
    const from = cal.startOfDay(day);
    const to = cal.startOfDay(SiteCalendar.addDays(day, 1));
    // The worker's own check-ins and verdicts, by the ledger's worker indexes: not the site's day.
    const [verdicts, checkins] = loaded(siteId, day, [
      this.ledger.byWorker(siteId, 'verdict', workerId, from, to),
      this.ledger.byWorker(siteId, 'checkin', workerId, from, to),
    ]);
    return withVerdicts(checkins, verdicts).sort(byTime);
  }

  /** Workers with at least one check-in on a local day. */
  workers(siteId: string, cal: SiteCalendar, day: string): string[] {
    return [...this.day(siteId, cal, day).byWorker.keys()];
  }

  private day(siteId: string, cal: SiteCalendar, day: string): DayFacts {
    const k = key(siteId, cal, day);
    let d = this.days.get(k);
    if (d) {
      this.days.delete(k); // most recently used last
      this.days.set(k, d);
      return d;
    }
    d = this.read(siteId, cal, day);
    if (this.o.owns && !this.o.owns(siteId)) return d;
    this.days.set(k, d);
    while (this.days.size > (this.o.maxDays ?? 400)) this.days.delete(this.days.keys().next().value!);
    return d;
  }

  /** A site's local day as the ledger has it now, verdicts applied. */
  private read(siteId: string, cal: SiteCalendar, day: string): DayFacts {
    const d: DayFacts = { facts: new Map(), byWorker: new Map() };
    const from = cal.startOfDay(day);
    const to = cal.startOfDay(SiteCalendar.addDays(day, 1));
    // Verdicts first, as checkinFacts reads them. A ledger whose reads answer later (PostgreSQL)
    // cannot serve this synchronous read: the check context's `stepReads` answer it there.
    const [verdicts, checkins] = loaded(siteId, day, [this.ledger.bySiteKind(siteId, 'verdict', from, to), this.ledger.bySiteKind(siteId, 'checkin', from, to)]);
    for (const f of withVerdicts(checkins, verdicts)) add(d, f);
    return d;
  }

}

const key = (siteId: string, cal: SiteCalendar, day: string) => `${siteId}|${cal.timeZone}|${day}`;

const byTime = (a: CheckinFact, b: CheckinFact) => a.ts - b.ts || a.seq - b.seq;

/** Reads answered at once; a ledger whose reads answer later cannot serve the synchronous step. */
function loaded(siteId: string, day: string, reads: MaybePromise<StoredRecord[]>[]): StoredRecord[][] {
  if (reads.every((r): r is StoredRecord[] => !(r instanceof Promise))) return reads;
  for (const p of reads) if (p instanceof Promise) p.catch(() => {});
  throw new Error(`check-ins of ${siteId} on ${day} are not loaded, and this ledger answers reads later: they must be loaded before the synchronous step`);
}

function add(d: DayFacts, f: CheckinFact): void {
  const k = `${f.deviceId}/${f.id}`;
  if (d.facts.has(k)) return;
  d.facts.set(k, f);
  let list = d.byWorker.get(f.workerId);
  if (!list) d.byWorker.set(f.workerId, (list = []));
  list.push(k);
}

function verdict(d: DayFacts, v: StoredRecord): void {
  const k = v.body.checkinKey as string;
  const f = d.facts.get(k);
  if (!f) return;
  const b = v.body as { verdict?: Verdict; similarity?: number };
  const { awaitingVerdict: _a, similarity: _s, ...rest } = f;
  d.facts.set(k, { ...rest, verdict: b.verdict ?? 'unverified', ...(b.similarity !== undefined ? { similarity: b.similarity } : {}) });
}
