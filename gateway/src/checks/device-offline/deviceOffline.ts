/**
 * `device.offline` (domain.md; contract §5, key: device): a device is offline
 *  - from an `offline` status, which is also its MQTT Last Will (the broker publishes it when the
 *    connection drops uncleanly), or
 *  - after silence longer than max(its kind's default or the site's `offlineAfterS[kind]`,
 *    3 × its interval: the site's `devices[id].intervalS`, else the registered one, else learnt as
 *    the median of its last 16 forward gaps of event time, once there are at least 4).
 * It clears when the device speaks again: any accepted message after the alert (reading,
 * check-in, snapshot, or a status other than `offline`).
 *
 * Silence is judged on the wall clock by arrival (`receivedAt`), never on event time: a replay of
 * an old month or an edge agent's backlog keeps its devices heard while it is being delivered, so
 * it cannot fire this alert until the data ends; afterwards the devices that stay silent do go
 * offline. `openedAt` is on the device's own time line (contract §5: event time): the status's
 * `ts`, or for silence its latest event time + the allowed silence.
 *
 * After a restart the gateway was deaf, not the devices: silence counts from the later of the
 * last arrival and the check's start. Devices never heard from are not judged (nothing says they
 * were ever installed).
 */
import type { Logger } from 'pino';
import type { StoredRecord } from '../../ledger/types.ts';
import type { Device } from '../../registry/registry.ts';
import { checkTransaction, type Check, type CheckContext, type CheckFactory } from '../check.ts';
import type { RaiseSignal } from '../types.ts';
import { LivenessRows } from './livenessRows.ts';
import { DEFAULT_OFFLINE_AFTER_S, INTERVALS_OF_SILENCE, LEARN_GAPS, LEARN_MIN_GAPS } from './defaults.ts';

const SPEAKING_KINDS = new Set(['reading', 'status', 'checkin', 'snapshot']);

export interface DeviceOfflineOptions {
  /** At the first start on a gateway with history: ledger records read back to learn when each device was last heard (default 200,000). */
  rebuildRecords?: number;
}

export interface Heard {
  siteId: string;
  /** Wall clock (receivedAt) of its latest message. */
  lastHeard: number;
  /** Latest event time of its messages. */
  lastEventTs: number;
  /** Last forward gaps of event time (ms), oldest first. */
  gaps: number[];
  /** Median of `gaps` (undefined: too few, or not computed since the last gap: see `learnt`). */
  learntMs: number | undefined;
  learntStale: boolean;
  /** The open alert, as this check raised or found it. */
  offline: { openedAt: number; recordedAt: number } | undefined;
}

export interface OfflineLimit {
  ms: number;
  /** Which number decided: the kind's default, the site's setting, or 3 × an interval. */
  basis: string;
}

export const offlineKey = (deviceId: string) => `device.offline:${deviceId}`;

export class DeviceOfflineCheck implements Check {
  readonly name = 'device-offline';
  readonly kinds = ['reading', 'status', 'checkin', 'snapshot'] as const;
  private readonly ctx: CheckContext;
  private readonly log: Logger;
  private readonly rebuildRecords: number;
  private readonly heard = new Map<string, Heard>();
  private readonly rows: LivenessRows;
  /** Devices heard since their row was last written. */
  private readonly unsaved = new Set<string>();
  private startedAt: number;
  /** Set by stop(): a read-back at start ends where it is (issue 15: a stop never waits for a backlog). */
  private stopping = false;

  constructor(ctx: CheckContext, options: DeviceOfflineOptions = {}) {
    this.ctx = ctx;
    this.log = ctx.logger.child({ check: this.name });
    this.rebuildRecords = options.rebuildRecords ?? 200_000;
    this.startedAt = ctx.now();
    this.rows = new LivenessRows(ctx.registry.db);
  }

  /** A gateway that had history before this check kept rows: it begins at the ledger's end (see `start`). */
  firstCursor(lastSeq: number): number {
    return lastSeq;
  }

  /**
   * What is known of each device, from its rows (written with the runner's cursor, so the records
   * after it are the ones handed over again). At the first start on a gateway with history there
   * are no rows yet: they are learnt from the ledger's recent records up to the cursor, and the alert
   * store reconciled with them (an offline status whose alert was never raised is raised, an alert
   * whose device spoke after it was raised is cleared).
   */
  async start(cursor = this.ctx.ledger.lastSeq): Promise<void> {
    this.startedAt = this.ctx.now();
    this.heard.clear();
    const owns = this.ctx.owns ?? (() => true);
    for (const [deviceId, h] of this.rows.all()) if (owns(h.siteId)) this.heard.set(deviceId, h);
    if (this.heard.size === 0 && cursor > 0) await this.learn(cursor);
  }

  stop(): void {
    this.stopping = true;
    checkTransaction(this.ctx, () => this.saveHeard());
  }

  /**
   * In the runner's transaction with the cursor: what each device said, its alert raised or
   * cleared. A device's row is written at once when its alert changed, else at the next tick: a
   * row ahead of the cursor is harmless (observing a record again changes nothing), and a step
   * that wrote nothing costs no fsync (issue 11).
   */
  onRecords(records: StoredRecord[]): void {
    for (const r of records) {
      const h = this.heard.get(r.deviceId);
      const wasOffline = h?.offline;
      if (!this.observe(r, true)) continue;
      if (this.heard.get(r.deviceId)!.offline !== wasOffline) this.rows.put(r.deviceId, this.heard.get(r.deviceId)!);
      else this.unsaved.add(r.deviceId);
    }
  }

  private async learn(cursor: number): Promise<void> {
    const lastStatusOffline = new Map<string, StoredRecord>();
    let after = Math.max(0, cursor - this.rebuildRecords);
    for (;;) {
      // Stopped midway: nothing was decided from the part read, the next start reads it again.
      if (this.stopping) return;
      const chunk = (await this.ctx.ledger.readAfter(after, 5000, [...this.kinds], this.ctx.shard)).filter((r) => r.seq <= cursor);
      if (chunk.length === 0) break;
      for (const r of chunk) {
        if (this.ctx.owns && !this.ctx.owns(r.siteId)) continue;
        const h = this.observe(r, false);
        if (h === undefined) continue;
        if (r.kind === 'status' && r.body.state === 'offline') lastStatusOffline.set(r.deviceId, r);
        else lastStatusOffline.delete(r.deviceId);
      }
      after = chunk[chunk.length - 1]!.seq;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    checkTransaction(this.ctx, () => {
      for (const [deviceId, h] of this.heard) {
        const status = lastStatusOffline.get(deviceId);
        const active = this.ctx.alerts.active(offlineKey(deviceId));
        if (active && !status && h.lastHeard > active.recordedAt) {
          this.ctx.alerts.apply({ type: 'clear', kind: 'device.offline', siteId: h.siteId, key: offlineKey(deviceId), at: h.lastEventTs, evidence: { reason: 'spoke', at: new Date(h.lastEventTs).toISOString() } });
          h.offline = undefined;
        } else if (!active && status) {
          this.raiseForStatus(deviceId, h, status, h.lastEventTs);
        }
        this.rows.put(deviceId, h);
      }
    });
    this.log.info({ devices: this.heard.size, offline: [...this.heard.values()].filter((h) => h.offline).length }, 'device liveness learnt from the ledger');
  }

  /** Wall-clock part: devices silent beyond their limit go offline; rows of devices heard since the last tick. */
  tick(now: number): void {
    this.saveHeard();
    for (const [deviceId, h] of this.heard) {
      if (h.offline) continue;
      const device = this.ctx.registry.device(deviceId);
      if (!device) continue;
      const limit = this.limitOf(device, h);
      const silentSince = Math.max(h.lastHeard, this.startedAt);
      if (now - silentSince <= limit.ms) continue;
      const openedAt = h.lastEventTs + limit.ms;
      this.raise(deviceId, h, {
        type: 'raise', kind: 'device.offline', siteId: h.siteId, subject: { deviceId }, key: offlineKey(deviceId),
        severity: 'warning', openedAt,
        message: `${deviceId} (${device.kind}) silent for more than ${formatS(limit.ms / 1000)} (${limit.basis})`,
        evidence: {
          reason: 'silence', lastEventAt: new Date(h.lastEventTs).toISOString(), lastHeardAt: new Date(h.lastHeard).toISOString(),
          silentS: Math.round((now - h.lastHeard) / 1000), limitS: limit.ms / 1000, basis: limit.basis,
        },
      }, now);
      this.rows.put(deviceId, h);
    }
  }

  /** Rows of the devices heard since their row was last written. */
  private saveHeard(): void {
    for (const deviceId of this.unsaved) {
      const h = this.heard.get(deviceId);
      if (h) this.rows.put(deviceId, h);
    }
    this.unsaved.clear();
  }

  /** The silence a device is allowed (domain.md `device.offline`). */
  limitOf(device: Device, h?: Pick<Heard, 'gaps' | 'learntMs' | 'learntStale'>): OfflineLimit {
    if (h?.learntStale) {
      h.learntMs = h.gaps.length >= LEARN_MIN_GAPS ? median(h.gaps) : undefined;
      h.learntStale = false;
    }
    const settings = this.ctx.registry.site(device.siteId)?.settings;
    const siteS = settings?.offlineAfterS?.[device.kind];
    const baseS = siteS ?? DEFAULT_OFFLINE_AFTER_S[device.kind];
    const base: OfflineLimit = { ms: baseS * 1000, basis: siteS !== undefined ? `site offlineAfterS.${device.kind}` : `${device.kind} default` };
    const settingS = settings?.devices?.[device.deviceId]?.intervalS;
    const [intervalMs, source] = settingS !== undefined ? [settingS * 1000, 'site setting']
      : device.intervalS !== undefined ? [device.intervalS * 1000, 'registered']
        : h?.learntMs !== undefined ? [h.learntMs, 'learnt'] : [undefined, ''];
    if (intervalMs === undefined || INTERVALS_OF_SILENCE * intervalMs <= base.ms) return base;
    return { ms: INTERVALS_OF_SILENCE * intervalMs, basis: `${INTERVALS_OF_SILENCE} × interval ${formatS(intervalMs / 1000)} (${source})` };
  }

  /** Updates what is known of the record's device; with `live`, raises or clears its alert. */
  private observe(r: StoredRecord, live: boolean): Heard | undefined {
    if (!SPEAKING_KINDS.has(r.kind)) return undefined;
    let h = this.heard.get(r.deviceId);
    if (h === undefined) {
      const device = this.ctx.registry.device(r.deviceId);
      if (!device) return undefined;
      const active = this.ctx.alerts.active(offlineKey(r.deviceId));
      h = {
        siteId: device.siteId, lastHeard: -Infinity, lastEventTs: -Infinity, gaps: [], learntMs: undefined, learntStale: false,
        offline: active ? { openedAt: active.openedAt, recordedAt: active.recordedAt } : undefined,
      };
      this.heard.set(r.deviceId, h);
    }
    const previousEventTs = h.lastEventTs;
    if (r.ts > h.lastEventTs) {
      if (Number.isFinite(h.lastEventTs)) {
        h.gaps.push(r.ts - h.lastEventTs);
        if (h.gaps.length > LEARN_GAPS) h.gaps.shift();
        h.learntStale = true; // the median is taken when a tick needs it, not per message
      }
      h.lastEventTs = r.ts;
    }
    if (r.receivedAt > h.lastHeard) h.lastHeard = r.receivedAt;
    if (!live) return h;
    if (r.kind === 'status' && r.body.state === 'offline') {
      if (!h.offline) this.raiseForStatus(r.deviceId, h, r, previousEventTs);
    } else if (h.offline) {
      this.ctx.alerts.apply({
        type: 'clear', kind: 'device.offline', siteId: h.siteId, key: offlineKey(r.deviceId), at: r.ts,
        evidence: { reason: 'spoke', kind: r.kind, at: new Date(r.ts).toISOString() },
      });
      h.offline = undefined;
    }
    return h;
  }

  /**
   * An `offline` status (or Last Will). A Last Will is composed when the device connects, so its
   * `ts` can be older than what the device sent since: the alert opens no earlier than that.
   */
  private raiseForStatus(deviceId: string, h: Heard, status: StoredRecord, previousEventTs: number): void {
    const openedAt = Math.max(status.ts, Number.isFinite(previousEventTs) ? previousEventTs : status.ts);
    this.raise(deviceId, h, {
      type: 'raise', kind: 'device.offline', siteId: h.siteId, subject: { deviceId }, key: offlineKey(deviceId),
      severity: 'warning', openedAt,
      message: `${deviceId} reported offline (status or MQTT Last Will)`,
      evidence: { reason: 'status', state: 'offline', statusTs: new Date(status.ts).toISOString(), receivedAt: new Date(status.receivedAt).toISOString() },
    }, this.ctx.now());
  }

  /** Raises unless the store already holds this very alert (a restart: raised before, maybe since resolved by a person). */
  private raise(deviceId: string, h: Heard, signal: RaiseSignal, now: number): void {
    this.ctx.alerts.reconcile(signal.key, signal, { exclusive: false });
    h.offline = { openedAt: signal.openedAt, recordedAt: now };
    this.log.debug({ deviceId, openedAt: signal.openedAt, reason: signal.evidence.reason }, 'device offline');
  }
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 === 1 ? s[(n - 1) >> 1]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

function formatS(s: number): string {
  return s % 60 === 0 ? `${s / 60} min` : `${Math.round(s)} s`;
}

export const deviceOfflineCheck = (options: DeviceOfflineOptions = {}): CheckFactory => (ctx) => new DeviceOfflineCheck(ctx, options);
