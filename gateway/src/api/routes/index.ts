import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { ApiDeps } from '../deps.ts';
import { alertRoutes } from './alerts.ts';
import { attendanceRoutes } from './attendance.ts';
import { commandRoutes } from './commands.ts';
import { evidenceRoutes } from './evidence.ts';
import { faceRoutes } from './faces.ts';
import { ingestRoutes } from './ingest.ts';
import { liveRoutes } from './live.ts';
import { registryRoutes } from './registry.ts';
import { snapshotRoutes } from './snapshots.ts';
import { statsRoutes } from './stats.ts';
import { statusRoutes } from './status.ts';
import { tokenRoutes } from './tokens.ts';
import { wageRoutes } from './wages.ts';
import { webhookRoutes } from './webhooks.ts';

/** Every /api/v1 route plugin, one line each. */
export const API_ROUTES: ((deps: ApiDeps) => FastifyPluginAsyncZod)[] = [
  registryRoutes,
  tokenRoutes,
  ingestRoutes,
  statusRoutes,
  alertRoutes,
  wageRoutes,
  evidenceRoutes,
  liveRoutes,
  attendanceRoutes,
  faceRoutes,
  webhookRoutes,
  statsRoutes,
  snapshotRoutes,
  commandRoutes,
];
