import type { Logger } from 'pino';
import type { PgStateDb } from '../state/pg/pgStateDb.ts';
import { FENCE, LeaseLostError, SiteLeases, type LossReason } from './leases.ts';

/**
 * Work that must run on exactly one instance of a region at a time (contract §8): the checks
 * (their cursors, alerts and timers), the webhook outbox, each sink's cursor. Every instance
 * ingests, serves the API and the live feed; a duty runs where its lease is (leases.ts), moves
 * to another instance within the lease time when its holder dies, and at once when it stops.
 *
 * A duty starts from its committed state (a check from its cursor, a sink from its cursor, the
 * outbox from its rows), exactly as after a restart, so a move is a restart somewhere else. What
 * keeps two holders from both committing — the old one still finishing a step while the new one
 * starts — is the fence: each of the duty's transactions on the state connection proves the
 * lease first (`fence(key)`), and the lease row it locks cannot move until that transaction ends.
 */
export interface Duty {
  key: string;
  start(): void | Promise<void>;
  stop(): Promise<void>;
}

export interface RegionDutiesOptions {
  url: string;
  /** SITEGATE_INSTANCE_ID: the lease holder's name starts with it (a restart is a new holder). */
  instanceId: string;
  duties: Duty[];
  /** The state's synchronous connection, on which fences run inside the duties' transactions. */
  stateDb: PgStateDb;
  logger: Logger;
  ttlMs?: number;
}

export class RegionDuties {
  readonly leases: SiteLeases;
  private readonly duties = new Map<string, Duty>();
  /** Each duty's starts and stops, one after the other, in the order the leases changed. */
  private readonly chains = new Map<string, Promise<void>>();
  private readonly running = new Map<string, number>();

  constructor(private readonly o: RegionDutiesOptions) {
    for (const d of o.duties) this.duties.set(d.key, d);
    this.leases = new SiteLeases({
      connectionString: o.url,
      sites: () => [...this.duties.keys()],
      instanceId: `${o.instanceId}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
      ...(o.ttlMs ? { ttlMs: o.ttlMs } : {}),
      onError: (err) => o.logger.warn({ err }, 'region lease round failed (retried next round)'),
    });
    this.leases.onAcquired((key, epoch) => this.change(key, () => this.begin(key, epoch)));
    this.leases.onLost((key, why) => this.change(key, () => this.end(key, why)));
  }

  /** Joins the region; the duties this instance got in the first round have started when it resolves. */
  async start(): Promise<void> {
    await this.leases.start();
    await Promise.all(this.chains.values());
  }

  /**
   * Stops every duty held here while still holding its lease (the step in hand and the cursor
   * commit, fenced), then gives the leases back: the others take over at once.
   */
  async stop(): Promise<void> {
    for (const key of [...this.running.keys()]) this.change(key, () => this.end(key, 'stopped'));
    await Promise.all(this.chains.values());
    await this.leases.stop();
    await Promise.all(this.chains.values());
  }

  /** The duties running here now. */
  held(): string[] {
    return [...this.running.keys()].sort();
  }

  /**
   * For a duty's transactions: proves, inside the open transaction on the state connection, that
   * this instance still holds `key` at the epoch its duty started with; throws LeaseLostError
   * (the transaction rolls back) otherwise. In a transaction that has not begun on the server yet
   * (pgStateDb.ts) the proof waits for its first statement: a step that writes nothing costs none.
   */
  fence(key: string): () => void {
    const prove = () => {
      const epoch = this.running.get(key);
      if (epoch === undefined || this.leases.epoch(key) !== epoch) throw new LeaseLostError(key, epoch ?? -1);
      const r = this.o.stateDb.query(FENCE, [key, this.leases.instanceId, epoch]);
      if (r.rowCount !== 1) throw new LeaseLostError(key, epoch);
    };
    return () => this.o.stateDb.deferUntilBegin(prove);
  }

  private change(key: string, fn: () => Promise<void>): void {
    const next = (this.chains.get(key) ?? Promise.resolve()).then(fn).catch((err: unknown) => {
      this.o.logger.error({ err, duty: key }, 'region duty failed to start or stop');
    });
    this.chains.set(key, next);
  }

  private async begin(key: string, epoch: number): Promise<void> {
    const duty = this.duties.get(key);
    if (!duty || !this.leases.holds(key) || this.leases.epoch(key) !== epoch) return; // lost again meanwhile
    this.running.set(key, epoch);
    this.o.logger.info({ duty: key, epoch }, 'region duty starts here');
    await duty.start();
  }

  private async end(key: string, why: LossReason): Promise<void> {
    const duty = this.duties.get(key);
    if (!duty || !this.running.has(key)) return;
    // Lost (expired, given to another instance): its transactions fail from now on, the step in
    // hand included; the next holder does it again. A clean stop still holds the lease: it commits.
    if (why !== 'stopped') this.running.delete(key);
    this.o.logger.info({ duty: key, why }, 'region duty stops here');
    try {
      await duty.stop();
    } finally {
      this.running.delete(key);
    }
  }
}
