import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { Alert, AlertKind, AlertNote, AlertState } from '../../../../schemas/src/alert.ts';
import { ErrorBody, Id, Timestamp } from '../../../../schemas/src/common.ts';
import { siteInScope } from '../../broker/access.ts';
import { SitegateError } from '../../errors.ts';
import { parseTimestamp } from '../../ingest/timestamps.ts';
import type { ApiDeps } from '../deps.ts';

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody };

/** Contract §2 alerts: list (scoped, paged by openedAt then id), acknowledge, resolve; §5 lifecycle. */
export function alertRoutes(deps: ApiDeps): FastifyPluginAsyncZod {
  return async (app) => {
    app.get('/alerts', {
      config: { access: 'read' },
      schema: {
        tags: ['alerts'], summary: 'Alerts of the sites in scope, sorted by openedAt then id',
        querystring: z.object({
          siteId: Id.optional(), state: AlertState.optional(), kind: AlertKind.optional(), since: Timestamp.optional(),
          limit: z.coerce.number().int().min(1).default(100).transform((n) => Math.min(n, 1000)),
          cursor: z.string().max(300).optional(),
          includeWithdrawn: z.enum(['true', 'false']).optional().describe('also list alerts that late data withdrew'),
        }),
        response: { 200: z.object({ items: z.array(Alert), next: z.string().optional() }), ...errors },
      },
    }, async (req) => {
      const q = req.query;
      let siteIds = deps.registry.listSites().filter((s) => siteInScope(req.token!, s)).map((s) => s.siteId);
      if (q.siteId) siteIds = siteIds.filter((s) => s === q.siteId);
      let since: number | undefined;
      if (q.since !== undefined) {
        const ts = parseTimestamp(typeof q.since === 'string' && /^\d+$/.test(q.since) ? Number(q.since) : q.since, Number.MAX_SAFE_INTEGER);
        if (!ts.ok) throw new SitegateError('bad_request', `since: ${ts.message}`);
        since = ts.ms;
      }
      const page = deps.alerts.list({
        ...(req.token!.role === 'admin' && !q.siteId ? {} : { siteIds }),
        ...(q.state ? { state: q.state } : {}), ...(q.kind ? { kind: q.kind } : {}), ...(since !== undefined ? { since } : {}),
        limit: q.limit, ...(q.cursor ? { cursor: q.cursor } : {}), includeWithdrawn: q.includeWithdrawn === 'true',
      });
      return { items: page.items.map((a) => deps.alerts.view(a)), ...(page.next ? { next: page.next } : {}) };
    });

    for (const action of ['ack', 'resolve'] as const) {
      app.post(`/alerts/:id/${action}`, {
        config: { access: 'read' },
        schema: {
          tags: ['alerts'], summary: action === 'ack' ? 'Acknowledge (stops escalation)' : 'Resolve (a person closes it)',
          params: z.object({ id: z.string().min(1).max(100) }), body: AlertNote.optional(), response: { 200: Alert, ...errors },
        },
      }, async (req) => {
        const a = deps.alerts.get(req.params.id);
        const site = a && deps.registry.site(a.siteId);
        if (!a || !site || !siteInScope(req.token!, site)) throw new SitegateError('not_found', `no alert ${req.params.id}`);
        const by = req.token!.label ? `${req.token!.id} (${req.token!.label})` : req.token!.id;
        const note = req.body?.note;
        const updated = action === 'ack' ? deps.alerts.ack(a.id, by, note) : deps.alerts.resolve(a.id, by, note);
        return deps.alerts.view(updated);
      });
    }

    app.get('/audit/verify', {
      config: { access: 'admin' },
      schema: { tags: ['alerts'], summary: 'Recompute the hash chain of the tamper-evident history end to end', response: { 200: z.object({ ok: z.boolean(), entries: z.number().optional(), head: z.string().optional(), brokenAt: z.number().optional(), reason: z.string().optional() }), ...errors } },
    }, async () => deps.audit.verify());
  };
}
