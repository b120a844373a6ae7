import crypto from 'node:crypto';
import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { EvidenceQuery, WorkerEvidence } from '../../../../schemas/src/audit.ts';
import { ErrorBody, Id } from '../../../../schemas/src/common.ts';
import { SiteCalendar } from '../../calendar/siteCalendar.ts';
import { DIGEST_FORMAT } from '../../evidence/digest.ts';
import { recordedDigest } from '../../checks/evidence-month-close/monthClose.ts';
import { SitegateError } from '../../errors.ts';
import { readEvidence } from '../../ledger/evidence.ts';
import type { ApiDeps } from '../deps.ts';
import { sendSerialised } from '../sendSerialised.ts';

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody };

/**
 * Contract §2 attendance evidence for payroll auditors (access `audit`: auditors see their sites,
 * regulators their region): a worker's check-ins of a month with the digest that proves the list
 * (JSON, or CSV with a BOM), and a site's photos by SHA-256 (check-ins, camera snapshots, rectifications).
 */
export function evidenceRoutes(deps: ApiDeps): FastifyPluginAsyncZod {
  return async (app) => {
    app.get('/sites/:siteId/workers/:workerId/evidence', {
      config: { access: 'audit' },
      schema: {
        tags: ['audit'],
        summary: 'Every check-in of a worker in a month (site time, device, direction, method, face verdict and similarity, photo SHA-256), days present, hours, and a digest of the canonical rows; format=csv gives the CSV (UTF-8 with BOM) whose rows the digest covers',
        params: z.object({ siteId: Id, workerId: Id }), querystring: EvidenceQuery,
        response: { 200: WorkerEvidence, ...errors },
      },
    }, async (req, reply) => {
      const { siteId, workerId } = req.params;
      const site = deps.registry.site(siteId)!;
      if (!deps.registry.worker(siteId, workerId)) throw new SitegateError('not_found', `no worker ${workerId} at site ${siteId}`);
      const { month, format } = req.query;
      const recorded = recordedDigest(deps.audit, siteId, month, workerId);
      const watermark = deps.live.siteWatermark(site, deps.now());
      const closed = watermark !== undefined && watermark >= SiteCalendar.of(site.timezone).startOfDay(`${SiteCalendar.addMonths(month, 1)}-01`);
      // The worker's month is read, shaped, validated and serialised on the report thread.
      const e = await deps.reports.evidenceBody(site, workerId, month, { format, closed, ...(recorded ? { recorded } : {}) });
      reply.header('sitegate-evidence-digest', `${DIGEST_FORMAT}:${e.root}`);
      if (recorded) reply.header('sitegate-evidence-recorded-digest', `${DIGEST_FORMAT}:${recorded.root}`);
      if (format === 'csv') {
        // The CSV is the evidence itself; the response schema describes the JSON form.
        reply.header('content-disposition', `attachment; filename="evidence-${siteId}-${workerId}-${month}.csv"`);
        return sendSerialised(reply, e.body, 'text/csv; charset=utf-8');
      }
      return sendSerialised(reply, e.body);
    });

    app.get('/sites/:siteId/photos/:sha256', {
      config: { access: 'photo' },
      schema: {
        tags: ['audit'],
        summary: 'A photo of this site by its SHA-256: a check-in photo, a camera snapshot, or one uploaded for a rectification (construction units: no check-in photos)',
        params: z.object({ siteId: Id, sha256: z.string().regex(/^[0-9a-fA-F]{64}$/, '64 hex digits').transform((s) => s.toLowerCase()) }),
        response: errors,
      },
    }, async (req, reply) => {
      const { siteId, sha256 } = req.params;
      // A hash of another site's photo is answered as unknown: existence does not leak across scopes.
      // Check-in photos show workers' faces (personal information): not for construction units.
      const mayCheckins = req.token!.role !== 'construction_unit';
      // Camera snapshots are the site's own view (contract §6 drill-down): every role of this route.
      if (!deps.photos.has(siteId, sha256) && !(await deps.ledger.hasSnapshot(siteId, sha256)) && !(mayCheckins && (await deps.ledger.hasCheckinPhoto(siteId, sha256)))) {
        throw new SitegateError('not_found', `no photo ${sha256} at site ${siteId}`);
      }
      const bytes = readEvidence(deps.ledger.evidenceDir, sha256);
      if (!bytes) throw new SitegateError('not_found', `photo ${sha256} is referenced but not stored`);
      if (crypto.createHash('sha256').update(bytes).digest('hex') !== sha256) {
        req.log.error({ siteId, sha256 }, 'evidence file does not match its SHA-256');
        throw new SitegateError('internal', 'the stored photo does not match its SHA-256');
      }
      return reply.type('image/jpeg').header('etag', `"${sha256}"`).header('cache-control', 'private, max-age=31536000, immutable').send(bytes as never);
    });
  };
}
