import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { Attendance } from '../../../../schemas/src/api.ts';
import { ReportQuery } from '../../../../schemas/src/audit.ts';
import { ErrorBody, Id } from '../../../../schemas/src/common.ts';
import type { ApiDeps } from '../deps.ts';
import { sendSerialised } from '../sendSerialised.ts';

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody };

/**
 * Contract §2 `GET /sites/{siteId}/attendance?month=YYYY-MM`: every registered worker of the site
 * (zero days included), present days in site time, hours on site, and the key-staff rate, from
 * everything known at the time of the request (domain.md "Calendar"). The body comes validated
 * and serialised from the report thread (api/reportBodies.ts); `format=csv` gives the same rows
 * as a spreadsheet (api/reportCsv.ts: UTF-8 with BOM, Chinese headers unless `lang=en`).
 */
export function attendanceRoutes(deps: ApiDeps): FastifyPluginAsyncZod {
  return async (app) => {
    app.get('/sites/:siteId/attendance', {
      config: { access: 'audit' },
      schema: {
        tags: ['audit'], summary: 'Present days, hours and key-staff rates of a month; format=csv gives a CSV (UTF-8 with BOM, Chinese headers unless lang=en)',
        params: z.object({ siteId: Id }), querystring: ReportQuery,
        response: { 200: Attendance, ...errors },
      },
    }, async (req, reply) => {
      const site = deps.registry.site(req.params.siteId)!;
      const { month, format, lang } = req.query;
      if (format === 'csv') {
        // The response schema describes the JSON form; the CSV is sent as built.
        reply.header('content-disposition', `attachment; filename="attendance-${site.siteId}-${month}.csv"`);
        return sendSerialised(reply, await deps.reports.attendanceCsv(site, month, lang), 'text/csv; charset=utf-8');
      }
      return sendSerialised(reply, await deps.reports.attendanceBody(site, month));
    });
  };
}
