import crypto from 'node:crypto';
import type { Clock } from '../clock/clock.ts';
import { Transactions } from '../state/transactions.ts';
import type Database from 'better-sqlite3';
import { statementCache } from '../util/statements.ts';
import type { AuditTrail } from '../audit/auditTrail.ts';
import type { AlertEventType, AlertKind, AlertState, AlertSignal, AlertSubject, ClearSignal, RaiseSignal, Severity } from '../checks/types.ts';
import { SitegateError } from '../errors.ts';

export type { AlertState };
export type { AlertEventType };

export interface AlertRecord {
  id: string;
  siteId: string;
  kind: AlertKind;
  key: string;
  severity: Severity;
  level: number;
  state: AlertState;
  subject: AlertSubject;
  openedAt: number;
  recordedAt: number;
  message: string;
  evidence: Record<string, unknown>;
  /** Late data showed the condition never held: kept in the trail, hidden from lists by default. */
  withdrawn: boolean;
  /** Wall-clock time of the last level change (escalation clock). */
  levelSince: number;
}

export interface AlertEvent {
  type: AlertEventType;
  alert: AlertRecord;
  at: number;
  /** This event's entry in the audit trail: its identity (two events of one alert committed together stay two). */
  auditSeq: number;
  by?: string;
  note?: string;
}

export interface AlertView {
  id: string; siteId: string; kind: AlertKind; severity: Severity; level: number; state: AlertState;
  subject: AlertSubject; openedAt: string; recordedAt: string; message: string; evidence: Record<string, unknown>;
  history: { at: string; event: AlertEventType; by?: string; note?: string }[];
  withdrawn?: boolean;
}

const RANK: Record<Severity, number> = { info: 0, warning: 1, critical: 2 };

/** Escalation limits (三级督办, domain.md "Escalation"): seconds unacknowledged at level 1, then 2. */
export const DEFAULT_ESCALATION_S: Record<Severity, number[]> = { critical: [1800, 7200], warning: [86_400, 259_200], info: [] };


const fromRow = (r: Record<string, unknown>): AlertRecord => ({
  id: r.id as string, siteId: r.site_id as string, kind: r.kind as AlertKind, key: r.key as string,
  severity: r.severity as Severity, level: r.level as number, state: r.state as AlertState,
  subject: JSON.parse(r.subject as string), openedAt: r.opened_at as number, recordedAt: r.recorded_at as number,
  message: r.message as string, evidence: JSON.parse(r.evidence as string), withdrawn: r.withdrawn === 1,
  levelSince: r.level_since as number,
});

export interface AlertQuery {
  siteIds?: string[];
  state?: AlertState;
  kind?: string;
  since?: number;
  limit: number;
  cursor?: string;
  includeWithdrawn?: boolean;
}

/**
 * The one alert store (contract §5). Checks hand it signals; it owns the lifecycle: one alert
 * per key while not resolved or cleared, severity rising in place, three-level escalation of
 * unacknowledged alerts, acknowledgement and resolution by people. Every transition goes to the
 * hash-chained audit trail, and listeners (MQTT, live feed, InfluxDB) hear each event.
 */
export class AlertStore {
  /** Statements compiled once (alert-heavy loads call these per signal). */
  private readonly sql: (text: string) => Database.Statement;

  private readonly db: Database.Database;
  private readonly tx: Transactions;
  private readonly audit: AuditTrail;
  private readonly now: Clock;
  private readonly listeners = new Set<(e: AlertEvent) => void>();
  private readonly escalationFor: (siteId: string) => Partial<Record<Severity, number[]>> | undefined;

  constructor(opts: { db: Database.Database; audit: AuditTrail; now: Clock; escalationFor?: (siteId: string) => Partial<Record<Severity, number[]>> | undefined }) {
    this.db = opts.db;
    this.tx = Transactions.of(opts.db);
    this.sql = statementCache(opts.db);
    this.audit = opts.audit;
    this.now = opts.now;
    this.escalationFor = opts.escalationFor ?? (() => undefined);
  }

  onEvent(listener: (e: AlertEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  apply(signal: AlertSignal): AlertRecord | undefined {
    return signal.type === 'raise' ? this.raise(signal) : this.clear(signal);
  }

  active(key: string): AlertRecord | undefined {
    const r = this.sql("SELECT * FROM alerts WHERE key = ? AND state IN ('open', 'acked')").get(key) as Record<string, unknown> | undefined;
    return r ? fromRow(r) : undefined;
  }

  /**
   * The one way a check makes the store agree with its facts for one key (contract §5 "Keys"),
   * idempotent across restarts, replays and late data, so no check keeps its own "raised once":
   * - `desired` is raised unless an alert of this key that opened at the same event time is on
   *   record in any state (a resolved one is not raised again; a withdrawn one does not count);
   * - `exclusive` says the facts decide the whole key (a day's absence, a period's wage finding):
   *   the latest alert of the key that opened at another time — or any, when nothing is desired —
   *   is withdrawn, with `reason`, because later data showed it did not hold.
   * Conditions that come and go under one key (a face mismatch, a device going offline) are not
   * exclusive: earlier occurrences stand.
   */
  reconcile(key: string, desired: RaiseSignal | null, o: { exclusive: boolean; reason?: string }): AlertRecord | undefined {
    if (desired && desired.key !== key) throw new Error(`reconcile(${key}) given a signal for ${desired.key}`);
    if (o.exclusive) {
      const last = this.lastOfKey(key);
      if (last && last.openedAt !== desired?.openedAt) {
        this.clear({
          type: 'clear', kind: last.kind, siteId: last.siteId, key, at: desired?.openedAt ?? last.openedAt, retracts: last.openedAt,
          evidence: { reason: o.reason ?? (desired ? 'condition_moved' : 'disproved_by_later_data') },
        });
      }
    }
    if (!desired) return undefined;
    const onRecord = this.sql('SELECT * FROM alerts WHERE key = ? AND opened_at = ? AND withdrawn = 0 ORDER BY recorded_at DESC LIMIT 1').get(key, desired.openedAt) as Record<string, unknown> | undefined;
    return onRecord ? fromRow(onRecord) : this.raise(desired);
  }

  get(id: string): AlertRecord | undefined {
    const r = this.sql('SELECT * FROM alerts WHERE id = ?').get(id) as Record<string, unknown> | undefined;
    return r ? fromRow(r) : undefined;
  }

  /** The latest alert of a key in any state (resolved and cleared included, withdrawn ones not). */
  lastOfKey(key: string): AlertRecord | undefined {
    const r = this.sql('SELECT * FROM alerts WHERE key = ? AND withdrawn = 0 ORDER BY opened_at DESC, recorded_at DESC LIMIT 1').get(key) as Record<string, unknown> | undefined;
    return r ? fromRow(r) : undefined;
  }

  private raise(s: RaiseSignal): AlertRecord {
    const now = this.now();
    const current = this.active(s.key);
    if (current) {
      if (RANK[s.severity] > RANK[current.severity]) {
        this.sql('UPDATE alerts SET severity = ?, message = ?, evidence = ? WHERE id = ?').run(s.severity, s.message, JSON.stringify(s.evidence), current.id);
        const updated = { ...current, severity: s.severity, message: s.message, evidence: s.evidence };
        this.emit('severity', updated, now, undefined, `${current.severity} → ${s.severity}`);
        return updated;
      }
      return current;
    }
    const alert: AlertRecord = {
      id: `al_${crypto.randomBytes(9).toString('base64url')}`, siteId: s.siteId, kind: s.kind, key: s.key,
      severity: s.severity, level: 1, state: 'open', subject: s.subject, openedAt: s.openedAt, recordedAt: now,
      message: s.message, evidence: s.evidence, withdrawn: false, levelSince: now,
    };
    this.sql(`INSERT INTO alerts (id, site_id, kind, key, severity, level, state, subject, opened_at, recorded_at, message, evidence, withdrawn, level_since)
      VALUES (?, ?, ?, ?, ?, 1, 'open', ?, ?, ?, ?, ?, 0, ?)`)
      .run(alert.id, alert.siteId, alert.kind, alert.key, alert.severity, JSON.stringify(alert.subject), alert.openedAt, now, alert.message, JSON.stringify(alert.evidence), now);
    this.emit('opened', alert, now);
    return alert;
  }

  private clear(s: ClearSignal): AlertRecord | undefined {
    const now = this.now();
    if (s.retracts !== undefined) {
      const r = this.sql('SELECT * FROM alerts WHERE key = ? AND opened_at = ? AND withdrawn = 0 ORDER BY recorded_at DESC LIMIT 1').get(s.key, s.retracts) as Record<string, unknown> | undefined;
      if (!r) return undefined;
      const a = fromRow(r);
      const state: AlertState = a.state === 'open' || a.state === 'acked' ? 'cleared' : a.state;
      this.sql('UPDATE alerts SET withdrawn = 1, state = ? WHERE id = ?').run(state, a.id);
      const updated = { ...a, state, withdrawn: true };
      this.emit('withdrawn', updated, now, undefined, s.evidence ? JSON.stringify(s.evidence) : undefined);
      return updated;
    }
    const a = this.active(s.key);
    if (!a) return undefined;
    this.sql("UPDATE alerts SET state = 'cleared' WHERE id = ?").run(a.id);
    const updated = { ...a, state: 'cleared' as const };
    this.emit('cleared', updated, now);
    return updated;
  }

  ack(id: string, by: string, note?: string): AlertRecord {
    const a = this.get(id);
    if (!a) throw new SitegateError('not_found', `no alert ${id}`);
    if (a.state !== 'open') throw new SitegateError('conflict', `alert ${id} is ${a.state}; only an open alert can be acknowledged`);
    this.sql("UPDATE alerts SET state = 'acked' WHERE id = ?").run(id);
    const updated = { ...a, state: 'acked' as const };
    this.emit('acked', updated, this.now(), by, note);
    return updated;
  }

  resolve(id: string, by: string, note?: string): AlertRecord {
    const a = this.get(id);
    if (!a) throw new SitegateError('not_found', `no alert ${id}`);
    if (a.state !== 'open' && a.state !== 'acked') throw new SitegateError('conflict', `alert ${id} is already ${a.state}`);
    this.sql("UPDATE alerts SET state = 'resolved' WHERE id = ?").run(id);
    const updated = { ...a, state: 'resolved' as const };
    this.emit('resolved', updated, this.now(), by, note);
    return updated;
  }

  /** Moves every open alert unacknowledged beyond its level's limit up one level (max 3). */
  escalateDue(now = this.now()): AlertRecord[] {
    const out: AlertRecord[] = [];
    // The timer columns only: subjects and evidence are parsed for the alerts that escalate, not for every open one.
    const rows = this.sql("SELECT id, site_id, severity, level, level_since FROM alerts WHERE state = 'open' AND level < 3 AND withdrawn = 0")
      .all() as { id: string; site_id: string; severity: Severity; level: number; level_since: number }[];
    for (const row of rows) {
      const limits = this.escalationFor(row.site_id)?.[row.severity] ?? DEFAULT_ESCALATION_S[row.severity];
      const limitS = limits[row.level - 1];
      if (limitS === undefined || now - row.level_since < limitS * 1000) continue;
      const a = this.get(row.id)!;
      this.sql('UPDATE alerts SET level = ?, level_since = ? WHERE id = ?').run(a.level + 1, now, a.id);
      const updated = { ...a, level: a.level + 1, levelSince: now };
      this.emit('escalated', updated, now, 'gateway', `not acknowledged within ${limitS} s at level ${a.level}`);
      out.push(updated);
    }
    return out;
  }

  private emit(type: AlertEventType, alert: AlertRecord, at: number, by?: string, note?: string): void {
    const entry = this.audit.append(`alert.${type}`, `alert:${alert.id}`, {
      siteId: alert.siteId, kind: alert.kind, key: alert.key, severity: alert.severity, level: alert.level, state: alert.state,
      ...(type === 'opened' ? { openedAt: alert.openedAt, subject: alert.subject, evidence: alert.evidence } : {}),
      ...(by ? { by } : {}), ...(note ? { note } : {}),
    }, at);
    const e: AlertEvent = { type, alert, at, auditSeq: entry.seq, ...(by ? { by } : {}), ...(note ? { note } : {}) };
    // Listeners publish to the outside world: only once the change is committed (state/transactions.ts).
    this.tx.afterCommit(() => { for (const l of this.listeners) l(e); });
  }

  history(id: string): AlertView['history'] {
    return this.audit.bySubject(`alert:${id}`).map((h) => ({
      at: new Date(h.at).toISOString(), event: h.type.slice('alert.'.length) as AlertEventType,
      ...(h.data.by ? { by: h.data.by as string } : {}), ...(h.data.note ? { note: h.data.note as string } : {}),
    }));
  }

  view(a: AlertRecord): AlertView {
    return {
      id: a.id, siteId: a.siteId, kind: a.kind, severity: a.severity, level: a.level, state: a.state, subject: a.subject,
      openedAt: new Date(a.openedAt).toISOString(), recordedAt: new Date(a.recordedAt).toISOString(),
      message: a.message, evidence: a.evidence, history: this.history(a.id), ...(a.withdrawn ? { withdrawn: true } : {}),
    };
  }

  /** Sorted by openedAt then id; the cursor is the last item's (openedAt, id). */
  list(q: AlertQuery): { items: AlertRecord[]; next?: string } {
    const where: string[] = [];
    const args: unknown[] = [];
    if (q.siteIds) {
      if (q.siteIds.length === 0) return { items: [] };
      where.push(`site_id IN (${q.siteIds.map(() => '?').join(',')})`);
      args.push(...q.siteIds);
    }
    if (q.state) { where.push('state = ?'); args.push(q.state); }
    if (q.kind) { where.push('kind = ?'); args.push(q.kind); }
    if (q.since !== undefined) { where.push('opened_at >= ?'); args.push(q.since); }
    if (!q.includeWithdrawn) where.push('withdrawn = 0');
    if (q.cursor) {
      const c = decodeCursor(q.cursor);
      where.push('(opened_at > ? OR (opened_at = ? AND id > ?))');
      args.push(c.openedAt, c.openedAt, c.id);
    }
    const sql = `SELECT * FROM alerts ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY opened_at, id LIMIT ?`;
    const rows = this.sql(sql).all(...args, q.limit + 1) as Record<string, unknown>[];
    const items = rows.slice(0, q.limit).map(fromRow);
    const last = items[items.length - 1];
    return { items, ...(rows.length > q.limit && last ? { next: encodeCursor(last) } : {}) };
  }

  countOpen(siteId: string): number {
    return (this.sql("SELECT COUNT(*) AS n FROM alerts WHERE site_id = ? AND state IN ('open', 'acked') AND withdrawn = 0").get(siteId) as { n: number }).n;
  }
}

export const encodeCursor = (a: { openedAt: number; id: string }) => Buffer.from(`${a.openedAt}:${a.id}`).toString('base64url');

export function decodeCursor(c: string): { openedAt: number; id: string } {
  const [t, ...rest] = Buffer.from(c, 'base64url').toString('utf8').split(':');
  const openedAt = Number(t);
  if (!Number.isFinite(openedAt) || rest.length === 0) throw new SitegateError('bad_request', 'invalid cursor');
  return { openedAt, id: rest.join(':') };
}
