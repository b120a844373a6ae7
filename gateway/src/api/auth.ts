import type { FastifyReply, FastifyRequest } from 'fastify';
import { allowed, roleAllows, type Access } from '../broker/access.ts';
import { SitegateError } from '../errors.ts';
import type { Registry, Token } from '../registry/registry.ts';

declare module 'fastify' {
  interface FastifyRequest {
    token?: Token;
  }
  interface FastifyContextConfig {
    /** What a route needs of its caller's token; routes without it need no token (health). */
    access?: Access;
  }
}

export function bearer(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  if (!h) return undefined;
  const m = /^Bearer\s+(\S+)$/i.exec(h);
  return m?.[1];
}

/**
 * Checks the caller's token against the route's `access` and the site (and device) named in
 * its path. Non-admins learn nothing about sites outside their scope: unknown and out-of-scope
 * sites both answer 403.
 */
export function authorize(registry: Registry) {
  return async (req: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    const access = req.routeOptions.config.access;
    if (!access) return;
    const raw = bearer(req);
    const token = raw ? registry.authenticateToken(raw) : null;
    if (!token) throw new SitegateError('unauthorized');
    req.token = token;
    if (!roleAllows(token, access)) throw new SitegateError('forbidden', `role ${token.role} may not use this route`);
    const params = (req.params ?? {}) as { siteId?: string; deviceId?: string };
    if (!params.siteId) {
      if (token.role !== 'admin' && access === 'admin') throw new SitegateError('forbidden');
      return;
    }
    const site = registry.site(params.siteId);
    if (!site) {
      // PUT /sites/{siteId} creates it; everywhere else an unknown site is 404 (admins) or 403.
      if (token.role === 'admin') {
        if (req.method === 'PUT' && req.routeOptions.url === '/api/v1/sites/:siteId') return;
        throw new SitegateError('not_found', `no site ${params.siteId}`);
      }
      throw new SitegateError('forbidden', 'site outside this token\'s scope');
    }
    if (!allowed(token, access, site, params.deviceId)) {
      const reason = token.role === 'terminal' && token.scope && 'siteId' in token.scope && token.scope.siteId === site.siteId ? 'wrong_device' : 'forbidden';
      throw new SitegateError(reason, reason === 'wrong_device' ? 'a terminal token may ingest only for its own device' : 'site outside this token\'s scope');
    }
  };
}
