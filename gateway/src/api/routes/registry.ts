import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { Id, ErrorBody } from '../../../../schemas/src/common.ts';
import { DeviceBody, DeviceCreated, SiteBody, Site as SiteSchema, Worker as WorkerSchema, WorkerBody } from '../../../../schemas/src/api.ts';
import { SitegateError } from '../../errors.ts';
import { HazardSettings } from '../../checks/hazard/settings.ts';
import { siteInScope } from '../../broker/access.ts';
import type { Worker } from '../../registry/registry.ts';
import type { ApiDeps } from '../deps.ts';

const SiteParams = z.object({ siteId: Id });
const WorkerParams = z.object({ siteId: Id, workerId: Id });
const DeviceParams = z.object({ siteId: Id, deviceId: Id });
const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody };

/** Public view of a worker: the card only as its last 4 digits, never its hash or number. */
const publicWorker = (w: Worker, sharedCardWith: string[] = []) => ({
  siteId: w.siteId, workerId: w.workerId, name: w.name,
  ...(w.employer !== undefined ? { employer: w.employer } : {}), ...(w.trade !== undefined ? { trade: w.trade } : {}),
  ...(w.keyRole ? { keyRole: w.keyRole } : {}), ...(w.cardLast4 ? { wageCardLast4: w.cardLast4 } : {}),
  ...(sharedCardWith.length ? { sharedCardWith } : {}),
});

/** Contract §2 "Registry (admin)": sites, workers, devices. */
export function registryRoutes(deps: ApiDeps): FastifyPluginAsyncZod {
  return async (app) => {
    app.put('/sites/:siteId', {
      config: { access: 'admin' },
      schema: { tags: ['registry'], summary: 'Create or replace a site', params: SiteParams, body: SiteBody, response: { 200: SiteSchema, 201: SiteSchema, ...errors } },
    }, async (req, reply) => {
      // Threshold keys must name a metric's rule (domain.md "Site settings": unknown keys are a 400).
      const s = req.body.settings;
      // (A device's ingestRate is the broker's, not the hazard rules'.)
      const devices = s?.devices && Object.fromEntries(Object.entries(s.devices).map(([id, { ingestRate: _rate, ...d }]) => [id, d]));
      const hazard = HazardSettings.safeParse({ ...(s?.thresholds ? { thresholds: s.thresholds } : {}), ...(devices ? { devices } : {}) });
      if (!hazard.success) {
        const issues = hazard.error.issues.map((i) => `settings.${i.path.join('.')}: ${i.message}`);
        throw new SitegateError('bad_request', issues.join('; '), issues);
      }
      const { site, created } = deps.registry.putSite(req.params.siteId, req.body);
      req.log.info({ siteId: site.siteId, created }, 'site saved');
      return reply.status(created ? 201 : 200).send(site);
    });

    app.get('/sites', {
      config: { access: 'read' },
      schema: { tags: ['registry'], summary: 'Sites in the caller\'s scope', response: { 200: z.object({ items: z.array(SiteSchema) }), ...errors } },
    }, async (req) => ({ items: deps.registry.listSites().filter((s) => siteInScope(req.token!, s)) }));

    app.get('/sites/:siteId', {
      config: { access: 'read' },
      schema: { tags: ['registry'], params: SiteParams, response: { 200: SiteSchema, ...errors } },
    }, async (req) => deps.registry.site(req.params.siteId)!);

    app.put('/sites/:siteId/workers/:workerId', {
      config: { access: 'admin' },
      schema: { tags: ['registry'], summary: 'Create or replace a worker (wageCard kept only as keyed hash + last 4)', params: WorkerParams, body: WorkerBody, response: { 200: WorkerSchema, 201: WorkerSchema, ...errors } },
    }, async (req, reply) => {
      const { worker, created, sharedWith } = deps.registry.putWorker(req.params.siteId, req.params.workerId, req.body);
      req.log.info({ siteId: worker.siteId, workerId: worker.workerId, created, cardShared: sharedWith.length > 0 }, 'worker saved');
      return reply.status(created ? 201 : 200).send(publicWorker(worker, sharedWith));
    });

    app.get('/sites/:siteId/workers', {
      config: { access: 'audit' },
      schema: { tags: ['registry'], params: SiteParams, response: { 200: z.object({ items: z.array(WorkerSchema) }), ...errors } },
    }, async (req) => ({ items: deps.registry.listWorkers(req.params.siteId).map((w) => publicWorker(w)) }));

    app.put('/sites/:siteId/devices/:deviceId', {
      config: { access: 'admin' },
      schema: {
        tags: ['registry'],
        summary: 'Register a device; the response holds its MQTT secret once (201). Updating an existing device (200) keeps its secret.',
        params: DeviceParams, body: DeviceBody, response: { 200: DeviceCreated, 201: DeviceCreated, ...errors },
      },
    }, async (req, reply) => {
      const { device, secret } = await deps.registry.putDevice(req.params.siteId, req.params.deviceId, req.body, deps.scryptN);
      req.log.info({ siteId: device.siteId, deviceId: device.deviceId, created: !!secret }, 'device saved');
      return reply.status(secret ? 201 : 200).send({ ...device, ...(secret ? { secret } : {}) });
    });

    app.post('/sites/:siteId/devices/:deviceId/rotate-secret', {
      config: { access: 'admin' },
      schema: { tags: ['registry'], summary: 'Issue a new MQTT secret (the old one stops working)', params: DeviceParams, response: { 200: DeviceCreated, ...errors } },
    }, async (req) => {
      const device = deps.registry.device(req.params.deviceId);
      if (!device || device.siteId !== req.params.siteId) throw new SitegateError('not_found', `no device ${req.params.deviceId} at site ${req.params.siteId}`);
      const secret = await deps.registry.rotateSecret(device.deviceId);
      req.log.info({ siteId: device.siteId, deviceId: device.deviceId }, 'device secret rotated');
      return { ...device, secret };
    });

    app.get('/sites/:siteId/devices', {
      config: { access: 'read' },
      schema: { tags: ['registry'], params: SiteParams, response: { 200: z.object({ items: z.array(DeviceCreated) }), ...errors } },
    }, async (req) => ({ items: deps.registry.listDevices(req.params.siteId) }));
  };
}
