import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { ErrorBody, Id } from '../../../../schemas/src/common.ts';
import { Delivery, DeliveryState, Webhook, WebhookBody } from '../../../../schemas/src/webhook.ts';
import { SitegateError } from '../../errors.ts';
import type { WebhookRecord } from '../../webhooks/webhookStore.ts';
import type { ApiDeps } from '../deps.ts';

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody };

/** The webhook as shown: everything but the secret, which signs deliveries and is never shown again. */
const shown = (h: WebhookRecord): z.infer<typeof Webhook> => ({
  id: h.id, url: h.url, scope: h.scope, ...(h.levels ? { levels: h.levels } : {}), ...(h.kinds ? { kinds: h.kinds } : {}),
  ...(h.events ? { events: h.events } : {}), createdAt: new Date(h.createdAt).toISOString(), updatedAt: new Date(h.updatedAt).toISOString(),
});

/** Contract §6 webhooks (admin): the push to people and to upstream provincial or city platforms. */
export function webhookRoutes(deps: ApiDeps): FastifyPluginAsyncZod {
  return async (app) => {
    app.put('/webhooks/:id', {
      config: { access: 'admin' },
      schema: {
        tags: ['webhooks'], summary: 'Create or replace a webhook: alert events in its scope, levels, kind prefixes and events, POSTed and signed (HMAC-SHA256)',
        params: z.object({ id: Id }), body: WebhookBody, response: { 200: Webhook, 201: Webhook, ...errors },
      },
    }, async (req, reply) => {
      const { created, hook } = deps.webhooks.put(req.params.id, req.body);
      req.log.info({ webhook: hook.id, url: hook.url, by: req.token!.id }, created ? 'webhook created' : 'webhook replaced');
      return reply.status(created ? 201 : 200).send(shown(hook));
    });

    app.get('/webhooks', {
      config: { access: 'admin' },
      schema: { tags: ['webhooks'], summary: 'Every webhook (secrets are not shown)', response: { 200: z.object({ items: z.array(Webhook) }), ...errors } },
    }, async () => ({ items: deps.webhooks.list().map(shown) }));

    app.delete('/webhooks/:id', {
      config: { access: 'admin' },
      schema: { tags: ['webhooks'], summary: 'Delete a webhook and its pending deliveries', params: z.object({ id: Id }), response: { 204: z.null(), ...errors } },
    }, async (req, reply) => {
      if (!deps.webhooks.delete(req.params.id)) throw new SitegateError('not_found', `no webhook ${req.params.id}`);
      req.log.info({ webhook: req.params.id, by: req.token!.id }, 'webhook deleted');
      return reply.status(204).send(null);
    });

    app.get('/webhooks/:id/deliveries', {
      config: { access: 'admin' },
      schema: {
        tags: ['webhooks'], summary: 'The outbox of a webhook, oldest first: pending (with the next attempt), delivered, failed (gave up after 24 h)',
        params: z.object({ id: Id }),
        querystring: z.object({
          state: DeliveryState.optional(),
          limit: z.coerce.number().int().min(1).default(100).transform((n) => Math.min(n, 1000)),
          cursor: z.string().regex(/^\d{1,15}$/, 'the next of a previous page').optional(),
        }),
        response: { 200: z.object({ items: z.array(Delivery), next: z.string().optional() }), ...errors },
      },
    }, async (req) => {
      if (!deps.webhooks.get(req.params.id)) throw new SitegateError('not_found', `no webhook ${req.params.id}`);
      const q = req.query;
      return deps.webhooks.deliveries(req.params.id, { ...(q.state ? { state: q.state } : {}), limit: q.limit, ...(q.cursor ? { after: Number(q.cursor) } : {}) });
    });
  };
}
