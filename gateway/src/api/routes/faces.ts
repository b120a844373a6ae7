import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { FaceEnrolment } from '../../../../schemas/src/api.ts';
import { ErrorBody, Id } from '../../../../schemas/src/common.ts';
import { SitegateError } from '../../errors.ts';
import type { ApiDeps } from '../deps.ts';

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 413: ErrorBody, 415: ErrorBody, 422: ErrorBody };

/**
 * Contract §2 `PUT /sites/{siteId}/workers/{workerId}/face` (admin, body `image/jpeg` ≤ 2 MiB):
 * enrols the worker's face for the re-verification of face check-ins (domain.md "Face
 * verification"). One face of at least 60 px; refusals name the reason (image_undecodable,
 * no_face, multiple_faces, face_too_small). The answer never contains the embedding.
 */
export function faceRoutes(deps: ApiDeps): FastifyPluginAsyncZod {
  return async (app) => {
    app.put('/sites/:siteId/workers/:workerId/face', {
      config: { access: 'admin' },
      schema: {
        tags: ['registry'], summary: 'Enrol a worker\'s face (body: image/jpeg, at most 2 MiB)',
        params: z.object({ siteId: Id, workerId: Id }),
        response: { 200: FaceEnrolment, 201: FaceEnrolment, ...errors },
      },
    }, async (req, reply) => {
      const { siteId, workerId } = req.params;
      if (!deps.registry.worker(siteId, workerId)) throw new SitegateError('not_found', `no worker ${workerId} at site ${siteId}`);
      const photo = req.body;
      if (!Buffer.isBuffer(photo)) throw new SitegateError('unsupported_media_type', 'the body must be the photo itself, Content-Type: image/jpeg');
      if (photo.length === 0) throw new SitegateError('image_undecodable', 'the body is empty');
      const { enrolment: e, created } = await deps.faces.enrol(siteId, workerId, photo, req.token?.id ?? 'unknown');
      req.log.info({ siteId, workerId, photoSha256: e.photoSha256, faceSizePx: e.faceSizePx, created }, 'face enrolled');
      return reply.status(created ? 201 : 200).send({
        siteId, workerId, photoSha256: e.photoSha256, modelId: e.modelId, faceSizePx: e.faceSizePx, enrolledAt: new Date(e.enrolledAt).toISOString(),
      });
    });
  };
}
