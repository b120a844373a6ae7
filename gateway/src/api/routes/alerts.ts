import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { Alert, AlertKind, AlertNote, AlertNoteRequired, AlertRectify, AlertState } from '../../../../schemas/src/alert.ts';
import { ErrorBody, Id, Timestamp } from '../../../../schemas/src/common.ts';
import { siteInScope } from '../../broker/access.ts';
import { SitegateError } from '../../errors.ts';
import { parseTimestamp } from '../../ingest/timestamps.ts';
import type { HandlingAction } from '../../alerts/alertStore.ts';
import type { Token } from '../../registry/registry.ts';
import type { ApiDeps } from '../deps.ts';

/** Who acted, for the history and the audit trail: role, token id and its label. */
const who = (t: Token): string => `${t.role} ${t.id}${t.label ? ` (${t.label})` : ''}`;

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody };

/** Contract §2 alerts: list (scoped, paged by openedAt then id); §6 handling: ack, rectify (with photos), resolve, reopen. */
export function alertRoutes(deps: ApiDeps): FastifyPluginAsyncZod {
  /** Out of scope answers like unknown: an alert's existence does not leak across sites. */
  const inScope = (id: string, token: Token) => {
    const alert = deps.alerts.get(id);
    const site = alert && deps.registry.site(alert.siteId);
    if (!alert || !site || !siteInScope(token, site)) throw new SitegateError('not_found', `no alert ${id}`);
    return alert;
  };
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

    app.get('/alerts/:id', {
      config: { access: 'read' },
      schema: { tags: ['alerts'], summary: 'One alert with its history', params: z.object({ id: z.string().min(1).max(100) }), response: { 200: Alert, ...errors } },
    }, async (req) => deps.alerts.view(inScope(req.params.id, req.token!)));

    // Contract §6: who may do what (access), from which state (the store's transition table).
    const actions = {
      ack: { access: 'handle', body: AlertNote.optional(), summary: 'Acknowledge (stops the acknowledgement timer; construction unit, regulator, admin)' },
      rectify: { access: 'handle', body: AlertRectify, summary: 'Report a rectification with photos uploaded first (construction unit, regulator, admin)' },
      resolve: { access: 'close', body: AlertNote.optional(), summary: 'Resolve: accept the rectification and close (regulator, admin; also from open or acked)' },
      reopen: { access: 'close', body: AlertNoteRequired, summary: 'Reject a rectification: back to acked with a new deadline (regulator, admin)' },
    } as const;
    for (const [action, a] of Object.entries(actions) as [HandlingAction, (typeof actions)[HandlingAction]][]) {
      app.post(`/alerts/:id/${action}`, {
        config: { access: a.access },
        schema: { tags: ['alerts'], summary: a.summary, params: z.object({ id: z.string().min(1).max(100) }), body: a.body, response: { 200: Alert, ...errors } },
      }, async (req) => {
        const alert = inScope(req.params.id, req.token!);
        const body = (req.body ?? {}) as { note?: string; photos?: string[] };
        const missing = (body.photos ?? []).filter((p) => !deps.photos.has(alert.siteId, p));
        if (missing.length) throw new SitegateError('bad_request', `photos not uploaded for site ${alert.siteId} (POST /sites/${alert.siteId}/photos first): ${missing.join(', ')}`);
        const updated = deps.alerts.handle(alert.id, action, who(req.token!), {
          ...(body.note ? { note: body.note } : {}), ...(body.photos?.length ? { photos: [...new Set(body.photos)] } : {}),
        });
        return deps.alerts.view(updated);
      });
    }

    app.post('/sites/:siteId/photos', {
      config: { access: 'handle' },
      schema: {
        tags: ['alerts'], summary: 'Upload a photo (image/jpeg, ≤ 2 MiB) to cite in a rectification; stored as evidence under its SHA-256',
        params: z.object({ siteId: Id }), response: { 201: z.object({ sha256: z.string() }), ...errors, 413: ErrorBody, 415: ErrorBody },
      },
    }, async (req, reply) => {
      if (!Buffer.isBuffer(req.body)) throw new SitegateError('unsupported_media_type', 'send the photo as image/jpeg');
      const sha256 = deps.photos.add(req.params.siteId, req.body, who(req.token!));
      return reply.status(201).send({ sha256 });
    });

    app.get('/audit/verify', {
      config: { access: 'admin' },
      schema: { tags: ['alerts'], summary: 'Recompute the hash chain of the tamper-evident history end to end', response: { 200: z.object({ ok: z.boolean(), entries: z.number().optional(), head: z.string().optional(), brokenAt: z.number().optional(), reason: z.string().optional() }), ...errors } },
    }, async () => deps.audit.verify());
  };
}
