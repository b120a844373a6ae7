import pg from 'pg';
import type { Logger } from 'pino';
import type { Registry } from '../registry/registry.ts';
import { REGISTRY_CHANNEL } from '../state/pg/pgState.ts';

/**
 * Keeps this instance's registry (sites, workers, devices, tokens: read from memory on every
 * request and connection) current with the other instances' changes: each change there is a
 * NOTIFY on REGISTRY_CHANNEL (pgState.ts), and this reads the registry again. A token revoked on
 * one instance stops working on every instance as soon as the notification arrives (a round
 * trip); a device or token created elsewhere a moment ago is found by the registry's own lookup
 * of what it does not know. A lost listening connection is opened again, followed by a reload
 * (what it missed meanwhile).
 */
export class RegistryFollower {
  private client?: pg.Client;
  private stopped = false;
  private reloadQueued = false;
  private retry?: NodeJS.Timeout;

  constructor(private readonly o: { url: string; instanceId: string; registry: Registry; logger: Logger; retryMs?: number }) {}

  async start(): Promise<void> {
    const c = new pg.Client({ connectionString: this.o.url, application_name: `sitegate-registry:${this.o.instanceId}` });
    c.on('notification', (n) => {
      if (n.channel === REGISTRY_CHANNEL && n.payload !== this.o.instanceId) this.reloadSoon();
    });
    const lost = (err?: Error) => {
      if (this.stopped || this.client !== c) return;
      this.client = undefined;
      this.o.logger.warn({ err }, 'registry notifications lost; listening again');
      this.retry = setTimeout(() => void this.start().then(() => this.reloadSoon(), () => lost()), this.o.retryMs ?? 1000);
      this.retry.unref();
    };
    c.on('error', lost);
    c.on('end', () => lost());
    await c.connect();
    await c.query(`LISTEN ${REGISTRY_CHANNEL}`);
    this.client = c;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    await this.client?.end().catch(() => {});
  }

  /** One reload for a burst of changes (a bulk import notifies once per row). */
  private reloadSoon(): void {
    if (this.reloadQueued) return;
    this.reloadQueued = true;
    setImmediate(() => {
      this.reloadQueued = false;
      try {
        this.o.registry.reload();
      } catch (err) {
        this.o.logger.error({ err }, 'registry reload failed');
      }
    });
  }
}
