import crypto from 'node:crypto';
import type { Clock } from '../clock/clock.ts';
import type { ServerResponse } from 'node:http';
import type { AlertEvent, AlertStore } from '../alerts/alertStore.ts';
import type { LedgerStore } from '../ledger/types.ts';
import type { StoredRecord } from '../ledger/types.ts';
import type { Token } from '../registry/registry.ts';

export type LiveEventName = 'reading' | 'checkin' | 'alert' | 'status' | 'snapshot';

interface Subscriber {
  siteId: string;
  res: ServerResponse;
  dropped: number;
}

const TICKET_TTL_MS = 60_000;
/** A viewer that cannot keep up loses events rather than holding memory: 1 MiB of backlog. */
const MAX_BACKLOG_BYTES = 1024 * 1024;

/**
 * The live feed (contract §2 `GET /live`): Server-Sent Events of a site's committed records and
 * alert events. Browsers' EventSource cannot send a header, so they first get a single-use
 * ticket (60 s) bound to the token that asked for it.
 */
export class LiveHub {
  private readonly subs = new Set<Subscriber>();
  private readonly tickets = new Map<string, { token: Token; expires: number }>();
  private readonly now: Clock;
  dropped = 0;

  constructor(ledger: LedgerStore, alerts: AlertStore, now: Clock) {
    this.now = now;
    ledger.onCommitted((records) => { if (this.subs.size) for (const r of records) this.onRecord(r); });
    alerts.onEvent((e) => { if (this.subs.size) this.onAlert(e, alerts); });
  }

  issueTicket(token: Token): { ticket: string; expiresAt: string } {
    const now = this.now();
    for (const [t, v] of this.tickets) if (v.expires <= now) this.tickets.delete(t);
    const ticket = crypto.randomBytes(24).toString('base64url');
    this.tickets.set(ticket, { token, expires: now + TICKET_TTL_MS });
    return { ticket, expiresAt: new Date(now + TICKET_TTL_MS).toISOString() };
  }

  /** Redeems a ticket once; returns the token it stands for. */
  redeem(ticket: string): Token | null {
    const t = this.tickets.get(ticket);
    this.tickets.delete(ticket);
    if (!t || t.expires <= this.now()) return null;
    return t.token;
  }

  subscribe(siteId: string, res: ServerResponse): () => void {
    const sub: Subscriber = { siteId, res, dropped: 0 };
    this.subs.add(sub);
    res.write(`retry: 3000\n: connected to ${siteId}\n\n`);
    const ping = setInterval(() => res.write(': ping\n\n'), 25_000);
    ping.unref();
    const done = () => { clearInterval(ping); this.subs.delete(sub); };
    res.on('close', done);
    return done;
  }

  get subscribers(): number {
    return this.subs.size;
  }

  closeAll(): void {
    for (const s of this.subs) s.res.end();
    this.subs.clear();
  }

  private send(siteId: string, event: LiveEventName, data: unknown, id?: string): void {
    const frame = `event: ${event}\n${id ? `id: ${id}\n` : ''}data: ${JSON.stringify(data)}\n\n`;
    for (const s of this.subs) {
      if (s.siteId !== siteId) continue;
      if (s.res.writableLength > MAX_BACKLOG_BYTES) { s.dropped++; this.dropped++; continue; }
      s.res.write(frame);
    }
  }

  private onRecord(r: StoredRecord): void {
    const base = { deviceId: r.deviceId, ts: new Date(r.ts).toISOString(), id: r.msgId };
    const b = r.body as Record<string, unknown>;
    switch (r.kind) {
      case 'reading': return this.send(r.siteId, 'reading', { ...base, metrics: b.metrics }, String(r.seq));
      case 'checkin': return this.send(r.siteId, 'checkin', { ...base, workerId: b.workerId, direction: b.direction, method: b.method, ...(b.photoSha256 ? { photoSha256: b.photoSha256 } : {}) }, String(r.seq));
      case 'status': return this.send(r.siteId, 'status', { ...base, state: b.state, ...(b.batteryPct !== undefined ? { batteryPct: b.batteryPct } : {}) }, String(r.seq));
      case 'snapshot': return this.send(r.siteId, 'snapshot', { ...base, sha256: b.sha256, bytes: b.bytes }, String(r.seq));
      default: return undefined;
    }
  }

  private onAlert(e: AlertEvent, alerts: AlertStore): void {
    this.send(e.alert.siteId, 'alert', { event: e.type, ...alerts.view(e.alert) });
  }
}
