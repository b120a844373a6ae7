import type { Audit } from '../../state/types.ts';
import { SiteCalendar } from '../../calendar/siteCalendar.ts';
import { checkTransaction, type CheckFactory } from '../check.ts';
import { MonthlyDecisionCheck } from '../monthlyDecisions.ts';
import type { StoredRecord } from '../../ledger/types.ts';
import type { Site } from '../../registry/registry.ts';
import { DIGEST_FORMAT } from '../../evidence/digest.ts';
import type { MonthDigests } from '../../ledger/reportReader.ts';
import { buildWorkerEvidence, monthCheckins } from '../../evidence/workerEvidence.ts';

export const DIGEST_ENTRY = 'evidence.month_closed';
export const digestSubject = (siteId: string, month: string) => `evidence:${siteId}:${month}`;


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
export function recordedDigest(audit: Audit, siteId: string, month: string, workerId: string): RecordedDigest | undefined {
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
export class EvidenceMonthClose extends MonthlyDecisionCheck {
  readonly name = 'evidence-digests';
  /** What `monthOf` reads: readings and the rest never make a month dirty, so they pass by. */
  readonly kinds = ['checkin', 'verdict'] as const;

  protected monthOf(r: StoredRecord, site: Site): string | undefined {
    return r.kind === 'checkin' || r.kind === 'verdict' ? SiteCalendar.of(site.timezone).localMonth(r.ts) : undefined;
  }

  /** A month closes when the watermark enters the next one. */
  protected latestDue(site: Site, watermark: number): string {
    return SiteCalendar.addMonths(SiteCalendar.of(site.timezone).localMonth(watermark), -1);
  }

  protected decideMonth(site: Site, month: string, watermark: number): Promise<void> {
    return this.record(site, month, watermark);
  }

  /** Records (site, month) unless the latest entry already holds the same roots; skips months with no check-in at all. */
  private async record(site: Site, month: string, watermark: number): Promise<void> {
    const { audit, registry } = this.ctx;
    const subject = digestSubject(site.siteId, month);
    const workerIds = registry.listWorkers(site.siteId).map((w) => w.workerId).sort((a, b) => (a < b ? -1 : 1));
    // Every worker's month is read and hashed on the report thread: never month-wide on the event loop.
    const { checkins, digests } = await this.digests(site, month, workerIds);
    const entries = audit.bySubject(subject);
    const last = entries[entries.length - 1]?.data as unknown as ClosedEntry | undefined;
    if (!last && checkins === 0) return;
    const workers: ClosedEntry['workers'] = {};
    for (const id of workerIds) workers[id] = digests[id]!;
    const cal = SiteCalendar.of(site.timezone);
    if (last && Object.keys(workers).length === Object.keys(last.workers).length
      && Object.entries(workers).every(([id, d]) => last.workers[id]?.root === d.root)) return;
    const closedAt = new Date(cal.startOfDay(`${SiteCalendar.addMonths(month, 1)}-01`)).toISOString();
    const revision = (last?.revision ?? 0) + 1;
    checkTransaction(this.ctx, () => audit.append(DIGEST_ENTRY, subject, { siteId: site.siteId, month, format: DIGEST_FORMAT, closedAt, watermark: new Date(watermark).toISOString(), revision, workers }, this.ctx.now()));
    this.ctx.logger.info({ siteId: site.siteId, month, revision, workers: Object.keys(workers).length }, 'evidence digests recorded in the audit trail');
  }

  private async digests(site: Site, month: string, workerIds: string[]): Promise<MonthDigests> {
    if (this.ctx.reports) return this.ctx.reports.monthDigests(site, month, workerIds);
    const { cal, facts } = await monthCheckins(this.ctx.ledger, site, month);
    const digests: MonthDigests['digests'] = {};
    for (const id of workerIds) digests[id] = buildWorkerEvidence(site, cal, id, month, facts).digest;
    return { checkins: facts.length, digests };
  }
}

export const evidenceMonthClose: CheckFactory = (ctx) => new EvidenceMonthClose(ctx);
