import crypto from 'node:crypto';
import type { SqlDb, SqlStatement } from '../state/sqlDb.ts';
import { COMMAND_ANSWER_TIMEOUT_S, DEFAULT_COMMAND_TTL_S, type Command, type CommandMessage, type CommandResult, type CommandState } from '../../../schemas/src/command.ts';
import type { Audit } from '../state/types.ts';
import type { Clock } from '../clock/clock.ts';
import { Transactions } from '../state/transactions.ts';
import { statementCache } from '../util/statements.ts';

export interface CommandRecord {
  commandId: string;
  siteId: string;
  deviceId: string;
  action: string;
  params?: Record<string, string | number | boolean>;
  state: CommandState;
  createdAt: number;
  expiresAt: number;
  deliveredAt?: number;
  resultAt?: number;
  resultTs?: number;
  message?: string;
  by: string;
  alertId?: string;
}

export interface NewCommand {
  siteId: string;
  deviceId: string;
  action: string;
  params?: Record<string, string | number | boolean> | undefined;
  ttlS?: number | undefined;
  by: string;
  alertId?: string;
  /** Linkage: (alert event, rule, phase) — a second create with the same key returns the first. */
  linkageKey?: string;
}

/** What became of a device's result message (the broker answers rejections on `…/errors`). */
export type ResultOutcome =
  | { outcome: 'accepted'; command: CommandRecord }
  | { outcome: 'duplicate'; command: CommandRecord }
  /** The answer to a command that had expired unanswered: kept in the audit trail, the state stays `expired`. */
  | { outcome: 'late'; command: CommandRecord }
  | { outcome: 'rejected'; reason: 'unknown_command'; message: string };

type Row = {
  command_id: string; site_id: string; device_id: string; action: string; params: string | null; state: CommandState;
  created_at: number; expires_at: number; delivered_at: number | null; result_at: number | null; result_ts: number | null;
  message: string | null; by: string; alert_id: string | null;
};

const fromRow = (r: Row): CommandRecord => ({
  commandId: r.command_id, siteId: r.site_id, deviceId: r.device_id, action: r.action, state: r.state,
  createdAt: r.created_at, expiresAt: r.expires_at, by: r.by,
  ...(r.params !== null ? { params: JSON.parse(r.params) } : {}),
  ...(r.delivered_at !== null ? { deliveredAt: r.delivered_at } : {}),
  ...(r.result_at !== null ? { resultAt: r.result_at } : {}),
  ...(r.result_ts !== null ? { resultTs: r.result_ts } : {}),
  ...(r.message !== null ? { message: r.message } : {}),
  ...(r.alert_id !== null ? { alertId: r.alert_id } : {}),
});

const iso = (t: number) => new Date(t).toISOString();

type Listener = (c: CommandRecord) => void;

/**
 * Commands to site equipment (contract §7), in state.db. A command is its own delivery cursor:
 * `pending` until the device PUBACKs it, `delivered` until its result arrives on
 * `…/command-results` (`succeeded` | `failed`), or `expired` when `expiresAt` passed before any
 * device took it or no answer came within COMMAND_ANSWER_TIMEOUT_S of the PUBACK. Every creation, result and expiry is an entry in the audit trail, committed
 * with the change; listeners hear of new (delivery) and finished commands after the commit.
 */
export class CommandStore {
  private readonly sql: (text: string) => SqlStatement;
  private readonly tx: Transactions;
  private readonly created = new Set<Listener>();
  private readonly finished = new Set<Listener>();

  constructor(private readonly o: { db: SqlDb; audit: Audit; now: Clock }) {
    this.sql = statementCache(o.db);
    this.tx = Transactions.of(o.db);
  }

  /** Hears each new command once it is committed. */
  onCreated(l: Listener): void {
    this.created.add(l);
  }

  /** Hears each command that reached `succeeded` or `failed`, once that is committed; returns the way to stop hearing. */
  onFinished(l: Listener): () => void {
    this.finished.add(l);
    return () => this.finished.delete(l);
  }

  /** Stores a command (in the caller's transaction when there is one); with a `linkageKey` already used, returns that command. */
  create(c: NewCommand): { command: CommandRecord; created: boolean } {
    return this.tx.run(() => {
      if (c.linkageKey) {
        const had = this.sql('SELECT * FROM commands WHERE linkage_key = ?').get(c.linkageKey) as Row | undefined;
        if (had) return { command: fromRow(had), created: false };
      }
      const now = this.o.now();
      const command: CommandRecord = {
        commandId: `cmd_${crypto.randomBytes(9).toString('base64url')}`, siteId: c.siteId, deviceId: c.deviceId, action: c.action,
        ...(c.params && Object.keys(c.params).length ? { params: c.params } : {}),
        state: 'pending', createdAt: now, expiresAt: now + (c.ttlS ?? DEFAULT_COMMAND_TTL_S) * 1000, by: c.by,
        ...(c.alertId ? { alertId: c.alertId } : {}),
      };
      this.sql(`INSERT INTO commands (command_id, site_id, device_id, action, params, state, created_at, expires_at, by, alert_id, linkage_key)
        VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?)`)
        .run(command.commandId, command.siteId, command.deviceId, command.action, command.params ? JSON.stringify(command.params) : null,
          command.createdAt, command.expiresAt, command.by, command.alertId ?? null, c.linkageKey ?? null);
      this.audit('created', command, now, {
        siteId: command.siteId, deviceId: command.deviceId, action: command.action, expiresAt: command.expiresAt, by: command.by,
        ...(command.params ? { params: command.params } : {}), ...(command.alertId ? { alertId: command.alertId } : {}),
      });
      this.tx.afterCommit(() => { for (const l of this.created) l(command); });
      return { command, created: true };
    });
  }

  get(commandId: string): CommandRecord | undefined {
    const r = this.sql('SELECT * FROM commands WHERE command_id = ?').get(commandId) as Row | undefined;
    return r ? fromRow(r) : undefined;
  }

  /** A device's commands, newest first. */
  list(deviceId: string, limit = 100): CommandRecord[] {
    return (this.sql('SELECT * FROM commands WHERE device_id = ? ORDER BY created_at DESC, command_id DESC LIMIT ?').all(deviceId, limit) as Row[]).map(fromRow);
  }

  /** The linkage command of (alert, rule, phase), if it was sent. */
  byLinkageKey(key: string): CommandRecord | undefined {
    const r = this.sql('SELECT * FROM commands WHERE linkage_key = ?').get(key) as Row | undefined;
    return r ? fromRow(r) : undefined;
  }

  /** Commands an alert's linkage sent. */
  ofAlert(alertId: string): CommandRecord[] {
    return (this.sql('SELECT * FROM commands WHERE alert_id = ? ORDER BY created_at, command_id').all(alertId) as Row[]).map(fromRow);
  }

  /** What a device should still receive, oldest first: pending and not yet expired. */
  undelivered(deviceId: string, now = this.o.now()): CommandRecord[] {
    return (this.sql("SELECT * FROM commands WHERE device_id = ? AND state = 'pending' AND expires_at > ? ORDER BY created_at, command_id")
      .all(deviceId, now) as Row[]).map(fromRow);
  }

  /** The device PUBACKed the command (MQTT-4.3.2: it owns it from then on). */
  delivered(commandId: string, deviceId: string): CommandRecord | undefined {
    const now = this.o.now();
    const changed = this.sql("UPDATE commands SET state = 'delivered', delivered_at = ? WHERE command_id = ? AND device_id = ? AND state = 'pending'")
      .run(now, commandId, deviceId).changes;
    return changed ? this.get(commandId) : undefined;
  }

  /** A device's answer; only the device the command was for may answer it. */
  result(deviceId: string, r: CommandResult, resultTs: number): ResultOutcome {
    return this.tx.run(() => {
      const c = this.get(r.commandId);
      if (!c || c.deviceId !== deviceId) return { outcome: 'rejected', reason: 'unknown_command', message: `no command ${r.commandId} for device ${deviceId}` };
      const now = this.o.now();
      if (c.state === 'expired' && c.deliveredAt !== undefined && c.resultAt === undefined) {
        // Past its answer deadline: what the device says is still worth keeping (the coil did
        // switch), but a final state does not change; resultAt marks that an answer came.
        this.sql('UPDATE commands SET result_at = ?, result_ts = ? WHERE command_id = ?').run(now, resultTs, c.commandId);
        this.audit('late_result', c, now, { siteId: c.siteId, deviceId, ok: r.ok, resultTs, ...(r.message !== undefined ? { message: r.message } : {}) });
        return { outcome: 'late', command: { ...c, resultAt: now, resultTs } };
      }
      if (c.state !== 'pending' && c.state !== 'delivered') return { outcome: 'duplicate', command: c };
      const u: CommandRecord = {
        ...c, state: r.ok ? 'succeeded' : 'failed', resultAt: now, resultTs,
        deliveredAt: c.deliveredAt ?? now, ...(r.message !== undefined ? { message: r.message } : {}),
      };
      this.sql('UPDATE commands SET state = ?, delivered_at = ?, result_at = ?, result_ts = ?, message = ? WHERE command_id = ?')
        .run(u.state, u.deliveredAt, now, resultTs, r.message ?? null, u.commandId);
      this.audit(u.state, u, now, { siteId: u.siteId, deviceId: u.deviceId, resultTs, ...(r.message !== undefined ? { message: r.message } : {}) });
      this.tx.afterCommit(() => { for (const l of this.finished) l(u); });
      return { outcome: 'accepted', command: u };
    });
  }

  /**
   * Commands that will not finish: pending ones whose `expiresAt` passed (no device took them),
   * and delivered ones with no answer within COMMAND_ANSWER_TIMEOUT_S of their PUBACK. Both become
   * `expired`, each with its audit entry saying which; the second also with a message.
   */
  expireDue(now = this.o.now()): { undelivered: number; unanswered: number } {
    const answeredBy = now - COMMAND_ANSWER_TIMEOUT_S * 1000;
    // `state IN (…)` as the partial index commands_unfinished says it, so the sweep reads only unfinished rows.
    const due = this.sql(`SELECT * FROM commands WHERE state IN ('pending', 'delivered')
      AND ((state = 'pending' AND expires_at <= ?) OR (state = 'delivered' AND delivered_at <= ?)) LIMIT 1000`).all(now, answeredBy) as Row[];
    const out = { undelivered: 0, unanswered: 0 };
    if (!due.length) return out;
    this.tx.run(() => {
      for (const r of due) {
        if (r.state === 'pending') {
          this.sql("UPDATE commands SET state = 'expired' WHERE command_id = ? AND state = 'pending'").run(r.command_id);
          this.audit('expired', fromRow(r), now, { siteId: r.site_id, deviceId: r.device_id });
          out.undelivered++;
        } else {
          const message = `delivered at ${iso(r.delivered_at!)}, no answer within ${COMMAND_ANSWER_TIMEOUT_S} s`;
          this.sql("UPDATE commands SET state = 'expired', message = ? WHERE command_id = ? AND state = 'delivered'").run(message, r.command_id);
          this.audit('expired', fromRow(r), now, { siteId: r.site_id, deviceId: r.device_id, unanswered: true, deliveredAt: r.delivered_at, message });
          out.unanswered++;
        }
      }
    });
    return out;
  }

  private audit(what: string, c: CommandRecord, at: number, data: Record<string, unknown>): void {
    this.o.audit.append(`command.${what}`, `command:${c.commandId}`, data, at);
  }

  /** The message on the device's `…/commands` topic (contract §7). */
  static message(c: CommandRecord): CommandMessage {
    return { commandId: c.commandId, action: c.action, ...(c.params ? { params: c.params } : {}), expiresAt: iso(c.expiresAt) };
  }

  /** The API's view (contract §7 `GET …/commands/{commandId}`). */
  static view(c: CommandRecord): Command {
    return {
      commandId: c.commandId, siteId: c.siteId, deviceId: c.deviceId, action: c.action, ...(c.params ? { params: c.params } : {}),
      state: c.state, createdAt: iso(c.createdAt), expiresAt: iso(c.expiresAt), by: c.by,
      ...(c.deliveredAt !== undefined ? { deliveredAt: iso(c.deliveredAt) } : {}),
      ...(c.resultAt !== undefined ? { resultAt: iso(c.resultAt) } : {}),
      ...(c.resultTs !== undefined ? { resultTs: iso(c.resultTs) } : {}),
      ...(c.message !== undefined ? { message: c.message } : {}),
      ...(c.alertId ? { alertId: c.alertId } : {}),
    };
  }
}
