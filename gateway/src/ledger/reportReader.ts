import type { Logger } from 'pino';
import type { EvidenceContext } from '../api/reportBodies.ts';
import type { WageCheckReport } from '../checks/wages/findings.ts';
import type { Lang } from '../i18n/lang.ts';
import type { Registry, Site, Worker } from '../registry/registry.ts';
import { RpcWorker } from '../util/workerRpc.ts';

/**
 * What the report thread computes; each request carries the registry facts it needs. The `…Body`
 * operations answer an API response body, already validated and serialised (api/reportBodies.ts).
 */
export type ReportRequest =
  | { op: 'attendanceBody'; site: Site; workers: Worker[]; month: string }
  | { op: 'attendanceCsv'; site: Site; workers: Worker[]; month: string; lang: Lang }
  | { op: 'evidenceBody'; site: Site; workerId: string; month: string; context: EvidenceContext }
  | { op: 'wageCheck' | 'wageCheckBody'; site: Site; sites: Site[]; workers: Worker[]; month: string; asOf: number }
  | { op: 'wageCheckCsv'; site: Site; sites: Site[]; workers: Worker[]; month: string; asOf: number; lang: Lang }
  | { op: 'monthDigests'; site: Site; month: string; workerIds: string[] };

export interface MonthDigests {
  checkins: number;
  digests: Record<string, { root: string; rows: number }>;
}

/** The wage check as a spreadsheet, and the kinds not decided yet (which have no rows). */
export interface WageCheckCsv {
  body: string;
  pending: string[];
}

/** A worker's evidence as the route sends it, and the digest root it carries in a header. */
export interface EvidenceAnswer {
  root: string;
  body: string;
}

/** Where the report thread reads the ledger: the SQLite file (read-only), or PostgreSQL. */
export type ReportSource = { dbFile: string } | { pgUrl: string };

const WORKER_URL = new URL('./reportWorker.ts', import.meta.url);

/**
 * Reports that must read a month of the ledger — attendance, a worker's evidence, the wage check,
 * the digests recorded at month close — computed on a thread of their own (reportWorker.ts, its
 * own read-only SQLite connection), so ingest, PUBACKs and /healthz never wait for them
 * (issue 16). What crosses back is the report or the response body, not the rows. The thread
 * speaks util/workerRpc.ts; one that died (or failed to start) is started again on the next
 * request, and only the requests in flight when it died fail.
 */
export class ReportReader {
  private running: Promise<RpcWorker<ReportRequest, unknown>> | null = null;
  private current: RpcWorker<ReportRequest, unknown> | null = null;
  private closed = false;

  constructor(
    /** The SQLite ledger's file, or the PostgreSQL database (region mode). */
    private readonly source: ReportSource,
    private readonly registry: Pick<Registry, 'listSites' | 'listWorkers'>,
    private readonly logger?: Pick<Logger, 'warn'>,
  ) {
    // Started now, so the first report does not wait for the thread to boot; a failure is retried on use.
    this.thread().catch(() => undefined);
  }

  /** Contract §2 attendance of a month, as the response body. */
  attendanceBody(site: Site, month: string): Promise<string> {
    return this.call({ op: 'attendanceBody', site, workers: this.registry.listWorkers(site.siteId), month });
  }

  /** The same as a CSV (UTF-8 with BOM) in `lang`. */
  attendanceCsv(site: Site, month: string, lang: Lang): Promise<string> {
    return this.call({ op: 'attendanceCsv', site, workers: this.registry.listWorkers(site.siteId), month, lang });
  }

  evidenceBody(site: Site, workerId: string, month: string, context: EvidenceContext): Promise<EvidenceAnswer> {
    return this.call({ op: 'evidenceBody', site, workerId, month, context });
  }

  /** The wage check reads card holders across every site (a card may be shared across sites). */
  wageCheck(site: Site, month: string, asOf: number): Promise<WageCheckReport> {
    return this.call({ op: 'wageCheck', ...this.wageFacts(site, month, asOf) });
  }

  wageCheckBody(site: Site, month: string, asOf: number): Promise<string> {
    return this.call({ op: 'wageCheckBody', ...this.wageFacts(site, month, asOf) });
  }

  wageCheckCsv(site: Site, month: string, asOf: number, lang: Lang): Promise<WageCheckCsv> {
    return this.call({ op: 'wageCheckCsv', ...this.wageFacts(site, month, asOf), lang });
  }

  monthDigests(site: Site, month: string, workerIds: string[]): Promise<MonthDigests> {
    return this.call({ op: 'monthDigests', site, month, workerIds });
  }

  /** The running thread: started on first use and again after it died. */
  thread(): Promise<RpcWorker<ReportRequest, unknown>> {
    if (this.closed) return Promise.reject(new Error('report reader closed'));
    // `alive` as well as onDeath: a thread whose exit is not reported yet is not handed out.
    if (this.running && (!this.current || this.current.alive)) return this.running;
    this.current = null;
    const starting = RpcWorker.start<ReportRequest, unknown>(WORKER_URL, { name: 'report', data: this.source }).then((rpc) => {
      // Reports never keep the process alive on their own (the HTTP server and the broker do).
      rpc.worker.unref();
      rpc.onDeath((err) => {
        if (this.running === starting) this.running = null;
        this.logger?.warn({ err }, 'report thread died; the next report starts a new one');
      });
      if (this.closed) {
        void rpc.close();
        throw new Error('report reader closed');
      }
      if (this.running === starting) this.current = rpc;
      return rpc;
    });
    starting.catch(() => { if (this.running === starting) this.running = null; });
    this.running = starting;
    return starting;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const running = this.running;
    this.running = null;
    const rpc = await running?.catch(() => undefined);
    await rpc?.close();
  }

  private wageFacts(site: Site, month: string, asOf: number) {
    const sites = this.registry.listSites();
    return { site, sites, workers: sites.flatMap((s) => this.registry.listWorkers(s.siteId)), month, asOf };
  }

  private async call<T>(req: ReportRequest): Promise<T> {
    const rpc = await this.thread();
    return (await rpc.call(req)) as T;
  }
}
