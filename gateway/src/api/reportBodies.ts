import { z } from 'zod';
import { Attendance } from '../../../schemas/src/api.ts';
import { WageCheck, WorkerEvidence as WorkerEvidenceBody } from '../../../schemas/src/audit.ts';
import type { MonthAttendance } from '../attendance/attendance.ts';
import type { WageCheckReport } from '../checks/wages/findings.ts';
import { toCsv } from '../evidence/csv.ts';
import { DIGEST_ALGORITHM, DIGEST_FORMAT, DIGEST_GENESIS } from '../evidence/digest.ts';
import type { RecordedDigest } from '../checks/evidence-month-close/monthClose.ts';
import { EVIDENCE_COLUMNS, type WorkerEvidence } from '../evidence/workerEvidence.ts';

/**
 * The API bodies of the month-wide reports (attendance, wage check, a worker's evidence as JSON or
 * CSV), built on the report thread (ledger/reportWorker.ts): shaped, checked against the route's
 * own zod response schema and serialised there, so the route sends the string as it is and the
 * event loop does no work that grows with the report (issue 16: validating and serialising a
 * 406-worker attendance held the loop ~165 ms). The schemas stay on the routes for the OpenAPI
 * document; validation is what fastify-type-provider-zod's serializer does (`safeEncode`, then
 * `JSON.stringify`), moved, not dropped.
 */

/** A report whose shape breaks its response schema: a bug, answered as 500 `internal` like any serialisation failure. */
export class ReportBodyError extends Error {
  constructor(report: string, cause: z.ZodError) {
    super(`the ${report} report does not match its response schema: ${z.prettifyError(cause)}`, { cause });
    this.name = 'ReportBodyError';
  }
}

function serialise<S extends z.ZodType>(report: string, schema: S, value: z.output<S>): string {
  const r = z.safeEncode(schema, value);
  if (!r.success) throw new ReportBodyError(report, r.error);
  return JSON.stringify(r.data);
}

const iso = (ms: number) => new Date(ms).toISOString();

/** `GET /sites/{siteId}/attendance`. */
export function attendanceBody(a: MonthAttendance): string {
  return serialise('attendance', Attendance, a);
}

/** `GET /sites/{siteId}/wage-check`: instants as RFC 3339, `due` once nothing is pending. */
export function wageCheckBody(r: WageCheckReport): string {
  return serialise('wage-check', WageCheck, {
    siteId: r.siteId, month: r.month, timezone: r.timezone, asOf: iso(r.asOf), periodEnd: iso(r.periodEnd), dueAt: iso(r.dueAt),
    due: r.pending.length === 0, settings: r.settings, decided: r.decided, pending: r.pending, findings: r.findings,
  });
}

/** What the evidence answer tells beside the worker's month, known on the main thread (audit trail, watermark). */
export interface EvidenceContext {
  format: 'json' | 'csv';
  /** The site's watermark has passed the end of the month. */
  closed: boolean;
  /** The root recorded at month close (latest revision), if any. */
  recorded?: RecordedDigest;
}

/**
 * `GET /sites/{siteId}/workers/{workerId}/evidence`: the CSV (UTF-8 with BOM) whose rows the
 * digest covers, or the JSON answer with the digest and how it compares to the recorded one.
 */
export function evidenceBody(e: WorkerEvidence, c: EvidenceContext): string {
  if (c.format === 'csv') return toCsv(e.rows);
  const { rows: _rows, digest, ...rest } = e;
  return serialise('evidence', WorkerEvidenceBody, {
    ...rest, columns: [...EVIDENCE_COLUMNS],
    digest: {
      format: DIGEST_FORMAT, algorithm: DIGEST_ALGORITHM, genesis: DIGEST_GENESIS, rows: digest.rows, root: digest.root, closed: c.closed,
      ...(c.recorded ? { recorded: c.recorded, matchesRecorded: c.recorded.root === digest.root } : {}),
    },
  });
}
