/**
 * Per-device ingest rate limit that slows, never refuses (issue 15; EMQX's publish limiter works the
 * same way): above its rate a device's connection is read more slowly — its next packets are not
 * taken and its QoS 1 PUBACKs come later — so a QoS 1 device simply waits, and nothing it sent is
 * lost. Refusing would lose data: a rejected message is still PUBACKed (contract §1), so an edge
 * agent draining its backlog would drop it. One device above its rate therefore cannot take the
 * ledger, the checks or the cores from the others.
 *
 * A token bucket per device counted in readings (a telemetry batch of n readings costs n; any other
 * message 1): `readingsPerS` refill, `burst` capacity. Defaults are generous for real sensors (one
 * reading a second or slower) and for an edge agent draining a backlog (2,000 readings/s, a day of
 * 1 s readings in under a minute), yet one device takes at most ~8 % of what this 2-core gateway
 * ingests; configurable per site and per device (`settings.ingestRate`, `settings.devices[id].ingestRate`).
 * (At 200/s, the first default, replaying a month of a site's traffic took 5–6× as long.)
 */
import { TokenBucket } from '../util/tokenBucket.ts';

export interface RateLimit {
  readingsPerS: number;
  burst: number;
}

export const DEFAULT_RATE_LIMIT: RateLimit = { readingsPerS: 2000, burst: 20_000 };

export class DeviceRateLimit {
  private readonly buckets = new Map<string, TokenBucket>();

  /** `clock`: monotonic ms (performance.now): durations only, never calendar time. */
  constructor(private readonly clock: () => number = () => performance.now()) {}

  /**
   * Takes `cost` readings from the device's bucket; returns how long (ms) to wait before reading
   * its connection again: 0 within its rate.
   */
  take(deviceId: string, cost: number, limit: RateLimit): number {
    const now = this.clock();
    let b = this.buckets.get(deviceId);
    if (b === undefined) this.buckets.set(deviceId, (b = new TokenBucket(limit.burst, now)));
    b.tokens = b.refill(now, limit.readingsPerS, limit.burst) - cost;
    return b.tokens >= 0 ? 0 : (-b.tokens / limit.readingsPerS) * 1000;
  }

  forget(deviceId: string): void {
    this.buckets.delete(deviceId);
  }
}
