import crypto from 'node:crypto';
import type { SqlDb, SqlStatement } from '../state/sqlDb.ts';
import type { Clock } from '../clock/clock.ts';
import { Transactions } from '../state/transactions.ts';
import { statementCache } from '../util/statements.ts';
import type { AuditTrail } from '../audit/auditTrail.ts';
import type { AlertEventType, AlertState, AlertSignal, ClearSignal, RaiseSignal, Severity } from '../checks/types.ts';
import { SitegateError } from '../errors.ts';
import { decodeCursor, encodeCursor, fromRow, isOverdue, type AlertEvent, type AlertRecord, type AlertView } from './alertRecord.ts';
import { listAlerts, type AlertQuery } from './alertList.ts';
import { DEFAULT_ESCALATION_S, DEFAULT_RECTIFY_S, nextStep, stepNote, type Limits } from './deadlines.ts';
import type { Alerts } from '../state/types.ts';

export type { AlertState, AlertEventType };
export type { AlertEvent, AlertRecord, AlertView, AlertQuery };
export { decodeCursor, encodeCursor, DEFAULT_ESCALATION_S };

const RANK: Record<Severity, number> = { info: 0, warning: 1, critical: 2 };
const ACTIVE = "state IN ('open', 'acked', 'rectified')";

export type HandlingAction = 'ack' | 'rectify' | 'resolve' | 'reopen';
/** The closed loop (contract §6): where each action may start and where it leads. */
const TRANSITIONS: Record<HandlingAction, { from: readonly AlertState[]; to: AlertState; event: AlertEventType }> = {
  ack: { from: ['open'], to: 'acked', event: 'acked' },
  // Reporting a rectification acknowledges too: the unit that fixed it has seen it.
  rectify: { from: ['open', 'acked'], to: 'rectified', event: 'rectified' },
  resolve: { from: ['open', 'acked', 'rectified'], to: 'resolved', event: 'resolved' },
  reopen: { from: ['rectified'], to: 'acked', event: 'reopened' },
};

type Listener = (e: AlertEvent) => void;
type TimerRow = { id: string; site_id: string; severity: Severity; state: AlertState; level: number; level_since: number; due_at: number | null; reminded_for: number | null };

/**
 * The one alert store (contract §5, §6). Checks hand it signals; people act on alerts; it owns
 * the lifecycle: one alert per key while being handled, severity rising in place, the deadlines
 * (acknowledgement and rectification) that move an alert up to level 3, reminders before them.
 * Every change is one transaction with its entry in the hash-chained audit trail and whatever
 * durable consumers (the webhook outbox) write for it; other listeners hear it after the commit.
 */
export class AlertStore implements Alerts {
  private readonly sql: (text: string) => SqlStatement;
  private readonly tx: Transactions;
  private readonly audit: AuditTrail;
  private readonly now: Clock;
  private readonly listeners = new Set<Listener>();
  private readonly durable = new Set<Listener>();
  private readonly escalationFor: (siteId: string) => Partial<Record<Severity, number[]>> | undefined;
  private readonly rectifyFor: (siteId: string) => Partial<Record<Severity, number>> | undefined;

  constructor(opts: {
    db: SqlDb; audit: AuditTrail; now: Clock;
    escalationFor?: (siteId: string) => Partial<Record<Severity, number[]>> | undefined;
    rectifyFor?: (siteId: string) => Partial<Record<Severity, number>> | undefined;
  }) {
    this.tx = Transactions.of(opts.db);
    this.sql = statementCache(opts.db);
    this.audit = opts.audit;
    this.now = opts.now;
    this.escalationFor = opts.escalationFor ?? (() => undefined);
    this.rectifyFor = opts.rectifyFor ?? (() => undefined);
  }

  /** Hears every event after the change committed (MQTT, live feed, ledger). */
  onEvent(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Hears every event inside the transaction of the change: what it writes commits or rolls back with it. */
  onEventInTransaction(listener: Listener): () => void {
    this.durable.add(listener);
    return () => this.durable.delete(listener);
  }

  limits(siteId: string, severity: Severity): Limits {
    const rectifyS = this.rectifyFor(siteId)?.[severity] ?? DEFAULT_RECTIFY_S[severity];
    return { escalationS: this.escalationFor(siteId)?.[severity] ?? DEFAULT_ESCALATION_S[severity], ...(rectifyS ? { rectifyS } : {}) };
  }

  apply(signal: AlertSignal): AlertRecord | undefined {
    return this.tx.run(() => (signal.type === 'raise' ? this.raise(signal) : this.clear(signal)));
  }

  active(key: string): AlertRecord | undefined {
    const r = this.sql(`SELECT * FROM alerts WHERE key = ? AND ${ACTIVE}`).get(key) as Record<string, unknown> | undefined;
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
  /**
   * Runs `fn` — many alert changes of one decision — in one transaction: one commit (one fsync)
   * instead of one per change, and the events go out after it.
   */
  atomically<T>(fn: () => T): T {
    return this.tx.run(fn);
  }

  reconcile(key: string, desired: RaiseSignal | null, o: { exclusive: boolean; reason?: string }): AlertRecord | undefined {
    if (desired && desired.key !== key) throw new Error(`reconcile(${key}) given a signal for ${desired.key}`);
    return this.tx.run(() => {
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
    });
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
      if (RANK[s.severity] <= RANK[current.severity]) return current;
      // A rise keeps the deadline unless the new severity's is sooner (counted from now).
      const len = this.limits(current.siteId, s.severity).rectifyS;
      const dueAt = len === undefined ? current.dueAt : Math.min(current.dueAt ?? Infinity, now + len * 1000);
      const updated: AlertRecord = { ...current, severity: s.severity, message: s.message, evidence: s.evidence, ...(dueAt !== undefined ? { dueAt } : {}) };
      this.save(updated);
      this.emit('severity', updated, now, undefined, `${current.severity} → ${s.severity}`);
      return updated;
    }
    const rectifyS = this.limits(s.siteId, s.severity).rectifyS;
    const alert: AlertRecord = {
      id: `al_${crypto.randomBytes(9).toString('base64url')}`, siteId: s.siteId, kind: s.kind, key: s.key,
      severity: s.severity, level: 1, state: 'open', subject: s.subject, openedAt: s.openedAt, recordedAt: now,
      message: s.message, evidence: s.evidence, withdrawn: false, levelSince: now, missedDue: false,
      ...(rectifyS ? { dueAt: now + rectifyS * 1000 } : {}),
    };
    this.sql(`INSERT INTO alerts (id, site_id, kind, key, severity, level, state, subject, opened_at, recorded_at, message, evidence, withdrawn, level_since, due_at)
      VALUES (?, ?, ?, ?, ?, 1, 'open', ?, ?, ?, ?, ?, 0, ?, ?)`)
      .run(alert.id, alert.siteId, alert.kind, alert.key, alert.severity, JSON.stringify(alert.subject), alert.openedAt, now, alert.message, JSON.stringify(alert.evidence), now, alert.dueAt ?? null);
    this.emit('opened', alert, now);
    return alert;
  }

  private clear(s: ClearSignal): AlertRecord | undefined {
    const now = this.now();
    if (s.retracts !== undefined) {
      const r = this.sql('SELECT * FROM alerts WHERE key = ? AND opened_at = ? AND withdrawn = 0 ORDER BY recorded_at DESC LIMIT 1').get(s.key, s.retracts) as Record<string, unknown> | undefined;
      if (!r) return undefined;
      const a = fromRow(r);
      const stillActive = a.state === 'open' || a.state === 'acked' || a.state === 'rectified';
      const updated: AlertRecord = { ...a, withdrawn: true, ...(stillActive ? { state: 'cleared', closedAt: now } : {}) };
      this.save(updated);
      this.emit('withdrawn', updated, now, undefined, s.evidence ? JSON.stringify(s.evidence) : undefined);
      return updated;
    }
    const a = this.active(s.key);
    // §5: the gateway clears from open or acked; a reported rectification waits for a regulator.
    if (!a || a.state === 'rectified') return undefined;
    const updated: AlertRecord = { ...a, state: 'cleared', closedAt: now };
    this.save(updated);
    this.emit('cleared', updated, now);
    return updated;
  }

  /** A person acts on an alert (contract §6); rights are the route's business, states are checked here. */
  handle(id: string, action: HandlingAction, by: string, o: { note?: string; photos?: string[] } = {}): AlertRecord {
    return this.tx.run(() => {
      const a = this.get(id);
      if (!a) throw new SitegateError('not_found', `no alert ${id}`);
      const t = TRANSITIONS[action];
      if (a.withdrawn || !t.from.includes(a.state)) {
        throw new SitegateError('conflict', `alert ${id} is ${a.withdrawn ? 'withdrawn' : a.state}; ${action} needs ${t.from.join(' or ')}`);
      }
      const now = this.now();
      const u: AlertRecord = { ...a, state: t.to };
      if (action === 'ack' || action === 'rectify') u.ackedAt ??= now;
      if (action === 'rectify') u.rectifiedAt ??= now;
      if (action === 'resolve') u.closedAt = now;
      if (action === 'reopen') {
        // A rejected rectification gets a fresh deadline of the same length, from the rejection.
        const len = this.limits(a.siteId, a.severity).rectifyS;
        if (len !== undefined) u.dueAt = now + len * 1000;
        delete u.remindedFor;
      }
      this.save(u);
      this.emit(t.event, u, now, by, o.note, o.photos);
      return u;
    });
  }

  /**
   * A command the site's linkage sent for this alert (contract §7): a `linkage` entry in its
   * history and the audit trail, in the caller's transaction (with the command it records).
   */
  linkage(id: string, note: string, data: Record<string, unknown>): void {
    this.tx.run(() => {
      const a = this.get(id);
      if (!a) throw new SitegateError('not_found', `no alert ${id}`);
      this.emit('linkage', a, this.now(), 'linkage', note, undefined, data);
    });
  }

  ack(id: string, by: string, note?: string): AlertRecord {
    return this.handle(id, 'ack', by, note ? { note } : {});
  }

  resolve(id: string, by: string, note?: string): AlertRecord {
    return this.handle(id, 'resolve', by, note ? { note } : {});
  }

  /**
   * Fires every timer that is due (domain.md "Escalation"): an alert not acknowledged within its
   * level's limit, or not rectified by `dueAt`, moves up one level (3 is the last) with a new
   * deadline of the same length from the one that passed; a reminder precedes each deadline.
   * Each step is its own transaction and changes the columns it was decided from, so it fires
   * once whatever the ticks, restarts or crashes; a gateway that was down catches up step by step.
   * Returns the alerts that moved up.
   */
  escalateDue(now = this.now()): AlertRecord[] {
    const out: AlertRecord[] = [];
    // The timer columns only: subjects and evidence are parsed for alerts with a step to take.
    const rows = this.sql("SELECT id, site_id, severity, state, level, level_since, due_at, reminded_for FROM alerts WHERE state IN ('open', 'acked') AND withdrawn = 0").all() as TimerRow[];
    for (const row of rows) {
      const light = {
        state: row.state, withdrawn: false, level: row.level, levelSince: row.level_since,
        ...(row.due_at !== null ? { dueAt: row.due_at } : {}), ...(row.reminded_for !== null ? { remindedFor: row.reminded_for } : {}),
      } as AlertRecord;
      if (!nextStep(light, this.limits(row.site_id, row.severity), now)) continue;
      for (let steps = 0; steps < 8; steps++) {
        const moved = this.tx.run(() => this.fireOnce(row.id, now));
        if (moved === undefined) break;
        if (moved) out.push(moved);
      }
    }
    return out;
  }

  /** One timer step of one alert: the alert if it moved up, null after a reminder, undefined when nothing was due. */
  private fireOnce(id: string, now: number): AlertRecord | null | undefined {
    const a = this.get(id);
    if (!a) return undefined;
    const step = nextStep(a, this.limits(a.siteId, a.severity), now);
    if (!step) return undefined;
    const note = stepNote(step, a.level);
    if (step.type === 'remind') {
      const u: AlertRecord = { ...a, remindedFor: step.deadline };
      this.save(u);
      this.emit('reminder', u, now, 'gateway', note);
      return null;
    }
    const len = this.limits(a.siteId, a.severity).rectifyS;
    const u: AlertRecord = {
      ...a, level: a.level + 1, levelSince: step.deadline, missedDue: a.missedDue || step.why === 'overdue',
      ...(len !== undefined ? { dueAt: step.deadline + len * 1000 } : {}),
    };
    this.save(u);
    this.emit('escalated', u, now, 'gateway', note);
    return u;
  }

  /** Writes every column a transition may change. */
  private save(a: AlertRecord): void {
    this.sql(`UPDATE alerts SET severity = ?, level = ?, state = ?, message = ?, evidence = ?, withdrawn = ?, level_since = ?,
      due_at = ?, reminded_for = ?, missed_due = ?, acked_at = ?, rectified_at = ?, closed_at = ? WHERE id = ?`)
      .run(a.severity, a.level, a.state, a.message, JSON.stringify(a.evidence), a.withdrawn ? 1 : 0, a.levelSince,
        a.dueAt ?? null, a.remindedFor ?? null, a.missedDue ? 1 : 0, a.ackedAt ?? null, a.rectifiedAt ?? null, a.closedAt ?? null, a.id);
  }

  private emit(type: AlertEventType, alert: AlertRecord, at: number, by?: string, note?: string, photos?: string[], extra: Record<string, unknown> = {}): void {
    const entry = this.audit.append(`alert.${type}`, `alert:${alert.id}`, {
      ...extra,
      siteId: alert.siteId, kind: alert.kind, key: alert.key, severity: alert.severity, level: alert.level, state: alert.state,
      ...(type === 'opened' ? { openedAt: alert.openedAt, subject: alert.subject, evidence: alert.evidence } : {}),
      ...(alert.dueAt !== undefined && type !== 'withdrawn' ? { dueAt: alert.dueAt } : {}),
      ...(by ? { by } : {}), ...(note ? { note } : {}), ...(photos?.length ? { photos } : {}),
    }, at);
    const e: AlertEvent = { type, alert, at, auditSeq: entry.seq, ...(by ? { by } : {}), ...(note ? { note } : {}), ...(photos?.length ? { photos } : {}) };
    for (const l of this.durable) l(e);
    // Listeners publish to the outside world: only once the change is committed (state/transactions.ts).
    this.tx.afterCommit(() => { for (const l of this.listeners) l(e); });
  }

  history(id: string): AlertView['history'] {
    return this.audit.bySubject(`alert:${id}`).map((h) => ({
      at: new Date(h.at).toISOString(), event: h.type.slice('alert.'.length) as AlertEventType,
      ...(h.data.by ? { by: h.data.by as string } : {}), ...(h.data.note ? { note: h.data.note as string } : {}),
      ...(h.data.photos ? { photos: h.data.photos as string[] } : {}),
    }));
  }

  view(a: AlertRecord): AlertView {
    return {
      id: a.id, siteId: a.siteId, kind: a.kind, severity: a.severity, level: a.level, state: a.state, subject: a.subject,
      openedAt: new Date(a.openedAt).toISOString(), recordedAt: new Date(a.recordedAt).toISOString(),
      message: a.message, evidence: a.evidence, history: this.history(a.id), ...(a.withdrawn ? { withdrawn: true } : {}),
      ...(a.dueAt !== undefined ? { dueAt: new Date(a.dueAt).toISOString() } : {}), ...(isOverdue(a, this.now()) ? { overdue: true } : {}),
    };
  }

  /** Sorted by openedAt then id; the cursor is the last item's (openedAt, id). */
  list(q: AlertQuery): { items: AlertRecord[]; next?: string } {
    return listAlerts(this.sql, q);
  }

  countOpen(siteId: string): number {
    return (this.sql(`SELECT COUNT(*) AS n FROM alerts WHERE site_id = ? AND ${ACTIVE} AND withdrawn = 0`).get(siteId) as { n: number }).n;
  }
}
