/**
 * The report reader's thread: month-wide reads of the ledger (attendance, evidence, wage checks,
 * month-close digests) on a read-only connection of its own (SQLite; or PostgreSQL in region mode), so the event loop that answers
 * PUBACKs and /healthz never waits for them (issue 16). Each request carries the registry facts
 * it needs (sites, workers), so this thread reads nothing but the ledger. API answers leave here
 * as their final body: shaped, validated against the response schema and serialised
 * (api/reportBodies.ts). Protocol: util/workerRpc.ts.
 */
import Database from 'better-sqlite3';
import { attendanceBody, evidenceBody, wageCheckBody } from '../api/reportBodies.ts';
import { attendanceCsv, wageCheckCsv } from '../api/reportCsv.ts';
import { monthAttendance } from '../attendance/attendance.ts';
import { wageCheckReport } from '../checks/wages/findings.ts';
import { buildWorkerEvidence, monthCheckins, workerEvidence } from '../evidence/workerEvidence.ts';
import type { Site, Worker } from '../registry/registry.ts';
import { serveRpc } from '../util/workerRpc.ts';
import { LedgerQueries, type LedgerReads } from './ledgerQueries.ts';
import { PgSyncReads } from './pg/pgSyncReads.ts';
import type { EvidenceAnswer, MonthDigests, ReportRequest, ReportSource, WageCheckCsv } from './reportReader.ts';
import { SyncPg } from '../state/pg/syncPg.ts';

let queries: LedgerReads;
let close: () => void;

/** The registry as the report functions see it, from the facts the request carried. */
function registryOf(sites: Site[], workers: Worker[]) {
  const bySite = new Map<string, Worker[]>();
  for (const w of workers) {
    let l = bySite.get(w.siteId);
    if (!l) bySite.set(w.siteId, (l = []));
    l.push(w);
  }
  return { listSites: () => sites, listWorkers: (siteId: string) => bySite.get(siteId) ?? [] };
}

async function monthDigests(site: Site, month: string, workerIds: string[]): Promise<MonthDigests> {
  const { cal, facts } = await monthCheckins(queries, site, month);
  const byWorker = new Map<string, typeof facts>();
  for (const f of facts) {
    let l = byWorker.get(f.workerId);
    if (!l) byWorker.set(f.workerId, (l = []));
    l.push(f);
  }
  const digests: MonthDigests['digests'] = {};
  for (const id of workerIds) digests[id] = buildWorkerEvidence(site, cal, id, month, byWorker.get(id) ?? []).digest;
  return { checkins: facts.length, digests };
}

void serveRpc<ReportRequest, unknown, ReportSource>({
  init(source) {
    if ('pgUrl' in source) {
      // Blocking reads are fine here: this thread serves one report at a time and nothing else.
      const connection = new SyncPg({ url: source.pgUrl, applicationName: 'sitegate-reports', timeoutMs: 60_000 });
      queries = new PgSyncReads(connection);
      close = () => connection.close();
      return;
    }
    const db = new Database(source.dbFile, { readonly: true, fileMustExist: true });
    db.pragma('busy_timeout = 5000');
    queries = new LedgerQueries(db);
    close = () => db.close();
  },
  // Async handlers, answered in order all the same: LedgerQueries answers at once.
  async handle(req) {
    switch (req.op) {
      case 'attendanceBody':
        return attendanceBody(await monthAttendance(registryOf([req.site], req.workers), queries, req.site, req.month));
      case 'attendanceCsv':
        return attendanceCsv(await monthAttendance(registryOf([req.site], req.workers), queries, req.site, req.month), req.workers, req.lang);
      case 'evidenceBody': {
        const e = await workerEvidence(queries, req.site, req.workerId, req.month);
        return { root: e.digest.root, body: evidenceBody(e, req.context) } satisfies EvidenceAnswer;
      }
      case 'wageCheck':
        return wageCheckReport(registryOf(req.sites, req.workers), queries, req.site, req.month, req.asOf);
      case 'wageCheckBody':
        return wageCheckBody(await wageCheckReport(registryOf(req.sites, req.workers), queries, req.site, req.month, req.asOf));
      case 'wageCheckCsv': {
        const r = await wageCheckReport(registryOf(req.sites, req.workers), queries, req.site, req.month, req.asOf);
        return { body: wageCheckCsv(r, req.workers, req.lang), pending: r.pending } satisfies WageCheckCsv;
      }
      case 'monthDigests':
        return monthDigests(req.site, req.month, req.workerIds);
    }
  },
  close() {
    close();
  },
});
