import crypto from 'node:crypto';
import type { FastifyReply } from 'fastify';
import { AgentError } from '../errors.ts';
import type { InputContext } from './input.ts';

const digest = (s: string) => crypto.createHash('sha256').update(s).digest();

/**
 * A POST endpoint for equipment that pushes JSON: the token is checked before the body is looked
 * at (compared in constant time), the body is parsed here rather than by Fastify so a malformed
 * body is answered and counted like every other equipment error, and an AgentError thrown by the
 * handler becomes `{error, message, details?}` with its status.
 */
export function pushRoute(ctx: InputContext, url: string, token: string, handle: (body: unknown, reply: FastifyReply) => Promise<unknown>): void {
  const expected = digest(token);
  ctx.http.register(async (app) => {
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
    app.post(url, async (req, reply) => {
      try {
        const auth = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1] ?? '';
        if (!crypto.timingSafeEqual(digest(auth), expected)) throw new AgentError('unauthorized', `wrong or missing token for ${url}`);
        let body: unknown;
        try {
          body = JSON.parse((req.body as Buffer | undefined)?.toString('utf8') ?? '');
        } catch (e) {
          throw new AgentError('invalid_json', `body is not valid JSON: ${(e as Error).message}`);
        }
        return await handle(body, reply);
      } catch (e) {
        const err = e instanceof AgentError ? e : new AgentError('queue_write_failed', (e as Error).message);
        if (!err.counted) ctx.error(err.code, err.message);
        return reply.code(err.status).send(err.body());
      }
    });
  });
}

/** Reads a dot path (`AccessControllerEvent.employeeNoString`) from a vendor's JSON. */
export function at(obj: unknown, path: string): unknown {
  let v: unknown = obj;
  for (const k of path.split('.')) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[k];
  }
  return v;
}

/** One item or an array of them, as equipment sends either. */
export const items = (body: unknown): unknown[] => (Array.isArray(body) ? body : [body]);
