import type { Logger } from 'pino';
import { pagesAfter, type AuditEntry } from '../audit/auditTrail.ts';
import type { Alerts, Audit, Progress } from '../state/types.ts';
import type { AlertEventType, AlertKind, AlertState, Severity } from '../checks/types.ts';
import type { AnyLedgerStore, LedgerRecord } from '../ledger/types.ts';
import type { AlertEvent } from './alertStore.ts';

/** Saving the cursor is an optimisation (a start appends again what may be missing): at most once a second. */
const SAVE_EVERY_MS = 1000;

/**
 * Alert events into the ledger as `alert` records, which the sinks write as contract §4 `alert`
 * points. One record per event, keyed by the event's audit-trail entry: two events of one alert
 * committed in one transaction (a hazard batch that opens and clears) are two records. The append
 * follows the state commit (the ledger is another database), so a kill between the two would lose
 * it: a start therefore appends again every alert event of the audit trail after the last one
 * known to be in the ledger, and the ledger's dedupe keeps each once.
 */
export class AlertLedgerFeed {
  private cursor = 0;
  private appended = 0;
  private savedAt = 0;

  private poll?: NodeJS.Timeout;
  private catching: Promise<void> | null = null;
  private started = false;

  constructor(private readonly o: {
    alerts: Alerts; audit: Audit; ledger: AnyLedgerStore; progress: Progress; logger: Logger;
    /**
     * Region mode: the cursor is the region's, and other instances' events reach the ledger only
     * through it: `record` appends at once but never moves the cursor (another instance's event
     * before it may still be missing), and the instance holding this duty goes over the audit
     * trail after the cursor this often.
     */
    pollMs?: number;
  }) {}

  /** Appends what the audit trail has after the saved cursor (the first start of a data directory begins at the trail's head). */
  async start(): Promise<void> {
    const saved = this.o.progress.get('auditSeq');
    this.cursor = this.appended = saved ?? this.o.audit.head().seq;
    if (saved === undefined) this.o.progress.set('auditSeq', this.cursor);
    this.started = true;
    const caughtUp = await this.catchUp();
    if (caughtUp) this.o.logger.warn({ records: caughtUp }, 'alert events committed before a crash appended to the ledger now');
    if (this.o.pollMs) {
      this.poll = setInterval(() => {
        this.catching ??= this.catchUp().then(() => undefined, (err: unknown) => {
          this.o.logger.error({ err }, 'could not append alert events from the audit trail (tried again)');
        }).finally(() => { this.catching = null; });
      }, this.o.pollMs);
      this.poll.unref();
    }
  }

  /** Appends the alert events of the audit trail after the cursor (the ledger's dedupe keeps each once); returns how many were new. */
  private async catchUp(): Promise<number> {
    let caughtUp = 0;
    for (const batch of pagesAfter(this.o.audit, this.cursor, 'alert.')) {
      const records = batch.flatMap((e) => this.fromAudit(e) ?? []);
      const results = await this.o.ledger.appendMany(records);
      caughtUp += results.filter((r) => r.seq !== null).length;
      this.cursor = batch.at(-1)!.seq;
      this.advance(this.cursor, true);
    }
    return caughtUp;
  }

  /** An event just committed (the alert store's after-commit listener). */
  record(e: AlertEvent): void {
    const a = e.alert;
    this.o.ledger.append(alertRecord({ id: a.id, siteId: a.siteId, kind: a.kind, severity: a.severity, level: a.level, state: a.state, openedAt: a.openedAt }, e.type, e.at, e.auditSeq))
      .then(() => { if (!this.o.pollMs && this.started) this.advance(e.auditSeq, false); }, (err) => this.o.logger.error({ err }, 'could not record alert event in the ledger (appended again at the next start)'));
  }

  /** Saves how far the ledger has every alert event (region mode: after the last pass). */
  async close(): Promise<void> {
    clearInterval(this.poll);
    await this.catching;
    if (this.started) this.advance(this.appended, true); // never started here (region mode): the cursor is another instance's
    this.started = false;
  }

  private advance(seq: number, force: boolean): void {
    // Appends resolve in commit order; the cursor only moves forward.
    this.appended = Math.max(this.appended, seq);
    const t = performance.now();
    if (!force && t - this.savedAt < SAVE_EVERY_MS) return;
    this.savedAt = t;
    this.o.progress.set('auditSeq', this.appended);
  }

  private fromAudit(e: AuditEntry): LedgerRecord | undefined {
    const id = e.subject.slice('alert:'.length);
    const a = this.o.alerts.get(id);
    if (!a) return undefined;
    const d = e.data as { siteId: string; kind: AlertKind; severity: Severity; level: number; state: AlertState };
    return alertRecord({ id, siteId: d.siteId, kind: d.kind, severity: d.severity, level: d.level, state: d.state, openedAt: a.openedAt }, e.type.slice('alert.'.length) as AlertEventType, e.at, e.seq);
  }
}

function alertRecord(a: { id: string; siteId: string; kind: AlertKind; severity: Severity; level: number; state: AlertState; openedAt: number }, event: AlertEventType, at: number, auditSeq: number): LedgerRecord {
  return {
    siteId: a.siteId, deviceId: 'gateway', kind: 'alert', msgId: `${a.id}:${event}:${at}`, dedupeKey: `alert:${a.id}:e${auditSeq}`,
    ts: a.openedAt, receivedAt: at,
    body: { id: a.id, kind: a.kind, severity: a.severity, level: a.level, state: a.state, event, auditSeq },
  };
}
