import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { ErrorBody, Id } from '../../../../schemas/src/common.ts';
import { allowed, roleAllows } from '../../broker/access.ts';
import { SitegateError } from '../../errors.ts';
import type { Token } from '../../registry/registry.ts';
import { bearer } from '../auth.ts';
import type { ApiDeps } from '../deps.ts';

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody };

const Prefixes = z.string().regex(/^\d{2,12}(,\d{2,12})*$/, 'region-code prefixes, comma-separated');

/** Whether a region prefix asked for meets the token's regions (one is a prefix of the other). */
function prefixMeetsScope(token: Token, prefix: string): boolean {
  if (token.role === 'admin') return true;
  if (!token.scope || !('regions' in token.scope)) return false;
  return token.scope.regions.some((r) => prefix.startsWith(r) || r.startsWith(prefix));
}

/**
 * Contract §2/§6 `GET /live`: one Server-Sent Events stream for a site (`siteId=`), for every site
 * of some regions (`regions=3301,3302`, within the token's scope), or, with neither, for every site
 * in the token's scope. It opens with a `snapshot` of those sites, or resumes after `Last-Event-ID`
 * (header, or the `lastEventId` parameter for a page that had to open a new EventSource with a new
 * single-use ticket).
 */
export function liveRoutes(deps: ApiDeps): FastifyPluginAsyncZod {
  return async (app) => {
    app.post('/live/tickets', {
      config: { access: 'read' },
      schema: {
        tags: ['read'], summary: 'A single-use ticket (60 s) for EventSource, which cannot send a header; with the token\'s role, so a page offers only the actions it may take',
        response: { 200: z.object({ ticket: z.string(), expiresAt: z.string(), role: z.string() }), ...errors },
      },
    }, async (req) => ({ ...deps.liveHub.issueTicket(req.token!), role: req.token!.role }));

    app.get('/live', {
      // Authenticated here, not by the hook: a bearer header or a ticket from POST /live/tickets.
      schema: {
        tags: ['read'],
        summary: 'Server-Sent Events of a site, of regions, or of every site in scope: snapshot first (or the events after Last-Event-ID), then reading, checkin, alert, status, snapshot (camera)',
        querystring: z.object({
          siteId: Id.optional(), regions: Prefixes.optional(), ticket: z.string().max(200).optional(),
          lastEventId: z.string().regex(/^\d{1,15}$/, 'a ledger position, as the stream\'s ids').optional().describe('as the Last-Event-ID header, for a client that cannot send it'),
        }),
      },
    }, async (req, reply) => {
      const q = req.query;
      if (q.siteId && q.regions) throw new SitegateError('bad_request', 'give siteId or regions, not both');
      const raw = bearer(req);
      const token = q.ticket ? deps.liveHub.redeem(q.ticket) : raw ? deps.registry.authenticateToken(raw) : null;
      if (!token) throw new SitegateError('unauthorized', q.ticket ? 'unknown, used or expired ticket' : undefined);
      if (!roleAllows(token, 'read')) throw new SitegateError('forbidden', `role ${token.role} may not use this route`);
      let wants: (siteId: string) => boolean;
      if (q.siteId) {
        const site = deps.registry.site(q.siteId);
        if (!site) throw new SitegateError(token.role === 'admin' ? 'not_found' : 'forbidden');
        if (!allowed(token, 'read', site)) throw new SitegateError('forbidden', 'site outside this token\'s scope');
        wants = (id) => id === site.siteId;
      } else {
        const prefixes = q.regions?.split(',');
        if (prefixes && !prefixes.some((p) => prefixMeetsScope(token, p))) throw new SitegateError('forbidden', 'regions outside this token\'s scope');
        wants = (id) => {
          const s = deps.registry.site(id);
          return !!s && allowed(token, 'read', s) && (!prefixes || prefixes.some((p) => s.regionCode.startsWith(p)));
        };
      }
      const siteIds = deps.registry.listSites().map((s) => s.siteId).filter(wants).sort();
      const header = req.headers['last-event-id'];
      const lastEventId = q.lastEventId ?? (typeof header === 'string' ? header.trim() : undefined);
      reply.hijack();
      reply.raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive', 'x-accel-buffering': 'no',
      });
      deps.liveHub.subscribe(siteIds, wants, reply.raw, lastEventId);
    });
  };
}
