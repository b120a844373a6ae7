import crypto from 'node:crypto';
import type { SqlDb, SqlStatement } from '../state/sqlDb.ts';
import type { z } from 'zod';
import type { Clock } from '../clock/clock.ts';
import type { AlertEvent, AlertView } from '../alerts/alertRecord.ts';
import type { Registry } from '../registry/registry.ts';
import { statementCache } from '../util/statements.ts';
import type { Delivery, DeliveryState, WebhookBody, WebhookEvent } from '../../../schemas/src/webhook.ts';

export interface WebhookRecord extends WebhookBody {
  id: string;
  createdAt: number;
  updatedAt: number;
}

const DELIVERED_EVENTS = new Set<string>(['opened', 'escalated', 'acked', 'rectified', 'resolved', 'reopened', 'cleared', 'withdrawn', 'reminder'] satisfies WebhookEvent[]);
const iso = (t: number | null | undefined) => (t === null || t === undefined ? undefined : new Date(t).toISOString());

/**
 * Webhooks (contract §6) and their durable outbox. Why an outbox table written in the alert's
 * own transaction, not a cursor over the ledger's `alert` records: those records are appended
 * after the state commit, on the ledger thread, so a kill -9 between the two would lose an event
 * a receiver must get. Here `enqueue` runs inside the transaction that changes the alert (the
 * store's in-transaction listener): the change, its audit entry and one delivery per matching
 * webhook commit together or not at all. Each delivery row is then its own cursor — pending until
 * the receiver answered 2xx or 24 h passed — so a receiver outage or a restart is only lag.
 */
export class WebhookStore {
  private readonly sql: (text: string) => SqlStatement;
  private readonly hooks = new Map<string, WebhookRecord & { secret: string }>();

  constructor(db: SqlDb, private readonly registry: Pick<Registry, 'site'>, private readonly now: Clock) {
    this.sql = statementCache(db);
    for (const r of this.sql('SELECT * FROM webhooks').all() as { id: string; doc: string; secret: string; created_at: number; updated_at: number }[]) {
      this.hooks.set(r.id, { ...JSON.parse(r.doc), secret: r.secret, id: r.id, createdAt: r.created_at, updatedAt: r.updated_at });
    }
  }

  put(id: string, body: WebhookBody): { created: boolean; hook: WebhookRecord } {
    const now = this.now();
    const prev = this.hooks.get(id);
    const { secret, ...doc } = body;
    this.sql(`INSERT INTO webhooks (id, doc, secret, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT(id) DO UPDATE SET doc = excluded.doc, secret = excluded.secret, updated_at = excluded.updated_at`)
      .run(id, JSON.stringify(doc), secret, now, now);
    const hook = { ...body, id, createdAt: prev?.createdAt ?? now, updatedAt: now };
    this.hooks.set(id, hook);
    return { created: !prev, hook };
  }

  get(id: string): WebhookRecord | undefined {
    return this.hooks.get(id);
  }

  list(): WebhookRecord[] {
    return [...this.hooks.values()].sort((a, b) => a.id.localeCompare(b.id));
  }

  /** Removes the webhook and its outbox: nothing more is sent to it. */
  delete(id: string): boolean {
    if (!this.hooks.delete(id)) return false;
    this.sql('DELETE FROM webhook_deliveries WHERE webhook_id = ?').run(id);
    this.sql('DELETE FROM webhooks WHERE id = ?').run(id);
    return true;
  }

  secretOf(id: string): string | undefined {
    return this.hooks.get(id)?.secret;
  }

  private matches(h: WebhookRecord, e: AlertEvent): boolean {
    const a = e.alert;
    if (h.events && !h.events.includes(e.type as WebhookEvent)) return false;
    if (h.levels && !h.levels.includes(a.level)) return false;
    if (h.kinds && !h.kinds.some((p) => a.kind.startsWith(p))) return false;
    if ('sites' in h.scope) return h.scope.sites.includes(a.siteId);
    const region = this.registry.site(a.siteId)?.regionCode;
    return region !== undefined && h.scope.regions.some((p) => region.startsWith(p));
  }

  /**
   * One delivery per matching webhook, inside the alert change's transaction. The body is fixed
   * here (the alert as it is after this event), so every retry sends the same bytes.
   */
  enqueue(e: AlertEvent, view: () => AlertView): number {
    if (!DELIVERED_EVENTS.has(e.type)) return 0;
    let alert: AlertView | undefined;
    let n = 0;
    for (const h of this.hooks.values()) {
      if (!this.matches(h, e)) continue;
      alert ??= view();
      const deliveryId = `dl_${crypto.randomBytes(12).toString('base64url')}`;
      const body = JSON.stringify({ deliveryId, event: e.type, at: new Date(e.at).toISOString(), alert });
      this.sql(`INSERT INTO webhook_deliveries (id, webhook_id, alert_id, event, at, body, next_at, created_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)`).run(deliveryId, h.id, e.alert.id, e.type, e.at, body, this.now(), this.now());
      n++;
    }
    return n;
  }

  /** The outbox of one webhook, oldest first, paged by the last seq seen. */
  deliveries(webhookId: string, q: { state?: DeliveryState; limit: number; after?: number }): { items: z.infer<typeof Delivery>[]; next?: string } {
    const rows = this.sql(`SELECT seq, id, webhook_id, alert_id, event, at, state, attempts, next_at, last_status, last_error, delivered_at
      FROM webhook_deliveries WHERE webhook_id = ? AND (? IS NULL OR state = ?) AND seq > ? ORDER BY seq LIMIT ?`)
      .all(webhookId, q.state ?? null, q.state ?? null, q.after ?? 0, q.limit + 1) as Record<string, unknown>[];
    const items = rows.slice(0, q.limit).map((r) => ({
      deliveryId: r.id as string, webhookId: r.webhook_id as string, alertId: r.alert_id as string, event: r.event as WebhookEvent,
      at: iso(r.at as number)!, state: r.state as DeliveryState, attempts: r.attempts as number,
      ...(r.state === 'pending' ? { nextAttemptAt: iso(r.next_at as number)! } : {}),
      ...(r.last_status !== null ? { lastStatus: r.last_status as number } : {}),
      ...(r.last_error !== null ? { lastError: r.last_error as string } : {}),
      ...(r.delivered_at !== null ? { deliveredAt: iso(r.delivered_at as number)! } : {}),
    }));
    return { items, ...(rows.length > q.limit ? { next: String(rows[q.limit - 1]!.seq) } : {}) };
  }

  pendingCount(): number {
    return (this.sql("SELECT COUNT(*) AS n FROM webhook_deliveries WHERE state = 'pending'").get() as { n: number }).n;
  }
}
