import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { SnapshotList, SnapshotsQuery } from '../../../../schemas/src/api.ts';
import { ErrorBody, Id } from '../../../../schemas/src/common.ts';
import { SitegateError } from '../../errors.ts';
import { parseTimestamp } from '../../ingest/timestamps.ts';
import type { ApiDeps } from '../deps.ts';

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody };

/** The page position: the last item's (ts, seq), opaque to clients. */
const encodeCursor = (ts: number, seq: number) => Buffer.from(`${ts}.${seq}`).toString('base64url');
function decodeCursor(c: string): { ts: number; seq: number } {
  const m = /^(\d{1,16})\.(\d{1,16})$/.exec(Buffer.from(c, 'base64url').toString());
  if (!m) throw new SitegateError('bad_request', 'cursor: not a cursor this route gave');
  return { ts: Number(m[1]), seq: Number(m[2]) };
}

/**
 * Contract §6 `GET /sites/{siteId}/devices/{deviceId}/snapshots?since=&limit=`: a device's camera
 * snapshots by arrival time (their only time, contract §1), oldest first, each by its SHA-256; the
 * image itself is `GET /sites/{siteId}/photos/{sha256}`. Access `read`, as the site's status and
 * live feed that show them: admin, regulators of the region, the site's construction unit.
 */
export function snapshotRoutes(deps: ApiDeps): FastifyPluginAsyncZod {
  return async (app) => {
    app.get('/sites/:siteId/devices/:deviceId/snapshots', {
      config: { access: 'read' },
      schema: {
        tags: ['read'], summary: 'A device\'s camera snapshots (arrival time, SHA-256), oldest first; images at GET /sites/{siteId}/photos/{sha256}',
        params: z.object({ siteId: Id, deviceId: Id }), querystring: SnapshotsQuery,
        response: { 200: SnapshotList, ...errors },
      },
    }, async (req) => {
      const { siteId, deviceId } = req.params;
      const device = deps.registry.device(deviceId);
      if (!device || device.siteId !== siteId) throw new SitegateError('not_found', `no device ${deviceId} at site ${siteId}`);
      const q = req.query;
      if (q.since !== undefined && q.cursor !== undefined) throw new SitegateError('bad_request', 'give since or cursor, not both (the cursor carries the position)');
      let after = { ts: 0, seq: 0 };
      if (q.cursor !== undefined) after = decodeCursor(q.cursor);
      else if (q.since !== undefined) {
        const ts = parseTimestamp(/^\d+$/.test(q.since) ? Number(q.since) : q.since, Number.MAX_SAFE_INTEGER);
        if (!ts.ok) throw new SitegateError('bad_request', `since: ${ts.message}`);
        // Inclusive: everything at `since` or later is after (since, seq 0).
        after = { ts: ts.ms, seq: 0 };
      }
      const rows = await deps.ledger.snapshots(siteId, deviceId, after, q.limit + 1);
      const items = rows.slice(0, q.limit);
      const last = items.at(-1);
      return {
        items: items.map((r) => ({ ts: new Date(r.ts).toISOString(), sha256: r.msgId, ...(typeof r.body.bytes === 'number' ? { bytes: r.body.bytes } : {}) })),
        ...(rows.length > q.limit && last ? { next: encodeCursor(last.ts, last.seq) } : {}),
      };
    });
  };
}
