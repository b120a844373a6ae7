import fs from 'node:fs';
import path from 'node:path';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Logger } from 'pino';
import type { Config } from '../../schemas/src/config.ts';
import { authorize } from './api/auth.ts';
import type { ApiDeps } from './api/deps.ts';
import { errorHandler } from './api/errorHandler.ts';
import { API_ROUTES } from './api/routes/index.ts';
import { operationsRoutes } from './api/routes/operations.ts';
import { AlertLedgerFeed } from './alerts/alertLedger.ts';
import type { AlertEvent, AlertStore } from './alerts/alertStore.ts';
import type { AuditTrail } from './audit/auditTrail.ts';
import { SitePhotos } from './alerts/sitePhotos.ts';
import { WebhookStore } from './webhooks/webhookStore.ts';
import { WebhookDeliverer } from './webhooks/webhookDeliverer.ts';
import { Broker } from './broker/broker.ts';
import { systemClock, type Clock } from './clock/clock.ts';
import { CheckRunner } from './checks/checkRunner.ts';
import { ShardedChecks, type Checks } from './checks/shardedChecks.ts';
import { CommandDelivery } from './commands/commandDelivery.ts';
import { CommandStore } from './commands/commandStore.ts';
import { Linkage } from './commands/linkage.ts';
import { CHECKS } from './checks/registry.ts';
import type { CheckContext, CheckFactory } from './checks/check.ts';
import { alertsTopic } from './ingest/topics.ts';
import { Ingestor } from './ingest/ingestor.ts';
import { Ledger } from './ledger/ledger.ts';
import { ReportReader } from './ledger/reportReader.ts';
import { createLogger } from './observability/logger.ts';
import { EventLoopMonitor } from './observability/eventLoop.ts';
import { collectAtScrape, createMetrics, type Metrics } from './observability/metrics.ts';
import type { Registry } from './registry/registry.ts';
import type { PgStateStore } from './state/pg/pgState.ts';
import { RegionDuties } from './region/duties.ts';
import { openStorage } from './storage.ts';
import type { PgLedger } from './ledger/pg/pgLedger.ts';
import { FaceRegistry } from './registry/faceRegistry.ts';
import { newSecret } from './registry/secrets.ts';
import { InfluxV1Sink } from './sinks/influxV1.ts';
import { InfluxV2Sink } from './sinks/influxV2.ts';
import type { DeviceKindOf } from './sinks/points.ts';
import type { Sink } from './sinks/sink.ts';
import { SinkRunner } from './sinks/sinkRunner.ts';
import { LiveState } from './state/liveState.ts';
import { LiveHub } from './live/liveHub.ts';
import { siteSummary } from './live/siteSummary.ts';

export interface GatewayDeps {
  /** The calendar clock (clock/clock.ts); tests hand in one they set and keep everything else real. */
  now?: Clock;
  logger?: Logger;
  /** Extra sinks (tests); InfluxDB sinks come from the configuration. */
  sinks?: Sink[];
  /** The checks to run (default: the registry in checks/registry.ts). */
  checks?: CheckFactory[];
  /** How often the alert timers run (alerts.escalateDue), real ms; 0: never (tests that drive them). Default: SITEGATE_ALERT_TIMER_MS. */
  alertTimerMs?: number;
  /** How often pending commands past expiresAt are expired, real ms; 0: never (tests that drive it). */
  commandSweepMs?: number;
}

export interface Gateway {
  config: Config;
  http: FastifyInstance;
  broker: Broker;
  /** SQLite by default; PostgreSQL in region mode (its reads answer with promises). */
  ledger: Ledger | PgLedger;
  registry: Registry;
  ingestor: Ingestor;
  metrics: Metrics;
  logger: Logger;
  live: LiveState;
  sinks: SinkRunner[];
  alerts: AlertStore;
  audit: AuditTrail;
  /** One runner (embedded), or one per shard of the sites (region mode). */
  checks: Checks;
  /** Sends the webhook outbox (contract §6). */
  deliverer: WebhookDeliverer;
  /** Commands to site equipment and their delivery (contract §7). */
  commands: CommandStore;
  commandDelivery: CommandDelivery;
  /** The report thread (month-wide reports off the event loop). */
  reports: ReportReader;
  /** Where the generated admin token was written, when SITEGATE_ADMIN_TOKEN was not given. */
  adminTokenFile?: string;
  /** Region mode, once listening: the duties this instance holds (region/duties.ts). */
  readonly region?: RegionDuties;
  listen(): Promise<{ httpPort: number; mqttPort: number; wsPort: number }>;
  close(): Promise<void>;
}

const MiB = 1024 * 1024;

function configuredSinks(config: Config, deviceKind: DeviceKindOf): Sink[] {
  if (!config.SITEGATE_INFLUX_URL) return [];
  if (config.SITEGATE_INFLUX_DB) {
    return [new InfluxV1Sink({
      url: config.SITEGATE_INFLUX_URL, db: config.SITEGATE_INFLUX_DB, deviceKind,
      ...(config.SITEGATE_INFLUX_USERNAME ? { username: config.SITEGATE_INFLUX_USERNAME, password: config.SITEGATE_INFLUX_PASSWORD ?? '' } : {}),
    })];
  }
  return [new InfluxV2Sink({
    url: config.SITEGATE_INFLUX_URL, deviceKind, token: config.SITEGATE_INFLUX_TOKEN!, org: config.SITEGATE_INFLUX_ORG!, bucket: config.SITEGATE_INFLUX_BUCKET!,
  })];
}

/** The first admin token: from SITEGATE_ADMIN_TOKEN, or generated once into a 0600 file. */
function bootstrapAdmin(config: Config, registry: Registry, logger: Logger): string | undefined {
  if (config.SITEGATE_ADMIN_TOKEN) {
    registry.createToken({ role: 'admin', label: 'SITEGATE_ADMIN_TOKEN' }, { id: 'admin-env', token: config.SITEGATE_ADMIN_TOKEN });
    return undefined;
  }
  const file = path.resolve(config.SITEGATE_DATA_DIR, 'admin-token');
  if (!fs.existsSync(file)) {
    const token = `sg_${newSecret()}`;
    fs.writeFileSync(file, token + '\n', { mode: 0o600, flag: 'wx' });
    registry.createToken({ role: 'admin', label: 'generated at first start' }, { id: 'admin-file', token });
  }
  logger.info({ file }, 'admin token file (mode 0600); set SITEGATE_ADMIN_TOKEN to choose your own');
  return file;
}

/**
 * Builds the whole gateway — ledger, registry, ingest, broker, sinks, HTTP API — without
 * listening anywhere: `listen()` is a separate step, and tests can use `http.inject()`.
 */
export async function buildApp(config: Config, deps: GatewayDeps = {}): Promise<Gateway> {
  const now = deps.now ?? systemClock;
  const logger = deps.logger ?? createLogger(config.SITEGATE_LOG_LEVEL);
  const metrics = createMetrics();
  const loop = new EventLoopMonitor();
  fs.mkdirSync(config.SITEGATE_DATA_DIR, { recursive: true });
  // Ledger and state (storage.ts): SQLite in the data directory, or PostgreSQL in region mode
  // (contract §8). The state stores are behind the interfaces of state/types.ts; faces, commands,
  // webhooks and the checks' own rows use the same connection.
  const pgUrl = config.SITEGATE_DATABASE_URL;
  const instanceId = config.SITEGATE_INSTANCE_ID;
  let fatal: Error | null = null;
  const storage = await openStorage(config, {
    now, logger,
    onCommit: ({ records, commitMs }) => {
      metrics.ledgerCommitSeconds.observe(commitMs / 1000);
      metrics.ledgerGroupSize.observe(records);
    },
    onFatal: (err) => {
      fatal = err;
      logger.fatal({ err }, 'ledger writer failed: no message can be made durable; refusing ingest');
    },
  });
  const { store, ledger, stepReads } = storage;
  const { db: state, registry, audit, alerts, sinkState } = store;
  const live = await LiveState.load(ledger);
  const reports = new ReportReader(storage.reportSource, registry, logger.child({ component: 'reports' }));
  // The SQLite ledger decodes and validates device payloads on its writer's thread; otherwise the ingestor does.
  const ingestor = new Ingestor({ ledger, ...(ledger instanceof Ledger ? { payloads: ledger } : {}), registry, metrics, logger, now });
  // Commands (contract §7): stored in state.db, delivered over the broker, answered through its publish hook.
  const commands = new CommandStore({ db: state, audit, now });
  // Region mode (contract §8): brokers joined through Redis, so a device may listen on another instance.
  const region = config.SITEGATE_REDIS_URL ? { redisUrl: config.SITEGATE_REDIS_URL, instanceId: config.SITEGATE_INSTANCE_ID! } : undefined;
  const commandDelivery = new CommandDelivery({
    store: commands, metrics, logger: logger.child({ component: 'commands' }), now, sweepMs: deps.commandSweepMs ?? 5_000, listenersElsewhere: !!region,
  });
  const broker = await Broker.create({ registry, ingestor, metrics, logger: logger.child({ component: 'mqtt' }), commands: commandDelivery, ...(region ? { region } : {}) });
  commandDelivery.attach(broker.aedes);
  const sinks = [...configuredSinks(config, (deviceId) => registry.device(deviceId)?.kind), ...(deps.sinks ?? [])].map((sink) => new SinkRunner({
    sink, ledger, state: sinkState, metrics, logger, now, batchSize: config.SITEGATE_INFLUX_BATCH, flushMs: config.SITEGATE_INFLUX_FLUSH_MS,
  }));
  const adminTokenFile = bootstrapAdmin(config, registry, logger);
  const photos = new SitePhotos(state, ledger.evidenceDir, now);
  // Webhooks: the outbox is written in each alert change's own transaction (webhooks/webhookStore.ts).
  const webhooks = new WebhookStore(state, registry, now);
  alerts.onEventInTransaction((e) => webhooks.enqueue(e, () => alerts.view(e.alert)));
  const deliverer = new WebhookDeliverer({ db: state, hooks: webhooks, now, metrics, logger: logger.child({ component: 'webhooks' }) });
  alerts.onEvent(() => deliverer.kick());
  const faces = new FaceRegistry({
    db: state, evidenceDir: ledger.evidenceDir, audit, metrics, logger, now,
    ...(config.SITEGATE_MODELS_DIR ? { modelsDir: config.SITEGATE_MODELS_DIR } : {}),
  });
  // Region mode: the checks, the webhook outbox and each sink run on one instance at a time (region/duties.ts).
  let duties: RegionDuties | undefined;
  const checkContext: CheckContext = {
    registry, ledger, alerts, audit, live, logger, metrics, now, dataDir: config.SITEGATE_DATA_DIR, faces, reports,
    ...(stepReads ? { stepReads } : {}),
    ...(config.SITEGATE_MODELS_DIR ? { modelsDir: config.SITEGATE_MODELS_DIR } : {}),
  };
  // Region mode: the sites in shards, each shard's checks where its lease is (checks/shardedChecks.ts);
  // the fence is looked up when a transaction runs (the duties are made below, from the checks).
  const sharded = pgUrl ? new ShardedChecks(checkContext, deps.checks ?? CHECKS, { shards: config.SITEGATE_REGION_SHARDS, fence: (k) => () => duties!.fence(`checks#${k}`)() }) : undefined;
  const runner = sharded ? undefined : new CheckRunner(checkContext, deps.checks ?? CHECKS);
  const checks: Checks = sharded ?? runner!;
  // Read at each scrape, from the same numbers as /readyz (sharded: a check's slowest running shard).
  collectAtScrape(metrics.checkLag, () => {
    for (const [name, s] of Object.entries(checks.state().checks)) metrics.checkLag.set({ check: name }, s.lagRecords);
  });
  // A counter follows the registry's own count: what it shed since the last scrape.
  let shedCounted = 0;
  collectAtScrape(metrics.registryLookupsShed, () => {
    metrics.registryLookupsShed.inc(registry.shedLookups - shedCounted);
    shedCounted = registry.shedLookups;
  });
  // Every alert event: to MQTT subscribers of the site, and into the ledger so sinks write it.
  const alertLedger = new AlertLedgerFeed({ alerts, audit, ledger, progress: store.progress('alert-ledger'), logger, ...(pgUrl ? { pollMs: 1000 } : {}) });
  alerts.onEvent((e: AlertEvent) => {
    broker.publish(alertsTopic(e.alert.siteId), { event: e.type, ...alerts.view(e.alert) });
    alertLedger.record(e);
  });
  // Linkage (contract §7): commands sent on alert events after their commit, with a cursor for a crash in between.
  const linkage = new Linkage({
    ...(pgUrl ? { pollMs: 500 } : {}),
    alerts, commands, registry, audit, progress: store.progress('linkage'), metrics, logger: logger.child({ component: 'linkage' }), now,
  });
  const liveHub = new LiveHub({
    ledger, alerts, now,
    summarise: (siteIds) => Promise.all(siteIds.flatMap((id) => { const s = registry.site(id); return s ? [siteSummary({ registry, ledger, live, broker, alerts, now }, s)] : []; })),
  });
  const timerMs = deps.alertTimerMs ?? config.SITEGATE_ALERT_TIMER_MS;
  // The alert timers (escalation, reminders): a pass every timerMs; in region mode on the instance
  // holding the `timers` duty (each step is decided from the alert's columns under the state lock,
  // so a pass elsewhere could not fire one twice; the duty keeps it to one place).
  let escalation: NodeJS.Timeout | undefined;
  const startTimers = () => {
    if (timerMs <= 0 || escalation) return;
    // Deadlines that passed while the gateway (or the duty) was away fire now, not one period later.
    alerts.escalateDue(now());
    escalation = setInterval(() => alerts.escalateDue(now()), timerMs);
    escalation.unref();
  };
  const stopTimers = () => {
    clearInterval(escalation);
    escalation = undefined;
  };

  let shuttingDown = false;
  const apiDeps: ApiDeps = {
    registry, ledger, ingestor, broker, live, sinks, sinkState, metrics, loop, reports, logger, now, alerts, audit, checks, liveHub, faces, photos, webhooks, commands,
    scryptN: config.SITEGATE_SECRET_SCRYPT_N, isShuttingDown: () => shuttingDown || fatal !== null, regionDuties: () => duties?.held(),
  };

  const http = Fastify({ loggerInstance: logger.child({ component: 'http' }) as FastifyBaseLogger, bodyLimit: MiB })
    .withTypeProvider<ZodTypeProvider>() as unknown as FastifyInstance;
  http.setValidatorCompiler(validatorCompiler);
  http.setSerializerCompiler(serializerCompiler);
  http.setErrorHandler(errorHandler(metrics));
  // Streamed bodies: CSV wage payments (up to 64 MiB, parsed row by row), face photos.
  http.removeContentTypeParser('text/plain'); // JSON, CSV and JPEG only: anything else is 415
  http.addContentTypeParser('text/csv', (_req, payload, done) => done(null, payload));
  http.addContentTypeParser('image/jpeg', { parseAs: 'buffer', bodyLimit: 2 * MiB }, (_req, body, done) => done(null, body));
  http.addHook('onRequest', authorize(registry));
  await http.register(swagger, {
    openapi: {
      info: { title: 'sitegate', version: '0.1.0', description: 'Ingestion gateway for smart construction sites (contract.md §2).' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
  });
  await http.register(swaggerUi, { routePrefix: '/docs' });
  operationsRoutes(http, apiDeps);
  await http.register(async (api) => {
    for (const routes of API_ROUTES) await api.register(routes(apiDeps));
  }, { prefix: '/api/v1' });
  http.setNotFoundHandler((req, reply) => reply.status(404).send({ error: 'not_found', message: `no route ${req.method} ${req.url.split('?')[0]}` }));
  await http.ready();

  const gateway: Gateway = {
    config, http, broker, ledger, registry, ingestor, metrics, logger, live, sinks, alerts, audit, checks, reports, deliverer, commands, commandDelivery,
    ...(adminTokenFile ? { adminTokenFile } : {}),
    get region() { return duties; },
    async listen() {
      await http.listen({ host: config.SITEGATE_HTTP_HOST, port: config.SITEGATE_HTTP_PORT });
      const httpPort = (http.server.address() as { port: number }).port;
      const { port: mqttPort, wsPort } = await broker.listen({ host: config.SITEGATE_MQTT_HOST, port: config.SITEGATE_MQTT_PORT, wsPort: config.SITEGATE_MQTT_WS_PORT });
      commandDelivery.start();
      if (!sharded) {
        // Every duty runs here. Ingest and sinks never wait for the checks' restore and replay
        // (issue 15): the checks catch up behind, and /readyz says how far behind they are.
        for (const s of sinks) s.start();
        await alertLedger.start(); // alert events a crash kept from the ledger: a few, appended now
        deliverer.start();
        linkage.start(); // before the checks: their first alert events find it listening
        // Deadlines that passed while the gateway was down fire now, not one period later, and by
        // the time it says it listens (each step once: alerts/deadlines.ts decides from the columns).
        startTimers();
        void runner!.start(ledger).catch((err: unknown) => logger.error({ err }, 'checks failed to start'));
      } else {
        // Region mode: each duty where its lease is; those this instance got start before it says it listens.
        for (const s of sinks) await s.stop(); // not started: they hold no records in memory until their lease comes
        duties = new RegionDuties({
          url: pgUrl!, instanceId: instanceId!, stateDb: (store as PgStateStore).db, logger: logger.child({ component: 'region' }), ttlMs: config.SITEGATE_REGION_LEASE_MS,
          duties: [
            ...sharded.runners.map((_, k) => ({
              key: `checks#${k}`,
              start: () => { void sharded.start(k, ledger).catch((err: unknown) => logger.error({ err, shard: k }, 'checks failed to start')); },
              stop: () => sharded.stopShard(k),
            })),
            { key: 'timers', start: startTimers, stop: async () => stopTimers() },
            { key: 'webhooks', start: () => deliverer.start(), stop: () => deliverer.close() },
            { key: 'linkage', start: () => linkage.start(), stop: async () => linkage.stop() },
            { key: 'alert-ledger', start: () => alertLedger.start(), stop: () => alertLedger.close() },
            ...sinks.map((s) => ({ key: `sink:${s.name}`, start: () => s.start(), stop: () => s.stop() })),
          ],
        });
        await duties.start();
      }
      logger.info({ httpPort, mqttPort, wsPort, dataDir: path.resolve(config.SITEGATE_DATA_DIR), sinks: sinks.map((s) => s.name) }, 'sitegate listening');
      return { httpPort, mqttPort, wsPort };
    },
    /** Clean shutdown: stop accepting, let in-flight messages commit, flush sinks, close. */
    async close() {
      if (shuttingDown) return;
      shuttingDown = true;
      broker.stopListening();
      liveHub.closeAll();
      await http.close();
      await ledger.drained();
      await broker.close();
      await ledger.drained();
      stopTimers();
      commandDelivery.stop();
      await duties?.stop(); // hands the region's duties over at once
      await deliverer.close();
      await checks.stop();
      linkage.stop();
      await faces.close();
      await reports.close();
      await ledger.drained();
      await Promise.all(sinks.map((s) => s.close()));
      await alertLedger.close();
      await storage.close();
      loop.stop();
      logger.info('sitegate stopped');
    },
  };
  return gateway;
}
