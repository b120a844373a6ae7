import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { Attendance } from '../../../../schemas/src/api.ts';
import { ErrorBody, Id, Month } from '../../../../schemas/src/common.ts';
import type { ApiDeps } from '../deps.ts';
import { sendSerialised } from '../sendSerialised.ts';

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody };

/**
 * Contract §2 `GET /sites/{siteId}/attendance?month=YYYY-MM`: every registered worker of the site
 * (zero days included), present days in site time, hours on site, and the key-staff rate, from
 * everything known at the time of the request (domain.md "Calendar"). The body comes validated
 * and serialised from the report thread (api/reportBodies.ts).
 */
export function attendanceRoutes(deps: ApiDeps): FastifyPluginAsyncZod {
  return async (app) => {
    app.get('/sites/:siteId/attendance', {
      config: { access: 'audit' },
      schema: {
        tags: ['audit'], summary: 'Present days, hours and key-staff rates of a month',
        params: z.object({ siteId: Id }), querystring: z.object({ month: Month }),
        response: { 200: Attendance, ...errors },
      },
    }, async (req, reply) => sendSerialised(reply, await deps.reports.attendanceBody(deps.registry.site(req.params.siteId)!, req.query.month)));
  };
}
