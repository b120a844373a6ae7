import { Transform, type Readable } from 'node:stream';
import { parse as parseCsv } from 'csv-parse';
import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { ErrorBody, Id } from '../../../../schemas/src/common.ts';
import { IngestOutcome } from '../../../../schemas/src/api.ts';
import { SitegateError } from '../../errors.ts';
import type { IngestReport } from '../../ingest/ingestor.ts';
import { VerdictSpool } from '../../ingest/verdictSpool.ts';
import type { ApiDeps } from '../deps.ts';

const DeviceParams = z.object({ siteId: Id, deviceId: Id });
const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 413: ErrorBody, 415: ErrorBody, 503: ErrorBody };
const MiB = 1024 * 1024;
export const CSV_LIMIT = 64 * MiB;
/** Rows ingested per slice: validation and card hashing of a slice run on the event loop, so it stays short (issue 16). */
const CSV_CHUNK_ROWS = 250;
/**
 * Bytes of CSV handed to the parser per turn of the event loop: csv-parse reads whatever it is
 * written in one synchronous call, and a 64 KiB socket chunk (~700 rows) held the loop ~30 ms on a
 * loaded box during the history bench's reports (issue 16).
 */
const CSV_PARSE_BYTES = 8 * 1024;

function merge(into: IngestReport, r: IngestReport, keepAccepted: boolean, keepResults = true): void {
  into.accepted += r.accepted;
  into.duplicate += r.duplicate;
  into.rejected += r.rejected;
  if (keepResults) for (const x of r.results) if (keepAccepted || x.outcome !== 'accepted') into.results.push(x);
}

/** Contract §2 "Ingest over HTTP": the same pipeline as MQTT, answered after the records are durable. */
export function ingestRoutes(deps: ApiDeps): FastifyPluginAsyncZod {
  return async (app) => {
    const checkDevice = (siteId: string, deviceId: string) => {
      const d = deps.registry.device(deviceId);
      if (!d) throw new SitegateError('not_found', `no device ${deviceId}`);
      if (d.siteId !== siteId) throw new SitegateError('wrong_site', `device ${deviceId} is registered under another site`);
      if (deps.isShuttingDown()) throw new SitegateError('unavailable');
    };

    for (const [path, channel, summary] of [
      ['checkins', 'checkin', 'Post one check-in or an array (same validation, dedupe and durability as MQTT)'],
      ['readings', 'telemetry', 'Post one reading, an array, or {batch:[…]} (same as the telemetry topic)'],
    ] as const) {
      app.post(`/sites/:siteId/devices/:deviceId/${path}`, {
        config: { access: 'ingest' },
        bodyLimit: channel === 'checkin' ? 16 * MiB : MiB,
        schema: { tags: ['ingest'], summary, params: DeviceParams, body: z.unknown(), response: { 200: IngestOutcome, ...errors } },
      }, async (req) => {
        const { siteId, deviceId } = req.params;
        checkDevice(siteId, deviceId);
        const values = Array.isArray(req.body) ? req.body : [req.body];
        if (values.length > 1000) throw new SitegateError('batch_too_large', `${values.length} items exceed 1000 per request`);
        return deps.ingestor.ingestValues(channel, values, { siteId, deviceId, via: 'http' });
      });
    }

    app.post('/sites/:siteId/wage-payments', {
      config: { access: 'payroll' },
      bodyLimit: CSV_LIMIT,
      schema: {
        tags: ['ingest'],
        summary: 'Wage payments as a JSON array or text/csv (header row). Rows are answered accepted/duplicate/rejected; `results` lists the rejected and duplicate rows with their reasons. With `Accept: application/x-ndjson` the answer is one line per row (accepted ones included, in row order) and a last `{"summary":{…}}` line, spooled to disk so memory stays bounded for any number of rows.',
        params: z.object({ siteId: Id }), body: z.unknown(), response: { 200: IngestOutcome, ...errors },
      },
    }, async (req, reply) => {
      const { siteId } = req.params;
      if (deps.isShuttingDown()) throw new SitegateError('unavailable');
      const total: IngestReport = { accepted: 0, duplicate: 0, rejected: 0, results: [] };
      // Per-row verdicts for every row go to a spool file, not into memory (see VerdictSpool).
      const spool = wantsNdjson(req.headers.accept) ? await VerdictSpool.open() : undefined;
      const take = async (r: IngestReport) => {
        merge(total, r, false, !spool);
        await spool?.write(r.results);
      };
      try {
        if (isCsv(req.headers['content-type'])) {
          const broken = await ingestCsv(req.body as Readable, async (rows) => take(await ingestCsvRows(deps, siteId, rows)));
          if (broken) {
            // Rows before the break are kept; the break itself is answered like a rejected row.
            if (broken.tooLarge) throw new SitegateError('body_too_large', `CSV exceeds ${CSV_LIMIT} bytes; rows before row ${broken.row} were ingested`, { ...total, results: total.results.slice(0, 1000) });
            await take({ accepted: 0, duplicate: 0, rejected: 1, results: [{ ref: `row ${broken.row}`, outcome: 'rejected', reason: 'csv_invalid', message: broken.message, row: broken.row }] });
            deps.metrics.rejected.inc({ reason: 'csv_invalid', via: 'http' });
          }
        } else {
          if (!Array.isArray(req.body)) throw new SitegateError('bad_request', 'expected a JSON array of payments or text/csv');
          const rows = (req.body as unknown[]).map((value, i) => ({ value, row: i + 1 }));
          for (let i = 0; i < rows.length; i += CSV_CHUNK_ROWS) await take(await deps.ingestor.ingestWagePayments(siteId, rows.slice(i, i + CSV_CHUNK_ROWS)));
        }
      } catch (e) {
        await spool?.discard();
        throw e;
      }
      req.log.info({ siteId, accepted: total.accepted, duplicate: total.duplicate, rejected: total.rejected }, 'wage payments ingested');
      if (!spool) return total;
      await spool.write([{ summary: { accepted: total.accepted, duplicate: total.duplicate, rejected: total.rejected } }]);
      return reply.type('application/x-ndjson; charset=utf-8').send((await spool.finish()) as never);
    });
  };
}

const isCsv = (ct: string | undefined) => !!ct && /^text\/csv\b/i.test(ct);
const wantsNdjson = (accept: string | undefined) => !!accept && /\bapplication\/(x-)?ndjson\b/i.test(accept);

/** A CSV row: parsed into fields, or refused by the parser (a stray quote…) with its message. */
type CsvRow = { row: number; value: unknown } | { row: number; parseError: string };

/** One chunk of CSV rows: the parsed ones through the ingestor, the unparsable ones answered `csv_invalid`, all in row order. */
async function ingestCsvRows(deps: ApiDeps, siteId: string, rows: CsvRow[]): Promise<IngestReport> {
  const parsed = rows.filter((r): r is { row: number; value: unknown } => !('parseError' in r));
  const report = await deps.ingestor.ingestWagePayments(siteId, parsed);
  if (parsed.length === rows.length) return report;
  for (const r of rows) {
    if (!('parseError' in r)) continue;
    report.rejected++;
    report.results.push({ ref: `row ${r.row}`, outcome: 'rejected', reason: 'csv_invalid', message: r.parseError, row: r.row });
    deps.metrics.rejected.inc({ reason: 'csv_invalid', via: 'http' });
  }
  report.results.sort((a, b) => (a.row ?? 0) - (b.row ?? 0));
  return report;
}

/** A parser message may quote the raw field it choked on: card numbers are personal data (PIPL), never echoed. */
const maskCards = (s: string) => s.replace(/\d{12,19}/g, (d) => `[card …${d.slice(-4)}]`);

/**
 * Streams a CSV body through csv-parse (quoted fields, BOM, CRLF) in chunks of rows, so a
 * 100,000-row file is held in memory a chunk at a time. Numbers stay text until validation.
 */
async function ingestCsv(body: Readable, onRows: (rows: CsvRow[]) => Promise<void>): Promise<{ row: number; message: string; tooLarge?: boolean } | null> {
  let bytes = 0;
  let tooLarge = false;
  const limiter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      bytes += chunk.length;
      if (bytes > CSV_LIMIT) { tooLarge = true; cb(new Error('body too large')); return; }
      // Slices of CSV_PARSE_BYTES, one per turn: the parser parses each as it is pushed.
      const pushFrom = (at: number) => {
        if (this.destroyed) return; // the body broke off or the request was refused meanwhile
        this.push(chunk.subarray(at, at + CSV_PARSE_BYTES));
        if (at + CSV_PARSE_BYTES >= chunk.length) cb();
        else setImmediate(pushFrom, at + CSV_PARSE_BYTES);
      };
      pushFrom(0);
    },
  });
  body.on('error', (e) => limiter.destroy(e));
  // One bad row never loses the good ones: a row the parser cannot read is skipped and answered
  // `csv_invalid`, and parsing goes on with the next one.
  const parser = body.pipe(limiter).pipe(parseCsv({
    bom: true, columns: (h: string[]) => h.map((c) => c.trim()), skip_empty_lines: true, trim: true, relax_column_count: true,
    skip_records_with_error: true, info: true,
  }));
  limiter.on('error', (e) => parser.destroy(e));
  // Rows are numbered as a spreadsheet numbers records (header = row 1), skipped ones included:
  // a skip says how many good records preceded it, and is emitted before the records after it.
  const skips: { before: number; row: number; message: string }[] = [];
  let skipped = 0;
  parser.on('skip', (err: Error & { records?: number }) => {
    const before = err.records ?? 0;
    const row = 2 + before + skipped + skips.length;
    skips.push({ before, row, message: maskCards(`CSV parse error at row ${row}: ${err.message}`) });
  });
  let chunk: CsvRow[] = [];
  let row = 1; // the header is row 1; data rows start at 2, as a spreadsheet numbers them
  const takeSkips = (upTo: number) => {
    while (skips.length && skips[0]!.before < upTo) {
      const s = skips.shift()!;
      skipped++;
      chunk.push({ row: s.row, parseError: s.message });
    }
  };
  try {
    for await (const { record, info } of parser as AsyncIterable<{ record: Record<string, string>; info: { records: number } }>) {
      takeSkips(info.records);
      row = 1 + info.records + skipped;
      chunk.push({ value: csvRowToPayment(record), row });
      if (chunk.length >= CSV_CHUNK_ROWS) {
        await onRows(chunk);
        chunk = [];
      }
    }
    takeSkips(Infinity);
  } catch (e) {
    if (chunk.length) await onRows(chunk);
    body.unpipe();
    body.resume(); // drain what is left so the connection can answer
    return { row: row + 1, message: maskCards(`CSV parse error near row ${row + 1}: ${(e as Error).message}`), ...(tooLarge ? { tooLarge } : {}) };
  }
  if (chunk.length) await onRows(chunk);
  return null;
}

function csvRowToPayment(rec: Record<string, string>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...rec };
  if (typeof rec.amount === 'string' && rec.amount !== '' && /^-?\d+(\.\d+)?$/.test(rec.amount)) out.amount = Number(rec.amount);
  if (typeof rec.paidAt === 'string' && /^\d+$/.test(rec.paidAt)) out.paidAt = Number(rec.paidAt);
  return out;
}
