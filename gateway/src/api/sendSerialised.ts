import type { FastifyReply } from 'fastify';

/**
 * Sends a body that is already the response (api/reportBodies.ts: validated against the route's
 * response schema and serialised on the report thread). With a Content-Type set, Fastify 5 sends
 * a string unmodified: no schema serializer, no preSerialization hook (docs/Reference/Reply.md,
 * "Strings"), so the event loop only copies it to the socket.
 */
export function sendSerialised(reply: FastifyReply, body: string, type = 'application/json; charset=utf-8'): FastifyReply {
  return reply.type(type).send(body);
}
