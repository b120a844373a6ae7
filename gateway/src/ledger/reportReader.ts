import type { Worker as Thread } from 'node:worker_threads';
import type { MonthAttendance } from '../attendance/attendance.ts';
import type { WageCheckReport } from '../checks/wages/findings.ts';
import type { WorkerEvidence } from '../evidence/workerEvidence.ts';
import type { Registry, Site, Worker } from '../registry/registry.ts';
import { startWorker } from '../util/startWorker.ts';

/** What the report thread computes; each request carries the registry facts it needs. */
export type ReportRequest =
  | { op: 'attendance'; site: Site; workers: Worker[]; month: string }
  | { op: 'evidence'; site: Site; workerId: string; month: string }
  | { op: 'wageCheck'; site: Site; sites: Site[]; workers: Worker[]; month: string; asOf: number }
  | { op: 'monthDigests'; site: Site; month: string; workerIds: string[] };

export type ReportReply = { id: number; result?: unknown; error?: string };

export interface MonthDigests {
  checkins: number;
  digests: Record<string, { root: string; rows: number }>;
}

/**
 * Reports that must read a month of the ledger — attendance, a worker's evidence, the wage check,
 * the digests recorded at month close — computed on a thread of their own (reportWorker.ts, its
 * own read-only SQLite connection), so ingest, PUBACKs and /healthz never wait for them
 * (issue 16). Requests are answered in order; what crosses back is the report, not the rows.
 */
export class ReportReader {
  private readonly thread: Thread;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private closed = false;

  constructor(dbFile: string, private readonly registry: Pick<Registry, 'listSites' | 'listWorkers'>) {
    this.thread = startWorker(new URL('./reportWorker.ts', import.meta.url), { dbFile });
    this.thread.on('message', (m: ReportReply) => {
      const w = this.waiting.get(m.id);
      if (!w) return;
      this.waiting.delete(m.id);
      if (m.error !== undefined) w.reject(new Error(`report failed: ${m.error}`));
      else w.resolve(m.result);
    });
    this.thread.on('error', (e) => this.failAll(e));
    this.thread.on('exit', (code) => this.failAll(new Error(`report reader exited with code ${code}`)));
    this.thread.unref();
  }

  attendance(site: Site, month: string): Promise<MonthAttendance> {
    return this.call({ op: 'attendance', site, workers: this.registry.listWorkers(site.siteId), month });
  }

  evidence(site: Site, workerId: string, month: string): Promise<WorkerEvidence> {
    return this.call({ op: 'evidence', site, workerId, month });
  }

  /** The wage check reads card holders across every site (a card may be shared across sites). */
  wageCheck(site: Site, month: string, asOf: number): Promise<WageCheckReport> {
    const sites = this.registry.listSites();
    return this.call({ op: 'wageCheck', site, sites, workers: sites.flatMap((s) => this.registry.listWorkers(s.siteId)), month, asOf });
  }

  monthDigests(site: Site, month: string, workerIds: string[]): Promise<MonthDigests> {
    return this.call({ op: 'monthDigests', site, month, workerIds });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.thread.terminate();
    this.failAll(new Error('report reader closed'));
  }

  private call<T>(req: ReportRequest): Promise<T> {
    if (this.closed) return Promise.reject(new Error('report reader closed'));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.thread.postMessage({ id, req });
    });
  }

  private failAll(e: Error): void {
    for (const w of this.waiting.values()) w.reject(e);
    this.waiting.clear();
  }
}
