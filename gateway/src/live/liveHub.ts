import crypto from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { Alerts } from '../state/types.ts';
import type { Clock } from '../clock/clock.ts';
import type { AnyLedgerStore, MaybePromise, RecordKind, StoredRecord } from '../ledger/types.ts';
import type { Token } from '../registry/registry.ts';
import type { SiteSummary } from './siteSummary.ts';

export type LiveEventName = 'reading' | 'checkin' | 'alert' | 'status' | 'snapshot';

interface Subscriber {
  /** Whether this stream carries a site's events (the sites asked for, within the token's scope). */
  wants: (siteId: string) => boolean;
  res: ServerResponse;
  dropped: number;
  /** While its start (replay or snapshot) is being read: the live records that came meanwhile. */
  held?: StoredRecord[];
}

const TICKET_TTL_MS = 60_000;
/** A viewer that cannot keep up loses events rather than holding memory: 1 MiB of backlog. */
const MAX_BACKLOG_BYTES = 1024 * 1024;
/** Live records held for one stream while its replay is read (a ledger whose reads answer later); past this, lost and counted. */
const MAX_HELD_RECORDS = 10_000;
/**
 * How far back a `Last-Event-ID` resumes: this many ledger records (every site's, every kind)
 * are read to find the stream's missed events. Further back, the stream starts again with a fresh
 * `snapshot`, which is cheaper than replaying the gap and tells the page the same.
 */
export const RESUME_MAX_RECORDS = 20_000;
const LIVE_KINDS: RecordKind[] = ['reading', 'checkin', 'status', 'snapshot', 'alert'];

/** How a stream begins: a `snapshot` of its sites' state, or the events after the one a reconnect names. */
export type StreamStart = { from: 'snapshot' } | { from: 'resumed'; after: number; events: number };

/**
 * The live feed (contract §2 and §6 `GET /live`): Server-Sent Events of the committed ledger
 * records and alert events of one site or every site of a token's regions. Every event's SSE `id`
 * is its ledger `seq` — alert events included, which reach the feed as the `alert` records
 * alerts/alertLedger.ts appends after each change's commit — so a reconnect's `Last-Event-ID`
 * names a durable position: the missed events are read back from the ledger, across a gateway
 * restart too. A stream that is new (or whose gap is too old) opens with a `snapshot` event whose
 * `id` is the ledger position it was taken at. Browsers' EventSource cannot send a header, so they
 * first get a single-use ticket (60 s) bound to the token that asked for it.
 */
export class LiveHub {
  private readonly subs = new Set<Subscriber>();
  private readonly tickets = new Map<string, { token: Token; expires: number }>();
  dropped = 0;

  constructor(private readonly o: { ledger: AnyLedgerStore; alerts: Alerts; now: Clock; summarise: (siteIds: string[]) => MaybePromise<SiteSummary[]> }) {
    o.ledger.onCommitted((records) => { if (this.subs.size) for (const r of records) this.onRecord(r); });
  }

  issueTicket(token: Token): { ticket: string; expiresAt: string } {
    const now = this.o.now();
    for (const [t, v] of this.tickets) if (v.expires <= now) this.tickets.delete(t);
    const ticket = crypto.randomBytes(24).toString('base64url');
    this.tickets.set(ticket, { token, expires: now + TICKET_TTL_MS });
    return { ticket, expiresAt: new Date(now + TICKET_TTL_MS).toISOString() };
  }

  /** Redeems a ticket once; returns the token it stands for. */
  redeem(ticket: string): Token | null {
    const t = this.tickets.get(ticket);
    this.tickets.delete(ticket);
    if (!t || t.expires <= this.o.now()) return null;
    return t.token;
  }

  /**
   * Starts a stream of `siteIds` (those in scope when it opened) plus, for a regions stream, sites
   * that `wants` accepts later. The stream is subscribed before its replay (or snapshot) is read,
   * and live records that come meanwhile are held and written after it, past its position: no
   * commit falls between the replay and the first live event, whether the ledger answers at once
   * (SQLite: nothing can come in between) or later (PostgreSQL). A read that fails ends the
   * stream; the browser reconnects with its Last-Event-ID.
   */
  subscribe(siteIds: string[], wants: (siteId: string) => boolean, res: ServerResponse, lastEventId?: string): { start: Promise<StreamStart | undefined>; close: () => void } {
    const sub: Subscriber = { wants: cached(wants), res, dropped: 0, held: [] };
    res.write(`retry: 3000\n: sitegate live, ${siteIds.length} site(s)\n\n`);
    this.subs.add(sub);
    const ping = setInterval(() => res.write(': ping\n\n'), 25_000);
    ping.unref();
    const close = () => { clearInterval(ping); this.subs.delete(sub); };
    res.on('close', close);
    const start = this.open(sub, siteIds, lastEventId).catch(() => {
      close();
      res.end();
      return undefined;
    });
    return { start, close };
  }

  private async open(sub: Subscriber, siteIds: string[], lastEventId: string | undefined): Promise<StreamStart> {
    try {
      const resumed = await this.resume(sub, lastEventId);
      // Held records up to the snapshot's position are in its summary (live state moves on each commit).
      const at = resumed ? resumed.head : this.o.ledger.lastSeq;
      const start: StreamStart = resumed ? { from: 'resumed', after: resumed.after, events: resumed.events } : await this.snapshot(sub, siteIds, at);
      for (const r of sub.held ?? []) {
        if (r.seq <= at) continue;
        const f = this.frameOf(r);
        if (f) this.write(sub, f);
      }
      return start;
    } finally {
      sub.held = undefined;
    }
  }

  get subscribers(): number {
    return this.subs.size;
  }

  closeAll(): void {
    for (const s of this.subs) s.res.end();
    this.subs.clear();
  }

  /**
   * The sites' state as of ledger position `at`. Its summary reads the ledger (today's check-ins):
   * a read that answers later may already count a record committed after `at`, which the stream
   * then also sends as a live event; it never misses one.
   */
  private async snapshot(sub: Subscriber, siteIds: string[], at: number): Promise<StreamStart> {
    const sites = await this.o.summarise(siteIds);
    this.write(sub, frame('snapshot', { at: new Date(this.o.now()).toISOString(), sites }, at));
    return { from: 'snapshot' };
  }

  /** The events after `lastEventId`, read back from the ledger; undefined when that cannot be done without a gap. */
  private async resume(sub: Subscriber, lastEventId: string | undefined): Promise<{ after: number; events: number; head: number } | undefined> {
    if (lastEventId === undefined || !/^\d{1,15}$/.test(lastEventId)) return undefined;
    const after = Number(lastEventId);
    const head = this.o.ledger.lastSeq;
    // An id from another data directory (ahead of this ledger), or a gap too long to read back.
    if (after > head || head - after > RESUME_MAX_RECORDS) return undefined;
    let events = 0;
    for (let seq = after; seq < head;) {
      const batch = await this.o.ledger.readAfter(seq, 1000, LIVE_KINDS);
      if (!batch.length || !this.subs.has(sub)) break;
      for (const r of batch) {
        if (r.seq > head) break;
        if (!sub.wants(r.siteId)) continue;
        const f = this.frameOf(r);
        if (f) { this.write(sub, f); events++; }
      }
      seq = batch.at(-1)!.seq;
    }
    return { after, events, head };
  }

  private write(s: Subscriber, f: string): void {
    if (s.res.writableLength > MAX_BACKLOG_BYTES) { s.dropped++; this.dropped++; return; }
    s.res.write(f);
  }

  private onRecord(r: StoredRecord): void {
    let f: string | undefined | null = null;
    for (const s of this.subs) {
      if (!s.wants(r.siteId)) continue;
      if (s.held) {
        if (s.held.length < MAX_HELD_RECORDS) s.held.push(r);
        else { s.dropped++; this.dropped++; }
        continue;
      }
      // Rendered once per record, and only when some stream carries its site.
      if (f === null) f = this.frameOf(r);
      if (f === undefined) return;
      this.write(s, f);
    }
  }

  private frameOf(r: StoredRecord): string | undefined {
    const base = { siteId: r.siteId, deviceId: r.deviceId, ts: new Date(r.ts).toISOString(), id: r.msgId };
    const b = r.body as Record<string, unknown>;
    switch (r.kind) {
      case 'reading': return frame('reading', { ...base, metrics: b.metrics }, r.seq);
      case 'checkin': return frame('checkin', { ...base, workerId: b.workerId, direction: b.direction, method: b.method, ...(b.photoSha256 ? { photoSha256: b.photoSha256 } : {}) }, r.seq);
      case 'status': return frame('status', { ...base, state: b.state, ...(b.batteryPct !== undefined ? { batteryPct: b.batteryPct } : {}) }, r.seq);
      // A camera's snapshot (contract §2); the stream's opening `snapshot` carries `sites` instead.
      case 'snapshot': return frame('snapshot', { ...base, sha256: b.sha256, bytes: b.bytes }, r.seq);
      case 'alert': {
        // The alert's state now, with the event that this record is: a replayed event shows where the alert stands.
        const a = this.o.alerts.get(b.id as string);
        return a ? frame('alert', { event: b.event, at: new Date(r.receivedAt).toISOString(), ...this.o.alerts.view(a) }, r.seq) : undefined;
      }
      default: return undefined;
    }
  }
}

function frame(event: LiveEventName, data: unknown, id: number): string {
  return `id: ${id}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

function cached(wants: (siteId: string) => boolean): (siteId: string) => boolean {
  const known = new Map<string, boolean>();
  return (siteId) => {
    let w = known.get(siteId);
    if (w === undefined) known.set(siteId, (w = wants(siteId)));
    return w;
  };
}
