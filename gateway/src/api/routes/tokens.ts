import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { ErrorBody } from '../../../../schemas/src/common.ts';
import { TokenBody, TokenCreated } from '../../../../schemas/src/api.ts';
import { SitegateError } from '../../errors.ts';
import { parseTimestamp } from '../../ingest/timestamps.ts';
import type { ApiDeps } from '../deps.ts';

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody };

/** The scope each role needs (contract §2 "POST /tokens"). */
function checkScope(body: z.infer<typeof TokenBody>): void {
  const s = body.scope;
  const need = { admin: null, regulator: 'regions', construction_unit: 'sites', auditor: 'sites', payroll: 'sites', terminal: 'deviceId' } as const;
  const key = need[body.role];
  if (key === null) {
    if (s) throw new SitegateError('bad_request', 'admin tokens take no scope');
    return;
  }
  if (!s || !(key in s)) throw new SitegateError('bad_request', `a ${body.role} token needs scope ${key === 'deviceId' ? '{siteId, deviceId}' : `{${key}: […]}`}`);
}

export function tokenRoutes(deps: ApiDeps): FastifyPluginAsyncZod {
  return async (app) => {
    app.post('/tokens', {
      config: { access: 'admin' },
      schema: { tags: ['tokens'], summary: 'Issue an API token (shown once)', body: TokenBody, response: { 201: TokenCreated, ...errors } },
    }, async (req, reply) => {
      checkScope(req.body);
      const s = req.body.scope;
      if (s && 'deviceId' in s) {
        const d = deps.registry.device(s.deviceId);
        if (!d || d.siteId !== s.siteId) throw new SitegateError('bad_request', `no device ${s.deviceId} at site ${s.siteId}`);
      }
      let expiresAt: number | undefined;
      if (req.body.expiresAt !== undefined) {
        const ts = parseTimestamp(req.body.expiresAt, Number.MAX_SAFE_INTEGER);
        if (!ts.ok) throw new SitegateError('bad_request', `expiresAt: ${ts.message}`);
        expiresAt = ts.ms;
      }
      const { id, token } = deps.registry.createToken({ role: req.body.role, ...(s ? { scope: s } : {}), ...(expiresAt ? { expiresAt } : {}), ...(req.body.label ? { label: req.body.label } : {}) });
      req.log.info({ tokenId: id, role: req.body.role, by: req.token!.id }, 'token issued');
      return reply.status(201).send({ id, token, role: req.body.role, ...(s ? { scope: s } : {}), ...(expiresAt ? { expiresAt: new Date(expiresAt).toISOString() } : {}) });
    });

    app.delete('/tokens/:id', {
      config: { access: 'admin' },
      schema: { tags: ['tokens'], summary: 'Revoke a token', params: z.object({ id: z.string().min(1).max(100) }), response: { 204: z.null(), ...errors } },
    }, async (req, reply) => {
      if (!deps.registry.hasToken(req.params.id)) throw new SitegateError('not_found', `no token ${req.params.id}`);
      deps.registry.revokeToken(req.params.id);
      req.log.info({ tokenId: req.params.id, by: req.token!.id }, 'token revoked');
      return reply.status(204).send(null);
    });
  };
}
