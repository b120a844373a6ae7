/**
 * The report reader's thread: month-wide reads of the ledger (attendance, evidence, wage checks,
 * month-close digests) on a read-only connection of its own, so the event loop that answers
 * PUBACKs and /healthz never waits for them (issue 16). Each request carries the registry facts
 * it needs (sites, workers), so this thread reads nothing but the ledger.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { monthAttendance } from '../attendance/attendance.ts';
import { wageCheckReport } from '../checks/wages/findings.ts';
import { buildWorkerEvidence, monthCheckins, workerEvidence } from '../evidence/workerEvidence.ts';
import type { Site, Worker } from '../registry/registry.ts';
import { LedgerQueries } from './ledger.ts';
import type { ReportReply, ReportRequest } from './reportReader.ts';

const { dbFile } = workerData as { dbFile: string };
const db = new Database(dbFile, { readonly: true, fileMustExist: true });
db.pragma('busy_timeout = 5000');
const queries = new LedgerQueries(db);

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

function run(req: ReportRequest): unknown {
  switch (req.op) {
    case 'attendance':
      return monthAttendance(registryOf([req.site], req.workers), queries, req.site, req.month);
    case 'evidence':
      return workerEvidence(queries, req.site, req.workerId, req.month);
    case 'wageCheck':
      return wageCheckReport(registryOf(req.sites, req.workers), queries, req.site, req.month, req.asOf);
    case 'monthDigests': {
      const { cal, facts } = monthCheckins(queries, req.site, req.month);
      const byWorker = new Map<string, typeof facts>();
      for (const f of facts) {
        let l = byWorker.get(f.workerId);
        if (!l) byWorker.set(f.workerId, (l = []));
        l.push(f);
      }
      const digests: Record<string, { root: string; rows: number }> = {};
      for (const id of req.workerIds) digests[id] = buildWorkerEvidence(req.site, cal, id, req.month, byWorker.get(id) ?? []).digest;
      return { checkins: facts.length, digests };
    }
  }
}

parentPort!.on('message', (m: { id: number; req: ReportRequest } | { close: true }) => {
  if ('close' in m) {
    db.close();
    parentPort!.close();
    return;
  }
  let reply: ReportReply;
  try {
    reply = { id: m.id, result: run(m.req) };
  } catch (e) {
    reply = { id: m.id, error: (e as Error).stack ?? String(e) };
  }
  parentPort!.postMessage(reply);
});
