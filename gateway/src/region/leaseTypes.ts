/** The lease module's options and outcomes (leases.ts). */
export interface SiteLeasesOptions {
  /** `postgres://…`, the database every instance of the region shares. */
  connectionString: string;
  /** The sites to share out, re-read every round. */
  sites: () => readonly string[] | Promise<readonly string[]>;
  /** Lease lifetime in the database's clock. Default 15 s. */
  ttlMs?: number;
  /** Round period. Default TTL/3; at most (TTL − margin)/2, so one lost renewal costs nothing. */
  renewEveryMs?: number;
  /** How much earlier than the database's expiry `holds()` turns false. Default TTL/5. */
  marginMs?: number;
  /** Unique per process start (a restarted process is a new holder). Default host-pid-random. */
  instanceId?: string;
  /** A round that failed (it is retried next period) or a listener that threw. */
  onError?: (err: Error) => void;
}

/** Why a lease ended here: released for balance, site no longer listed, not renewed in time, or stop(). */
export type LossReason = 'rebalanced' | 'site_removed' | 'expired' | 'stopped';

/** What `fence` throws when this instance does not hold the site at that epoch (any more): the caller rolls back. */
export class LeaseLostError extends Error {
  readonly code = 'lease_lost';
  constructor(readonly siteId: string, readonly epoch: number) {
    super(`this instance no longer holds site ${siteId} at epoch ${epoch}`);
  }
}
