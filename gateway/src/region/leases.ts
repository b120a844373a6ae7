/**
 * Site leases for region mode (issue 14): N gateway instances on one PostgreSQL, each site's
 * checks and timers run by exactly one of them. Standalone: the check runner (and the sink runner,
 * with keys such as `sink:<id>` in the same list) subscribes to `onAcquired`/`onLost` and proves
 * its lease with `fence` inside each transaction that writes for a site.
 *
 * - Each round (every `renewEveryMs`, default TTL/3, and at once when another instance joins,
 *   leaves or releases: LISTEN/NOTIFY) re-reads `sites()`, heartbeats and renews in one statement,
 *   then aims at ceil(n/k) sites for k live instances: it releases the ones beyond its share that
 *   it prefers least (md5(site‖instance), so the choice is deterministic and differs per instance),
 *   or acquires free and expired ones, its preferred first, in one statement per batch.
 * - Expiry lives in the database's clock only. `holds()` is the local side: true until the last
 *   successful renewal's send time (performance.now(), monotonic) + TTL − margin. That is before
 *   the database's expiry (the renewal ran after it was sent), so by the time another instance
 *   may take a site, its old holder has already stopped saying it holds it — even if its renewal
 *   hangs and never answers. A timer fires `onLost` at that moment.
 * - A silent instance's membership and leases lapse together (one expiry, leaseSql.ts RENEW), so
 *   the first round of any other instance after that instant takes them: failover ≤ TTL + one
 *   renew period (+ a statement). A clean `stop()` releases at once and tells the others.
 * - Epoch, the fencing token, grows on every acquisition (including this instance taking back a
 *   site it lost), so work begun under an old epoch fails the fence.
 */
import { createHash, randomUUID } from 'node:crypto';
import os from 'node:os';
import pg from 'pg';
import { migratePg } from '../state/pgMigrations.ts';
import { ACQUIRE, CHANNEL, ENSURE, FENCE, LEAVE, RELEASE, RENEW } from './leaseSql.ts';
import { LEASE_MIGRATIONS } from './schema.ts';

import { LeaseLostError, type LossReason, type SiteLeasesOptions } from './leaseTypes.ts';

export { FENCE } from './leaseSql.ts';
export { LeaseLostError, type LossReason, type SiteLeasesOptions } from './leaseTypes.ts';

interface Held { epoch: number; deadline: number }

const hex = (site: string, instance: string) => createHash('md5').update(site + instance).digest('hex');

export class SiteLeases {
  readonly instanceId: string;
  readonly ttlMs: number;
  readonly renewEveryMs: number;
  readonly marginMs: number;
  private readonly opts: SiteLeasesOptions;
  private readonly held = new Map<string, Held>();
  private readonly ensured = new Set<string>();
  private readonly acquiredListeners = new Set<(siteId: string, epoch: number) => void>();
  private readonly lostListeners = new Set<(siteId: string, why: LossReason) => void>();
  private client: pg.Client | null = null;
  private roundTimer: NodeJS.Timeout | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private running: Promise<void> | null = null;
  private again = false;
  private stopped = true;
  private live = 0;

  constructor(opts: SiteLeasesOptions) {
    this.opts = opts;
    this.ttlMs = opts.ttlMs ?? 15_000;
    this.marginMs = opts.marginMs ?? Math.round(this.ttlMs / 5);
    this.renewEveryMs = opts.renewEveryMs ?? Math.floor(this.ttlMs / 3);
    this.instanceId = opts.instanceId ?? `${os.hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
    if (!(this.renewEveryMs > 0 && 2 * this.renewEveryMs <= this.ttlMs - this.marginMs)) {
      throw new Error(`lease renewal every ${this.renewEveryMs} ms must fit twice in TTL ${this.ttlMs} ms minus margin ${this.marginMs} ms`);
    }
  }

  /** Connects, applies the lease migrations, runs the first round, then keeps going until stop(). */
  async start(): Promise<void> {
    const c = await this.connection();
    await migratePg(c, LEASE_MIGRATIONS, 'leases');
    // Only now: a notification-driven round must not slip its statements into the migration's transaction.
    this.stopped = false;
    await this.runRound();
  }

  /** Stops the rounds and gives every lease back at once (onLost 'stopped' first), so others take over now. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.roundTimer);
    clearTimeout(this.expiryTimer);
    await this.running?.catch(() => {});
    for (const site of [...this.held.keys()]) this.lose(site, 'stopped');
    try {
      const c = await this.connection();
      await c.query(LEAVE, [this.instanceId]);
    } catch (e) {
      this.report(e as Error); // the leases lapse on their own within TTL
    } finally {
      this.drop();
    }
  }

  /** Whether this instance may run the site now: from memory, no I/O. */
  holds(siteId: string): boolean {
    const h = this.held.get(siteId);
    return h !== undefined && performance.now() < h.deadline;
  }

  /** The fencing token of a site held now, else undefined. */
  epoch(siteId: string): number | undefined {
    return this.holds(siteId) ? this.held.get(siteId)!.epoch : undefined;
  }

  /** Live instances at the last round, this one included. */
  get liveInstances(): number {
    return this.live;
  }

  /** Sites held now. */
  sites(): string[] {
    return [...this.held.keys()].filter((s) => this.holds(s));
  }

  onAcquired(listener: (siteId: string, epoch: number) => void): () => void {
    this.acquiredListeners.add(listener);
    return () => this.acquiredListeners.delete(listener);
  }

  onLost(listener: (siteId: string, why: LossReason) => void): () => void {
    this.lostListeners.add(listener);
    return () => this.lostListeners.delete(listener);
  }

  /**
   * Proves, inside the caller's open transaction on `client`, that this instance still holds
   * `siteId` at `epoch` (the one onAcquired gave), and keeps the site from moving until that
   * transaction ends. Throws LeaseLostError otherwise: the caller rolls back.
   */
  async fence(client: pg.ClientBase, siteId: string, epoch: number): Promise<void> {
    if (this.epoch(siteId) !== epoch) throw new LeaseLostError(siteId, epoch);
    const r = await client.query(FENCE, [siteId, this.instanceId, epoch]);
    if (r.rowCount !== 1) throw new LeaseLostError(siteId, epoch);
  }

  private async connection(): Promise<pg.Client> {
    if (this.client) return this.client;
    // Every statement is bounded (server and client side) by one period: a round never outlives the next.
    const c = new pg.Client({
      connectionString: this.opts.connectionString, keepAlive: true, application_name: `sitegate-leases ${this.instanceId}`.slice(0, 63),
      connectionTimeoutMillis: this.renewEveryMs, statement_timeout: this.renewEveryMs, query_timeout: this.renewEveryMs,
    });
    c.on('error', () => this.drop(c));
    c.on('notification', (n) => {
      if (n.channel === CHANNEL && !n.payload?.endsWith(`:${this.instanceId}`)) this.soon();
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${CHANNEL}`);
    } catch (e) {
      c.end().catch(() => {});
      throw e;
    }
    this.client = c;
    return c;
  }

  /** Forgets the connection (after an error or a timeout its state is unknown); the next round opens another. */
  private drop(c: pg.Client | null = this.client): void {
    if (!c) return;
    if (this.client === c) this.client = null;
    c.end().catch(() => {});
  }

  /** A round now (or right after the one running): someone joined, left or released. */
  private soon(): void {
    if (this.stopped) return;
    if (this.running) { this.again = true; return; }
    clearTimeout(this.roundTimer);
    void this.runRound();
  }

  private runRound(): Promise<void> {
    const began = performance.now();
    const r = this.round().catch((e: Error) => {
      this.drop();
      this.report(new Error(`lease round failed: ${e.message}`));
    }).finally(() => {
      this.running = null;
      if (this.stopped) return;
      if (this.again) { this.again = false; this.soon(); return; }
      this.roundTimer = setTimeout(() => { void this.runRound(); }, Math.max(0, began + this.renewEveryMs - performance.now()));
    });
    this.running = r;
    return r;
  }

  private async round(): Promise<void> {
    const sites = [...new Set(await this.opts.sites())];
    const c = await this.connection();
    this.expire();
    const fresh = sites.filter((s) => !this.ensured.has(s));
    if (fresh.length) {
      await c.query(ENSURE, [fresh]);
      for (const s of fresh) this.ensured.add(s);
    }

    const mine = [...this.held];
    const sent = performance.now();
    const beat = await c.query<{ renewed: [string, string][]; live: number }>(RENEW, [this.instanceId, this.ttlMs, mine.map(([s]) => s), mine.map(([, h]) => h.epoch)]);
    const renewed = new Map(beat.rows[0]!.renewed.map(([s, e]) => [s, Number(e)]));
    this.live = beat.rows[0]!.live;
    const release: string[] = [];
    for (const [site, epoch] of renewed) {
      // A lease whose local deadline passed while the renewal was on the wire was given up
      // (or is about to be): it is not taken back silently but released, and acquired anew.
      if (this.holds(site) && this.held.get(site)!.epoch === epoch) this.held.get(site)!.deadline = sent + this.ttlMs - this.marginMs;
      else { release.push(site); this.lose(site, 'expired'); }
    }
    for (const site of [...this.held.keys()]) if (!renewed.has(site)) this.lose(site, 'expired');

    // Balance: keep the `share` listed sites this instance prefers; give back the rest.
    const listed = new Set(sites);
    const share = Math.ceil(sites.length / Math.max(1, this.live));
    const kept = [...this.held.keys()].filter((s) => listed.has(s)).sort((a, b) => (hex(a, this.instanceId) < hex(b, this.instanceId) ? -1 : 1));
    for (const site of this.held.keys()) if (!listed.has(site)) { release.push(site); this.lose(site, 'site_removed'); }
    for (const site of kept.slice(share)) { release.push(site); this.lose(site, 'rebalanced'); }
    if (release.length) await c.query(RELEASE, [this.instanceId, release]);

    const want = share - this.held.size;
    if (want > 0 && !this.stopped) {
      const asked = performance.now();
      const got = await c.query<{ site_id: string; epoch: string }>(ACQUIRE, [this.instanceId, this.ttlMs, sites, want]);
      for (const row of got.rows) {
        const epoch = Number(row.epoch);
        this.held.set(row.site_id, { epoch, deadline: asked + this.ttlMs - this.marginMs });
        this.emit(() => { for (const l of this.acquiredListeners) l(row.site_id, epoch); });
      }
    }
    this.armExpiry();
  }

  /** Drops every lease whose local deadline has passed (onLost 'expired'). */
  private expire(): void {
    const now = performance.now();
    for (const [site, h] of this.held) if (h.deadline <= now) this.lose(site, 'expired');
  }

  private armExpiry(): void {
    clearTimeout(this.expiryTimer);
    if (this.held.size === 0 || this.stopped) return;
    const first = Math.min(...[...this.held.values()].map((h) => h.deadline));
    this.expiryTimer = setTimeout(() => { this.expire(); this.armExpiry(); }, Math.max(0, first - performance.now()));
  }

  private lose(site: string, why: LossReason): void {
    if (!this.held.delete(site)) return;
    this.emit(() => { for (const l of this.lostListeners) l(site, why); });
  }

  private emit(call: () => void): void {
    try { call(); } catch (e) { this.report(e as Error); }
  }

  private report(e: Error): void {
    this.opts.onError?.(e);
  }
}
