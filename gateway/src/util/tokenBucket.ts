/**
 * A token bucket on a monotonic clock (ms): `perS` tokens a second, up to `burst`. Shared by the
 * per-device ingest rate limit (broker/deviceRateLimit.ts: it takes into debt, a device waits it
 * out) and the registry's lookup budget (registry.ts: it only takes what is there).
 */
export class TokenBucket {
  tokens: number;
  private at: number;

  constructor(burst: number, now: number) {
    this.tokens = burst;
    this.at = now;
  }

  /** Adds what accrued since the last call (the limits may change between calls); returns the tokens. */
  refill(now: number, perS: number, burst: number): number {
    this.tokens = Math.min(burst, this.tokens + ((now - this.at) / 1000) * perS);
    this.at = now;
    return this.tokens;
  }
}
