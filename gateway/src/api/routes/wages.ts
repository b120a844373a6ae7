import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { ReportQuery, WageCheck } from '../../../../schemas/src/audit.ts';
import { ErrorBody, Id } from '../../../../schemas/src/common.ts';
import type { ApiDeps } from '../deps.ts';
import { sendSerialised } from '../sendSerialised.ts';

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody };

/**
 * Contract §2 `GET /sites/{siteId}/wage-check?month=`: the findings of domain.md "Wages" for a
 * period, from everything known at the time of the request. A due date counts as passed when the
 * wall clock OR the site's watermark is past it (domain.md "Time-triggered decisions": reports,
 * unlike alerts, may use the wall clock). Before that, the kinds that do not depend on it are
 * answered (card_mismatch and shared_card always, ghost once the month has ended) and the
 * others are listed as `pending`. The body comes validated and serialised from the report thread
 * (api/reportBodies.ts). `format=csv` gives the findings as a spreadsheet (api/reportCsv.ts: UTF-8
 * with BOM, Chinese headers unless `lang=en`); the kinds still pending have no rows and are named
 * in the `sitegate-wage-pending` header.
 */
export function wageRoutes(deps: ApiDeps): FastifyPluginAsyncZod {
  return async (app) => {
    app.get('/sites/:siteId/wage-check', {
      config: { access: 'audit' },
      schema: {
        tags: ['audit'],
        summary: 'Wage findings of a month (unpaid, ghost, card mismatch, shared card, underpaid) with the numbers behind each; format=csv gives a CSV (UTF-8 with BOM, Chinese headers unless lang=en; kinds not decided yet in the sitegate-wage-pending header)',
        params: z.object({ siteId: Id }), querystring: ReportQuery,
        response: { 200: WageCheck, ...errors },
      },
    }, async (req, reply) => {
      const site = deps.registry.site(req.params.siteId)!;
      const now = deps.now();
      const watermark = deps.live.siteWatermark(site, now);
      const asOf = Math.max(now, watermark ?? -Infinity);
      const { month, format, lang } = req.query;
      if (format === 'csv') {
        const csv = await deps.reports.wageCheckCsv(site, month, asOf, lang);
        reply.header('content-disposition', `attachment; filename="wage-check-${site.siteId}-${month}.csv"`);
        reply.header('sitegate-wage-pending', csv.pending.join(','));
        return sendSerialised(reply, csv.body, 'text/csv; charset=utf-8');
      }
      return sendSerialised(reply, await deps.reports.wageCheckBody(site, month, asOf));
    });
  };
}
