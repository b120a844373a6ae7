import fs from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { ALERT_KIND_LABELS, KEY_ROLE_LABELS } from '../../i18n/lang.ts';
import type { ApiDeps } from '../deps.ts';

/** Outside /api/v1: health (no token), readiness with ingest and sink state, Prometheus metrics (admin). */
export function operationsRoutes(app: FastifyInstance, deps: ApiDeps): void {
  // The regulators' live page (dashboards/live/index.html): static, it asks for a token itself. The
  // labels of alert kinds and key roles come from the one catalogue (i18n/lang.ts), filled in once.
  // Images are fetched with the token and shown as blob: URLs (an <img> cannot send a header).
  const page = fs.readFileSync(new URL('../../../../dashboards/live/index.html', import.meta.url), 'utf8')
    .replace('"__SITEGATE_LABELS__"', () => JSON.stringify({ kinds: ALERT_KIND_LABELS, roles: KEY_ROLE_LABELS }));
  app.get('/live', { schema: { hide: true } }, async (_req, reply) =>
    reply.type('text/html; charset=utf-8').header('content-security-policy', "default-src 'self'; script-src 'unsafe-inline' 'self'; style-src 'unsafe-inline'; img-src 'self' blob:").send(page));

  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }));

  app.get('/readyz', { schema: { hide: true } }, async (_req, reply) => {
    const sinks = deps.sinks.map((s) => s.state());
    const duties = deps.regionDuties?.();
    const ready = !deps.isShuttingDown();
    deps.metrics.ledgerBacklog.set(deps.ledger.backlog);
    return reply.status(ready ? 200 : 503).send({
      status: ready ? 'ready' : 'shutting_down',
      ledger: { lastSeq: deps.ledger.lastSeq, backlog: deps.ledger.backlog },
      eventLoop: deps.loop.read(),
      // The checks catch up behind ingest (they never hold it up): how far behind they are.
      checks: deps.checks.state(),
      // A sink that is down does not make the gateway unready: the ledger spools for it.
      sinks,
      // Region mode: the duties this instance runs now (checks shards, webhooks, sinks …).
      ...(duties ? { duties } : {}),
    });
  });

  app.get('/metrics', { config: { access: 'admin' }, schema: { hide: true } }, async (_req, reply) => {
    deps.metrics.ledgerBacklog.set(deps.ledger.backlog);
    deps.metrics.ledgerLastSeq.set(deps.ledger.lastSeq);
    const loop = deps.loop.read();
    deps.metrics.loopDelayP99.set(loop.p99Ms / 1000);
    deps.metrics.loopDelayMax.set(loop.maxMs / 1000);
    for (const s of deps.sinks) {
      const st = s.state();
      deps.metrics.sinkLagRecords.set({ sink: st.name }, st.lagRecords);
      deps.metrics.sinkLagSeconds.set({ sink: st.name }, st.lagSeconds);
    }
    return reply.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });
}
