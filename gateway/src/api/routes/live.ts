import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { ErrorBody, Id } from '../../../../schemas/src/common.ts';
import { allowed } from '../../broker/access.ts';
import { SitegateError } from '../../errors.ts';
import { bearer } from '../auth.ts';
import type { ApiDeps } from '../deps.ts';

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody };

/** Contract §2 `GET /live` (Server-Sent Events) and its single-use tickets for EventSource. */
export function liveRoutes(deps: ApiDeps): FastifyPluginAsyncZod {
  return async (app) => {
    app.post('/live/tickets', {
      config: { access: 'read' },
      schema: { tags: ['read'], summary: 'A single-use ticket (60 s) for EventSource, which cannot send a header', response: { 200: z.object({ ticket: z.string(), expiresAt: z.string() }), ...errors } },
    }, async (req) => deps.liveHub.issueTicket(req.token!));

    app.get('/live', {
      // Authenticated here, not by the hook: a bearer header or a ticket from POST /live/tickets.
      schema: {
        tags: ['read'], summary: 'Server-Sent Events of one site: reading, checkin, alert, status, snapshot',
        querystring: z.object({ siteId: Id, ticket: z.string().max(200).optional() }),
      },
    }, async (req, reply) => {
      const raw = bearer(req);
      const token = req.query.ticket ? deps.liveHub.redeem(req.query.ticket) : raw ? deps.registry.authenticateToken(raw) : null;
      if (!token) throw new SitegateError('unauthorized', req.query.ticket ? 'unknown, used or expired ticket' : undefined);
      const site = deps.registry.site(req.query.siteId);
      if (!site) throw new SitegateError(token.role === 'admin' ? 'not_found' : 'forbidden');
      if (!allowed(token, 'read', site)) throw new SitegateError('forbidden', 'site outside this token\'s scope');
      reply.hijack();
      reply.raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive', 'x-accel-buffering': 'no',
      });
      deps.liveHub.subscribe(site.siteId, reply.raw);
    });
  };
}
