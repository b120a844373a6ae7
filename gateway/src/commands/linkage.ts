import type { Logger } from 'pino';
import { DEFAULT_COMMAND_TTL_S, type LinkageRule } from '../../../schemas/src/command.ts';
import type { AlertEvent, AlertRecord } from '../alerts/alertStore.ts';
import { pagesAfter } from '../audit/auditTrail.ts';
import type { Alerts, Audit, SiteRegistry } from '../state/types.ts';
import type { CheckProgress } from '../checks/progress.ts';
import type { Clock } from '../clock/clock.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { CommandStore } from './commandStore.ts';

const RANK = { info: 0, warning: 1, critical: 2 } as const;
const ACTIVE = new Set(['open', 'acked', 'rectified']);
/** Events that may make an alert match a rule: it opened, or its severity rose to the rule's. */
const OPENING = new Set(['opened', 'severity']);
/** Events after which an alert may have ended: its clearAction is due if it did. */
const ENDING = new Set(['cleared', 'resolved', 'withdrawn']);

type Phase = 'on' | 'clear';
/** One command per alert, rule and phase, whatever the restarts. */
const linkageKey = (alertId: string, rule: number, phase: Phase) => `${alertId}:${rule}:${phase}`;

/** The alert-history notes (people read them: Chinese first, English after the slash). */
const NOTE: Record<Phase, (action: string, deviceId: string, commandId: string) => string> = {
  on: (action, deviceId, commandId) => `联动：已向 ${deviceId} 发送「${action}」（命令 ${commandId}） / linkage: sent "${action}" to ${deviceId} (command ${commandId})`,
  clear: (action, deviceId, commandId) => `联动解除：已向 ${deviceId} 发送「${action}」（命令 ${commandId}） / linkage ended: sent "${action}" to ${deviceId} (command ${commandId})`,
};

export const matches = (rule: LinkageRule, a: Pick<AlertRecord, 'kind' | 'subject' | 'severity'>): boolean =>
  rule.on.kind === a.kind && (rule.on.metric === undefined || rule.on.metric === a.subject.metric);

/**
 * Linkage (联动, contract §7): when an alert matching a rule of its site's `linkage` opens — or
 * rises to the rule's least severity — the rule's command goes to its device; when the alert ends
 * (cleared by the condition, closed by a person, or withdrawn) the `clearAction` follows, if the
 * first was sent. Each command is recorded in the alert's history (`linkage`) and the audit trail
 * in the transaction that creates it.
 *
 * It acts on alert events after their commit (never inside the change that raised them), so a
 * crash can fall between the two: its cursor (the last audit entry acted on) is kept in state.db,
 * and a start goes over the alert events after it again. A command is keyed by (alert, rule,
 * phase), so going over an event twice sends nothing twice. Decisions read the alert as it is
 * now: an alert that opened and cleared while the gateway was down sends neither command.
 *
 * An alert that opened longer ago than the command's time to live (a backlog replayed after an
 * outage) sends nothing: switching a fog cannon on for yesterday's dust helps nobody.
 */
export class Linkage {
  private cursor = 0;

  private poll?: NodeJS.Timeout;

  constructor(private readonly o: {
    alerts: Alerts; commands: CommandStore; registry: Pick<SiteRegistry, 'site' | 'device'>; audit: Audit;
    progress: CheckProgress; metrics: Metrics; logger: Logger; now: Clock;
    /**
     * Region mode: alert events are also raised on other instances (the checks' holder, a person's
     * action anywhere), which this one hears only through the audit trail: it reads it this often.
     */
    pollMs?: number;
  }) {}

  /** Goes over the alert events a crash may have left unacted on, then listens to new ones. */
  start(): void {
    const saved = this.o.progress.get('auditSeq');
    this.cursor = saved ?? this.o.audit.head().seq;
    this.catchUp();
    this.o.progress.set('auditSeq', this.cursor);
    this.unsubscribe = this.o.alerts.onEvent((e: AlertEvent) => this.act(e.type, e.alert.siteId, e.alert.id, e.auditSeq));
    if (this.o.pollMs) {
      this.poll = setInterval(() => {
        try {
          this.catchUp();
        } catch (err) {
          this.o.logger.error({ err }, 'linkage could not read the audit trail (tried again)');
        }
      }, this.o.pollMs);
      this.poll.unref();
    }
  }

  /**
   * The next start begins after the last event acted on. Alone, every event seen was acted on as
   * it came. In region mode only the trail read so far counts: an event this instance heard may
   * come after another instance's that the next read has still to bring.
   */
  stop(): void {
    clearInterval(this.poll);
    this.unsubscribe?.();
    if (!this.o.pollMs && this.seen > this.cursor) this.cursor = this.seen;
    this.o.progress.set('auditSeq', this.cursor);
  }

  /** Acts on the alert events of the audit trail after the cursor (acting twice on one sends nothing twice). */
  private catchUp(): void {
    const from = this.cursor;
    for (const batch of pagesAfter(this.o.audit, this.cursor, 'alert.')) {
      for (const e of batch) this.act(e.type.slice('alert.'.length), e.data.siteId as string, e.subject.slice('alert:'.length), e.seq);
      this.cursor = batch.at(-1)!.seq;
    }
    if (this.cursor > from) this.o.progress.set('auditSeq', this.cursor);
  }

  private unsubscribe?: () => void;
  private seen = 0;

  private act(type: string, siteId: string, alertId: string, seq: number): void {
    this.seen = Math.max(this.seen, seq);
    const phase: Phase | undefined = OPENING.has(type) ? 'on' : ENDING.has(type) ? 'clear' : undefined;
    const rules = phase && this.o.registry.site(siteId)?.settings.linkage;
    if (!rules?.length) return;
    // Decided on the alert as it is now (a start going over old events finds them ended).
    const alert = this.o.alerts.get(alertId);
    if (!alert) return;
    const active = ACTIVE.has(alert.state) && !alert.withdrawn;
    rules.forEach((rule, i) => {
      if (!matches(rule, alert)) return;
      try {
        if (phase === 'on' && active && RANK[alert.severity] >= RANK[rule.on.severity ?? 'info']) this.send(alert, rule, i, 'on', seq);
        if (phase === 'clear' && !active && rule.clearAction && this.o.commands.byLinkageKey(linkageKey(alert.id, i, 'on'))) this.send(alert, rule, i, 'clear', seq);
      } catch (err) {
        this.o.logger.error({ err, alertId, rule: i }, 'linkage failed; tried again at the next start');
      }
    });
  }

  private send(alert: AlertRecord, rule: LinkageRule, i: number, phase: Phase, seq: number): void {
    const key = linkageKey(alert.id, i, phase);
    if (this.o.commands.byLinkageKey(key)) return;
    const ttlS = rule.ttlS ?? DEFAULT_COMMAND_TTL_S;
    const device = this.o.registry.device(rule.deviceId);
    const log = this.o.logger.child({ alertId: alert.id, siteId: alert.siteId, deviceId: rule.deviceId, rule: i, phase });
    if (device && device.siteId !== alert.siteId) {
      // A rule may command only its own site's equipment.
      log.warn('linkage names a device of another site: not sent');
      this.o.metrics.commands.inc({ event: 'linkage_refused' });
      return;
    }
    if (phase === 'on' && this.o.now() - alert.openedAt > ttlS * 1000) {
      log.info({ openedAt: alert.openedAt }, 'alert opened longer ago than the command may live (a replayed backlog): linkage not sent');
      this.o.metrics.commands.inc({ event: 'linkage_stale' });
      return;
    }
    const action = phase === 'on' ? rule.action : rule.clearAction!;
    const params = phase === 'on' ? rule.params : rule.clearParams;
    this.o.progress.atomically(() => {
      const { command, created } = this.o.commands.create({
        siteId: alert.siteId, deviceId: rule.deviceId, action, params, ttlS, by: 'linkage', alertId: alert.id, linkageKey: key,
      });
      if (created) {
        this.o.alerts.linkage(alert.id, NOTE[phase](action, rule.deviceId, command.commandId), { commandId: command.commandId, deviceId: rule.deviceId, action, phase });
        log.info({ commandId: command.commandId, action }, 'linkage command sent');
      }
      // Alone, the trail holds nothing unacted before this event. In region mode it may (another
      // instance's event not read yet): there only the read of the trail moves the cursor.
      if (!this.o.pollMs && seq > this.cursor) this.o.progress.set('auditSeq', (this.cursor = seq));
    });
  }
}
