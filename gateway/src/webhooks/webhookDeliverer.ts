import crypto from 'node:crypto';
import type { SqlDb, SqlStatement } from '../state/sqlDb.ts';
import type { Logger } from 'pino';
import type { Clock } from '../clock/clock.ts';
import type { Metrics } from '../observability/metrics.ts';
import { statementCache } from '../util/statements.ts';
import type { WebhookStore } from './webhookStore.ts';

export interface DelivererOptions {
  db: SqlDb;
  hooks: WebhookStore;
  now: Clock;
  metrics: Metrics;
  logger: Logger;
  /** Real-time pause between passes over the outbox (a committed alert change also wakes it). */
  pollMs?: number;
  timeoutMs?: number;
  /** Retried this long after the event (contract §6: 24 h), then `failed`. */
  retryForMs?: number;
  /** Back-off after the n-th failed attempt: min(max, min·2^(n-1)), of which a random half (equal jitter). */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  concurrency?: number;
  random?: () => number;
}

type Head = { seq: number; id: string; webhook_id: string; event: string; body: string; attempts: number; created_at: number; url: string };

/** `sha256=<hex HMAC-SHA256(secret, raw body)>` (contract §6). */
export const signature = (secret: string, body: string): string => `sha256=${crypto.createHmac('sha256', secret).update(body).digest('hex')}`;

/**
 * Sends the outbox (webhookStore.ts). Each pass takes, per webhook and alert, only the oldest
 * pending delivery — so events of one alert arrive in order, while a receiver that fails on one
 * alert does not hold up the others — and POSTs it. A 2xx marks it delivered; anything else
 * (status, timeout, refused connection) schedules the next attempt by the injected clock, until
 * 24 h after the event, then `failed` (counted) and the alert's next event goes. The state is
 * written only after the answer, so a crash mid-request means one more delivery (at least once;
 * receivers dedupe by `X-Sitegate-Delivery`), never one fewer.
 */
/** How long a stop waits for the deliveries in flight to answer. */
const CLOSE_GRACE_MS = 2000;

export class WebhookDeliverer {
  private readonly o: Required<Omit<DelivererOptions, 'db' | 'hooks' | 'now' | 'metrics' | 'logger'>>;
  private readonly sql: (text: string) => SqlStatement;
  private chain: Promise<number> = Promise.resolve(0);
  private queued = false;
  private timer: NodeJS.Timeout | undefined;
  private abort = new AbortController();
  private closed = false;

  constructor(private readonly d: DelivererOptions) {
    this.o = {
      pollMs: 1000, timeoutMs: 10_000, retryForMs: 24 * 3_600_000, minBackoffMs: 10_000, maxBackoffMs: 3_600_000,
      concurrency: 8, random: Math.random,
      ...Object.fromEntries(Object.entries(d).filter(([k, v]) => v !== undefined && !['db', 'hooks', 'now', 'metrics', 'logger'].includes(k))),
    } as typeof this.o;
    this.sql = statementCache(d.db);
  }

  start(): void {
    // Started again after close (region mode: the webhooks' lease came back here).
    if (this.closed) {
      this.closed = false;
      this.abort = new AbortController();
    }
    const loop = () => {
      if (this.closed) return;
      void this.runOnce().finally(() => { if (!this.closed) this.timer = setTimeout(loop, this.o.pollMs).unref(); });
    };
    loop();
  }

  /** A committed alert change has deliveries: send them now rather than at the next poll. */
  kick(): void {
    if (this.queued || this.closed) return;
    this.queued = true;
    void this.runOnce();
  }

  /** Runs passes (one at a time) until nothing due is left or an attempt failed; resolves with the attempts made. */
  runOnce(): Promise<number> {
    this.chain = this.chain.then(async () => {
      this.queued = false;
      let total = 0;
      for (;;) {
        const { attempts, delivered } = await this.pass();
        total += attempts;
        if (!delivered || this.closed) break; // a delivery may have freed the alert's next event
      }
      this.d.metrics.webhookPending.set(this.d.hooks.pendingCount());
      return total;
    }).catch((err: unknown) => {
      this.d.logger.error({ err }, 'webhook delivery pass failed');
      return 0;
    });
    return this.chain;
  }

  /**
   * Stops after the requests in flight have answered (at most `CLOSE_GRACE_MS`, then they are
   * aborted and made again after the next start): aborting a request the receiver has already
   * taken would send it twice across a clean restart.
   */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    let grace: NodeJS.Timeout | undefined;
    await Promise.race([this.chain, new Promise<void>((resolve) => { grace = setTimeout(resolve, CLOSE_GRACE_MS); })]);
    clearTimeout(grace);
    this.abort.abort();
    await this.chain;
  }

  private async pass(): Promise<{ attempts: number; delivered: boolean }> {
    if (this.closed) return { attempts: 0, delivered: false };
    const heads = this.sql(`SELECT d.seq, d.id, d.webhook_id, d.event, d.body, d.attempts, d.created_at, json_extract(w.doc, '$.url') AS url
      FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
      WHERE d.state = 'pending' AND d.next_at <= ?
        AND d.seq = (SELECT MIN(e.seq) FROM webhook_deliveries e WHERE e.webhook_id = d.webhook_id AND e.alert_id = d.alert_id AND e.state = 'pending')
      ORDER BY d.seq LIMIT 200`).all(this.d.now()) as Head[];
    let delivered = false;
    for (let i = 0; i < heads.length && !this.closed; i += this.o.concurrency) {
      const outcomes = await Promise.all(heads.slice(i, i + this.o.concurrency).map((h) => this.attempt(h)));
      delivered ||= outcomes.includes(true);
    }
    return { attempts: heads.length, delivered };
  }

  private async attempt(h: Head): Promise<boolean> {
    const secret = this.d.hooks.secretOf(h.webhook_id);
    if (secret === undefined) return false; // deleted meanwhile: its outbox went with it
    let status: number | undefined;
    let error: string | undefined;
    try {
      const res = await fetch(h.url, {
        method: 'POST', body: h.body, redirect: 'manual',
        headers: {
          'content-type': 'application/json', 'user-agent': 'sitegate-webhook/1',
          'x-sitegate-event': h.event, 'x-sitegate-delivery': h.id, 'x-sitegate-signature': signature(secret, h.body),
        },
        signal: AbortSignal.any([this.abort.signal, AbortSignal.timeout(this.o.timeoutMs)]),
      });
      status = res.status;
      await res.arrayBuffer().catch(() => undefined);
      if (status < 200 || status > 299) error = `HTTP ${status}`;
    } catch (e) {
      if (this.closed) return false; // stopping: the attempt never counted, it is made again after the start
      error = (e as Error).cause instanceof Error ? `${(e as Error).message}: ${((e as Error).cause as Error).message}` : (e as Error).message;
    }
    const now = this.d.now();
    const attempts = h.attempts + 1;
    if (error === undefined) {
      this.sql("UPDATE webhook_deliveries SET state = 'delivered', attempts = ?, last_status = ?, last_error = NULL, delivered_at = ? WHERE seq = ?").run(attempts, status, now, h.seq);
      this.d.metrics.webhookDeliveries.inc({ outcome: 'delivered' });
      return true;
    }
    if (now - h.created_at >= this.o.retryForMs) {
      this.sql("UPDATE webhook_deliveries SET state = 'failed', attempts = ?, last_status = ?, last_error = ? WHERE seq = ?").run(attempts, status ?? null, error, h.seq);
      this.d.metrics.webhookDeliveries.inc({ outcome: 'failed' });
      this.d.logger.warn({ webhook: h.webhook_id, delivery: h.id, attempts, error }, 'webhook delivery failed for 24 h: given up');
      return true; // the alert's next event may go now
    }
    const base = Math.min(this.o.maxBackoffMs, this.o.minBackoffMs * 2 ** (attempts - 1));
    const nextAt = now + Math.round(base / 2 + this.o.random() * (base / 2));
    this.sql('UPDATE webhook_deliveries SET attempts = ?, last_status = ?, last_error = ?, next_at = ? WHERE seq = ?').run(attempts, status ?? null, error, nextAt, h.seq);
    this.d.metrics.webhookDeliveries.inc({ outcome: 'retried' });
    if (attempts === 1 || attempts % 10 === 0) this.d.logger.warn({ webhook: h.webhook_id, delivery: h.id, attempts, error }, 'webhook delivery failed; will retry');
    return false;
  }
}
