import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { ErrorBody, Id } from '../../../../schemas/src/common.ts';
import { DeadLetter, SiteStatus } from '../../../../schemas/src/api.ts';
import { siteToday } from '../../attendance/today.ts';
import { deviceOnline } from '../../live/siteSummary.ts';
import type { ApiDeps } from '../deps.ts';

const iso = (ms: number) => new Date(ms).toISOString();
const errors = { 401: ErrorBody, 403: ErrorBody, 404: ErrorBody };

/** Contract §2 "Read": what a regulator sees of a site right now, from the ledger alone. */
export function statusRoutes(deps: ApiDeps): FastifyPluginAsyncZod {
  return async (app) => {
    app.get('/sites/:siteId/status', {
      config: { access: 'read' },
      schema: { tags: ['read'], summary: 'Devices online, latest readings, open alerts', params: z.object({ siteId: Id }), response: { 200: SiteStatus, ...errors } },
    }, async (req) => {
      const { siteId } = req.params;
      const devices = deps.registry.listDevices(siteId).map((d) => {
        const live = deps.live.devices.get(d.deviceId);
        const connected = deps.broker.connectedDevices.has(d.deviceId);
        const status = live?.status;
        return {
          deviceId: d.deviceId, kind: d.kind,
          online: deviceOnline(deps.broker, deps.live, d.deviceId),
          connected,
          ...(live?.lastSeen ? { lastSeen: iso(live.lastSeen) } : {}),
          ...(status ? { status: { state: status.state, ts: iso(status.ts), ...(status.firmware ? { firmware: status.firmware } : {}), ...(status.batteryPct !== undefined ? { batteryPct: status.batteryPct } : {}) } } : {}),
          latest: Object.fromEntries([...(live?.latest ?? new Map())].map(([m, v]) => [m, { value: v.value, ts: iso(v.ts) }])),
        };
      });
      const latest = deps.live.siteLatestEvent.get(siteId);
      // "Today" and "now" in event time: the wall clock while the site is live, its latest event otherwise.
      const today = await siteToday(deps.registry, deps.ledger, deps.registry.site(siteId)!, deps.live.watermark(siteId, deps.now(), 0) ?? deps.now());
      return {
        siteId, now: iso(deps.now()), ...(latest !== undefined ? { watermark: iso(latest) } : {}), devices,
        onSiteNow: today.onSiteNow.map((w) => ({ workerId: w.workerId, since: iso(w.since) })),
        keyStaffPresentToday: today.keyStaffPresentToday.map((w) => ({ workerId: w.workerId, keyRole: w.keyRole, firstCheckin: iso(w.firstCheckin) })),
        openAlerts: deps.alerts.countOpen(siteId),
      };
    });

    app.get('/dead-letters', {
      config: { access: 'admin' },
      schema: {
        tags: ['operations'], summary: 'Points a sink refused as bad data (InfluxDB 4xx), kept aside',
        querystring: z.object({ limit: z.coerce.number().int().min(1).max(1000).default(100) }),
        response: { 200: z.object({ items: z.array(DeadLetter) }), ...errors },
      },
    }, async (req) => {
      return { items: deps.sinkState.deadLetters(req.query.limit).map((r) => ({ ...r, at: iso(r.at) })) };
    });
  };
}
