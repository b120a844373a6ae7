import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { errorBody, SitegateError, type Reason } from '../errors.ts';
import type { Metrics } from '../observability/metrics.ts';

/** Renders every error as `{error, message, details?}` from the catalogue (contract §2), and counts it. */
export function errorHandler(metrics: Metrics) {
  return (err: FastifyError, req: FastifyRequest, reply: FastifyReply) => {
    let code: Reason;
    let status: number;
    let message: string | undefined;
    let details: unknown;
    if (err instanceof SitegateError) {
      ({ code, status, details } = err);
      message = err.message;
    } else if (hasZodFastifySchemaValidationErrors(err)) {
      code = 'bad_request';
      status = 400;
      details = err.validation.map((v) => ({ path: `${err.validationContext ?? 'body'}${v.instancePath.replace(/\//g, '.')}`, message: v.message }));
      message = `invalid ${err.validationContext ?? 'request'}: ${(details as { path: string; message: string }[]).map((d) => `${d.path}: ${d.message}`).join('; ')}`;
    } else if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      code = 'body_too_large'; status = 413; message = err.message;
    } else if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      code = 'unsupported_media_type'; status = 415; message = err.message;
    } else if (err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || err.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || err.statusCode === 400) {
      code = 'bad_request'; status = 400; message = err.message;
    } else if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
      code = err.statusCode === 404 ? 'not_found' : err.statusCode === 415 ? 'unsupported_media_type' : err.statusCode === 413 ? 'body_too_large' : 'bad_request';
      status = err.statusCode; message = err.message;
    } else {
      req.log.error({ err }, 'unhandled error');
      code = 'internal'; status = 500;
    }
    metrics.httpErrors.inc({ code });
    reply.status(status).send(errorBody(code, message, details));
  };
}
