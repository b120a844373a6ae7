import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { WageCheck } from '../../../../schemas/src/audit.ts';
import { ErrorBody, Id, Month } from '../../../../schemas/src/common.ts';
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
 * (api/reportBodies.ts).
 */
export function wageRoutes(deps: ApiDeps): FastifyPluginAsyncZod {
  return async (app) => {
    app.get('/sites/:siteId/wage-check', {
      config: { access: 'audit' },
      schema: {
        tags: ['audit'],
        summary: 'Wage findings of a month (unpaid, ghost, card mismatch, shared card, underpaid) with the numbers behind each',
        params: z.object({ siteId: Id }), querystring: z.object({ month: Month }),
        response: { 200: WageCheck, ...errors },
      },
    }, async (req, reply) => {
      const site = deps.registry.site(req.params.siteId)!;
      const now = deps.now();
      const watermark = deps.live.siteWatermark(site, now);
      const asOf = Math.max(now, watermark ?? -Infinity);
      return sendSerialised(reply, await deps.reports.wageCheckBody(site, req.query.month, asOf));
    });
  };
}
