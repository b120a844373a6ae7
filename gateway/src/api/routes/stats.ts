import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { ErrorBody } from '../../../../schemas/src/common.ts';
import { AlertStats, AlertStatsQuery } from '../../../../schemas/src/stats.ts';
import { alertStats, alertStatsCsv } from '../../alerts/alertStats.ts';
import { siteInScope } from '../../broker/access.ts';
import { SitegateError } from '../../errors.ts';
import { parseTimestamp } from '../../ingest/timestamps.ts';
import type { ApiDeps } from '../deps.ts';
import { sendSerialised } from '../sendSerialised.ts';

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody };

function timeParam(name: string, v: string | number | undefined): number | undefined {
  if (v === undefined) return undefined;
  const ts = parseTimestamp(typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v, Number.MAX_SAFE_INTEGER);
  if (!ts.ok) throw new SitegateError('bad_request', `${name}: ${ts.message}`);
  return ts.ms;
}

/** Contract §6 figures: raised, handled, rectified, closed, overdue, escalated — per site and kind, within the token's scope. */
export function statsRoutes(deps: ApiDeps): FastifyPluginAsyncZod {
  return async (app) => {
    app.get('/stats/alerts', {
      config: { access: 'read' },
      schema: {
        tags: ['alerts'],
        summary: 'Alert figures for alerts opened in [from, to) at the sites in scope (regions= prefixes or siteId=), per site and kind; format=csv gives a CSV (UTF-8 with BOM, Chinese headers and labels unless lang=en)',
        querystring: AlertStatsQuery, response: { 200: AlertStats, ...errors },
      },
    }, async (req, reply) => {
      const q = req.query;
      const token = req.token!;
      if (q.regions && q.siteId) throw new SitegateError('bad_request', 'give regions or siteId, not both');
      let sites = deps.registry.listSites().filter((s) => siteInScope(token, s));
      if (q.siteId) {
        const site = deps.registry.site(q.siteId);
        // As for paths: unknown is 404 for admins; unknown and out of scope are both 403 for the rest.
        if (!site) throw new SitegateError(token.role === 'admin' ? 'not_found' : 'forbidden', `no site ${q.siteId} in scope`);
        if (!siteInScope(token, site)) throw new SitegateError('forbidden', 'site outside this token\'s scope');
        sites = [site];
      } else if (q.regions) {
        const prefixes = q.regions.split(',');
        sites = sites.filter((s) => prefixes.some((p) => s.regionCode.startsWith(p)));
      }
      const from = timeParam('from', q.from);
      const to = timeParam('to', q.to) ?? deps.now();
      if (from !== undefined && from >= to) throw new SitegateError('bad_request', 'from must be before to');
      const stats = alertStats(deps.registry.db, sites.sort((a, b) => a.siteId.localeCompare(b.siteId)), from, to, deps.now());
      if (q.format === 'csv') {
        reply.header('content-disposition', 'attachment; filename="alert-stats.csv"');
        return sendSerialised(reply, alertStatsCsv(stats, q.lang), 'text/csv; charset=utf-8');
      }
      return stats;
    });
  };
}
