import type { AuditTrail } from '../audit/auditTrail.ts';
import { SiteCalendar } from '../calendar/siteCalendar.ts';
import type { Check, CheckContext, CheckFactory } from '../checks/check.ts';
import type { StoredRecord } from '../ledger/types.ts';
import type { Site } from '../registry/registry.ts';
import { DIGEST_FORMAT } from './digest.ts';
import { buildWorkerEvidence, monthCheckins } from './workerEvidence.ts';

export const DIGEST_ENTRY = 'evidence.month_closed';
export const digestSubject = (siteId: string, month: string) => `evidence:${siteId}:${month}`;

/** On a (re)start, months this far back that closed while the gateway was not running are recorded then. */
export const LOOKBACK_MONTHS = 12;
const DEFAULT_LATENESS_S = 600;

export interface RecordedDigest {
  root: string;
  rows: number;
  revision: number;
  closedAt: string;
  recordedAt: string;
  auditSeq: number;
  auditHash: string;
}

interface ClosedEntry {
  revision: number;
  closedAt: string;
  workers: Record<string, { root: string; rows: number }>;
}

/** The latest digest of (site, month) recorded in the tamper-evident history, per worker. */
export function recordedDigest(audit: AuditTrail, siteId: string, month: string, workerId: string): RecordedDigest | undefined {
  const entries = audit.bySubject(digestSubject(siteId, month));
  const last = entries[entries.length - 1];
  if (!last) return undefined;
  const data = last.data as unknown as ClosedEntry;
  const w = data.workers[workerId];
  if (!w) return undefined;
  return { root: w.root, rows: w.rows, revision: data.revision, closedAt: data.closedAt, recordedAt: new Date(last.at).toISOString(), auditSeq: last.seq, auditHash: last.hash };
}

/**
 * Records each registered worker's evidence digest root in the audit trail (the hash-chained
 * history) when a site's month closes: when its event-time watermark passes the end of the month
 * (domain.md "Time-triggered decisions"; never the wall clock alone). One entry per site and month,
 * `evidence.month_closed`, with every worker's root and row count. Check-ins or verdicts of a
 * closed month arriving later re-record it as a new revision when any root changed, so the
 * history shows both what was attested at the close and what changed after.
 */
export class EvidenceMonthClose implements Check {
  readonly name = 'evidence-digests';
  private readonly closedThrough = new Map<string, string>();
  private readonly dirty = new Map<string, Set<string>>();

  constructor(private readonly ctx: CheckContext) {}

  private cal(site: Site): SiteCalendar {
    return SiteCalendar.of(site.timezone);
  }

  onRecords(records: StoredRecord[]): void {
    for (const r of records) {
      if (r.kind !== 'checkin' && r.kind !== 'verdict') continue;
      const through = this.closedThrough.get(r.siteId);
      const site = through && this.ctx.registry.site(r.siteId);
      if (!site) continue;
      const month = this.cal(site).localMonth(r.ts);
      if (month > through) continue;
      let s = this.dirty.get(r.siteId);
      if (!s) this.dirty.set(r.siteId, (s = new Set()));
      s.add(month);
    }
  }

  tick(now: number): void {
    for (const site of this.ctx.registry.listSites()) {
      const watermark = this.ctx.live.watermark(site.siteId, now, (site.settings.lateness ?? DEFAULT_LATENESS_S) * 1000);
      if (watermark === undefined) continue;
      const latest = SiteCalendar.addMonths(this.cal(site).localMonth(watermark), -1);
      const redo = this.dirty.get(site.siteId);
      this.dirty.delete(site.siteId);
      for (const month of redo ?? []) this.record(site, month, watermark);
      const through = this.closedThrough.get(site.siteId);
      if (through && latest <= through) continue;
      for (let m = through ? SiteCalendar.addMonths(through, 1) : SiteCalendar.addMonths(latest, 1 - LOOKBACK_MONTHS); m <= latest; m = SiteCalendar.addMonths(m, 1)) {
        this.record(site, m, watermark);
      }
      this.closedThrough.set(site.siteId, latest);
    }
  }

  /** Records (site, month) unless the latest entry already holds the same roots; skips months with no check-in at all. */
  private record(site: Site, month: string, watermark: number): void {
    const { audit, ledger, registry } = this.ctx;
    const subject = digestSubject(site.siteId, month);
    const entries = audit.bySubject(subject);
    const last = entries[entries.length - 1]?.data as unknown as ClosedEntry | undefined;
    const { cal, facts } = monthCheckins(ledger, site, month);
    if (!last && facts.length === 0) return;
    const byWorker = new Map<string, typeof facts>();
    for (const f of facts) {
      let l = byWorker.get(f.workerId);
      if (!l) byWorker.set(f.workerId, (l = []));
      l.push(f);
    }
    const workers: ClosedEntry['workers'] = {};
    for (const w of registry.listWorkers(site.siteId).sort((a, b) => (a.workerId < b.workerId ? -1 : 1))) {
      const e = buildWorkerEvidence(site, cal, w.workerId, month, byWorker.get(w.workerId) ?? []);
      workers[w.workerId] = e.digest;
    }
    if (last && Object.keys(workers).length === Object.keys(last.workers).length
      && Object.entries(workers).every(([id, d]) => last.workers[id]?.root === d.root)) return;
    const closedAt = new Date(cal.startOfDay(`${SiteCalendar.addMonths(month, 1)}-01`)).toISOString();
    const revision = (last?.revision ?? 0) + 1;
    audit.append(DIGEST_ENTRY, subject, { siteId: site.siteId, month, format: DIGEST_FORMAT, closedAt, watermark: new Date(watermark).toISOString(), revision, workers }, this.ctx.now());
    this.ctx.logger.info({ siteId: site.siteId, month, revision, workers: Object.keys(workers).length }, 'evidence digests recorded in the audit trail');
  }
}

export const evidenceMonthClose: CheckFactory = (ctx) => new EvidenceMonthClose(ctx);
