import type { Logger } from 'pino';
import type { Clock } from '../clock/clock.ts';
import type { SitePhotos } from '../alerts/sitePhotos.ts';
import type { WebhookStore } from '../webhooks/webhookStore.ts';
import type { Broker } from '../broker/broker.ts';
import type { Checks } from '../checks/shardedChecks.ts';
import type { CommandStore } from '../commands/commandStore.ts';
import type { Ingestor } from '../ingest/ingestor.ts';
import type { LiveHub } from '../live/liveHub.ts';
import type { AnyLedgerStore } from '../ledger/types.ts';
import type { ReportReader } from '../ledger/reportReader.ts';
import type { EventLoopMonitor } from '../observability/eventLoop.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { Registry } from '../registry/registry.ts';
import type { FaceRegistry } from '../registry/faceRegistry.ts';
import type { SinkRunner } from '../sinks/sinkRunner.ts';
import type { Alerts, Audit, SinkStore } from '../state/types.ts';
import type { LiveState } from '../state/liveState.ts';

/** Everything the HTTP routes use, handed in as one object (style.md §7). */
export interface ApiDeps {
  registry: Registry;
  ledger: AnyLedgerStore;
  ingestor: Ingestor;
  broker: Broker;
  live: LiveState;
  sinks: SinkRunner[];
  /** Sink cursors and dead letters. */
  sinkState: SinkStore;
  alerts: Alerts;
  liveHub: LiveHub;
  audit: Audit;
  checks: Checks;
  faces: FaceRegistry;
  /** Photos uploaded for a site (rectifications). */
  photos: SitePhotos;
  webhooks: WebhookStore;
  /** Commands to site equipment (contract §7). */
  commands: CommandStore;
  metrics: Metrics;
  loop: EventLoopMonitor;
  /** Month-wide reports, computed off the event loop. */
  reports: ReportReader;
  logger: Logger;
  now: Clock;
  scryptN: number;
  isShuttingDown: () => boolean;
  /** Region mode, once listening: the duties held here (region/duties.ts). */
  regionDuties?: () => string[] | undefined;
}
