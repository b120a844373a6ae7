import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { Command, CommandBody, CommandCreated } from '../../../../schemas/src/command.ts';
import { ErrorBody, Id } from '../../../../schemas/src/common.ts';
import { CommandStore } from '../../commands/commandStore.ts';
import { SitegateError } from '../../errors.ts';
import type { Token } from '../../registry/registry.ts';
import type { ApiDeps } from '../deps.ts';

const DeviceParams = z.object({ siteId: Id, deviceId: Id });
const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody };
const who = (t: Token): string => `${t.role} ${t.id}${t.label ? ` (${t.label})` : ''}`;

/** Contract §7: commands to a site's equipment — send (admin, construction unit of the site), follow their state (readers of the site). */
export function commandRoutes(deps: ApiDeps): FastifyPluginAsyncZod {
  const deviceAt = (siteId: string, deviceId: string) => {
    const d = deps.registry.device(deviceId);
    if (!d || d.siteId !== siteId) throw new SitegateError('not_found', `no device ${deviceId} at site ${siteId}`);
    return d;
  };
  return async (app) => {
    app.post('/sites/:siteId/devices/:deviceId/commands', {
      config: { access: 'command' },
      schema: {
        tags: ['commands'], summary: 'Send a command to a device: delivered on its …/commands topic now or when it connects, until expiresAt',
        params: DeviceParams, body: CommandBody, response: { 201: CommandCreated, ...errors },
      },
    }, async (req, reply) => {
      const d = deviceAt(req.params.siteId, req.params.deviceId);
      const { command } = deps.commands.create({
        siteId: d.siteId, deviceId: d.deviceId, action: req.body.action, params: req.body.params, ttlS: req.body.ttlS, by: who(req.token!),
      });
      req.log.info({ siteId: d.siteId, deviceId: d.deviceId, commandId: command.commandId, action: command.action }, 'command created');
      // Delivery may already have happened in the commit's listeners (a subscribed device): read it back.
      const now = deps.commands.get(command.commandId) ?? command;
      return reply.status(201).send({ commandId: now.commandId, state: now.state, expiresAt: new Date(now.expiresAt).toISOString() });
    });

    app.get('/sites/:siteId/devices/:deviceId/commands', {
      config: { access: 'read' },
      schema: {
        tags: ['commands'], summary: 'A device\'s commands, newest first', params: DeviceParams,
        querystring: z.object({ limit: z.coerce.number().int().min(1).default(100).transform((n) => Math.min(n, 1000)) }),
        response: { 200: z.object({ items: z.array(Command) }), ...errors },
      },
    }, async (req) => {
      const d = deviceAt(req.params.siteId, req.params.deviceId);
      return { items: deps.commands.list(d.deviceId, req.query.limit).map(CommandStore.view) };
    });

    app.get('/sites/:siteId/devices/:deviceId/commands/:commandId', {
      config: { access: 'read' },
      schema: {
        tags: ['commands'], summary: 'One command: pending → delivered (PUBACK) → succeeded | failed, or expired',
        params: DeviceParams.extend({ commandId: z.string().min(1).max(128) }), response: { 200: Command, ...errors },
      },
    }, async (req) => {
      const d = deviceAt(req.params.siteId, req.params.deviceId);
      const c = deps.commands.get(req.params.commandId);
      if (!c || c.deviceId !== d.deviceId) throw new SitegateError('not_found', `no command ${req.params.commandId} for device ${d.deviceId}`);
      return CommandStore.view(c);
    });
  };
}
