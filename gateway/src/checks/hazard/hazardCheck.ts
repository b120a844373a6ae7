/**
 * The hazard rules in the gateway (`hazard.threshold`, `hazard.rate`; domain.md "Hazards"): one
 * `HazardEngine` per site, fed every committed `reading` in ledger order, its signals handed to
 * the alert store. The engines live on a worker thread (hazardWorker.ts) so that evaluating them
 * never competes with MQTT and ingest for the main thread; this side keeps the bookkeeping.
 *
 * Settings: a site's `settings.thresholds` / `settings.devices` and its time zone. A PUT of the site
 * replaces its object in the registry, so an identity check per reading notices a change; the new
 * limits apply from the next reading on (the engine does not re-judge history).
 *
 * Restart (neither missing nor repeating an alert) — snapshot + ledger replay, see snapshotStore.ts:
 *  - A snapshot holds every engine exactly as it was after ledger seq P (`snapshot_seq`); it is
 *    taken only when no signal is pending, so every signal of a record ≤ P is in the alert store.
 *  - Signals are applied in the same SQLite transaction that moves `applied_seq` (A) to the last
 *    record they cover: the alert store holds the signals of every record ≤ A and of none after.
 *  - On start: restore the engines, replay the ledger's readings after P in seq order. The engine
 *    is deterministic, so the replay re-derives exactly the signals it emitted the first time:
 *    those of records ≤ A are dropped (already applied), those after A are applied now — including
 *    readings that were committed (and acknowledged) but not yet evaluated when the process died.
 * Rebuilding instead from the last days of readings with every signal dropped would be neither:
 * the signals of readings committed but not yet evaluated at the crash would be lost (a missed
 * alert), and an alert open since before the rebuilt span would be re-derived with another
 * `openedAt`, so a later withdrawal (`retracts`) would no longer name it.
 * A settings change takes a snapshot first, so a replay judges every reading by the settings that
 * judged it live. (A change of a device's registered interval is not snapshotted: a replay across
 * one judges the replayed readings by the new interval.)
 */
import type { Logger } from 'pino';
import type { StoredRecord } from '../../ledger/types.ts';
import type { Site } from '../../registry/registry.ts';
import { DEFAULT_TIMEZONE } from '../../registry/registry.ts';
import { RpcWorker } from '../../util/workerRpc.ts';
import type { Check, CheckContext, CheckFactory } from '../check.ts';
import type { AlertSignal } from '../types.ts';
import type { HazardStats } from './engine.ts';
import type { HazardReply, HazardRequest } from './hazardWorker.ts';
import { ReadingBatch } from './readingBatch.ts';
import { DeviceHazardSettings, HazardSettings, Thresholds } from './settings.ts';
import { HazardSnapshotStore } from './snapshotStore.ts';

export interface HazardCheckOptions {
  /** Wall-clock time between snapshots of the engines that changed (default 5 min). */
  snapshotEveryMs?: number;
  /** Readings after which a snapshot is taken anyway, bounding the replay at start (default 200,000). */
  snapshotEveryReadings?: number;
  /** Ledger records read per step of the replay at start. */
  replayChunk?: number;
  /**
   * Readings replayed at start after which a snapshot is taken (default 50,000): a start that is
   * killed after replaying this many has moved the snapshot on, so a crash loop cannot make each
   * start replay more than the last (issue 15).
   */
  replaySnapshotEvery?: number;
  /** Records waiting for the worker beyond which `onRecords` makes the runner wait (default 40,000). */
  maxInbox?: number;
}

interface SiteConfig {
  /** The registry's site object the settings were taken from (replaced on every PUT). */
  site: Site | undefined;
  settings: HazardSettings | undefined;
  settingsKey: string;
  timezone: string;
}

/** Most records sent to the worker in one message (a backlog is sent in steps, so snapshots can interleave). */
const MAX_BATCH = 20_000;
/** A smaller inbox waits this long for more records before it is sent. */
const GATHER_UP_TO = 1000;
const GATHER_MS = 5;


export class HazardCheck implements Check {
  readonly name = 'hazard';
  private readonly ctx: CheckContext;
  private readonly log: Logger;
  private readonly store: HazardSnapshotStore;
  private readonly snapshotEveryMs: number;
  private readonly snapshotEveryReadings: number;
  private readonly replayChunk: number;
  private readonly replaySnapshotEvery: number;
  private readonly maxInbox: number;
  /** Set by stop(): the replay and the pump end where they are; records are no longer taken. */
  private stopping = false;
  private replaying = false;
  /** onRecords callers waiting for room in the inbox (back-pressure). */
  private roomWaiters: (() => void)[] = [];
  /** Sites whose engine exists on the worker, with the settings it was given. */
  private readonly sites = new Map<string, SiteConfig>();
  private worker: RpcWorker<HazardRequest, HazardReply> | undefined;
  /** Every interaction with the worker runs in this chain, one at a time. */
  private chain: Promise<unknown> = Promise.resolve();
  private failed: Error | undefined;
  /** Last ledger seq whose record the engines have seen. */
  private processedSeq = 0;
  /** Signals of records up to this seq are in the alert store (persisted as `applied_seq`). */
  private appliedSeq = 0;
  private pending: AlertSignal[] = [];
  /** Records handed over by the runner, not yet sent to the worker. */
  private inbox: StoredRecord[][] = [];
  private inboxSize = 0;
  private pumping: Promise<void> | null = null;
  private readonly intervals = new Map<string, { intervalS: number | undefined }>();
  private readingsSinceSnapshot = 0;
  private lastSnapshotAt: number;
  private readonly counters = { readings: 0, failedReadings: 0, signals: 0, flushes: 0, replayed: 0, replayDropped: 0, snapshots: 0, restarts: 0 };

  constructor(ctx: CheckContext, options: HazardCheckOptions = {}) {
    this.ctx = ctx;
    this.log = ctx.logger.child({ check: this.name });
    this.store = new HazardSnapshotStore(ctx.registry.db);
    this.snapshotEveryMs = options.snapshotEveryMs ?? 5 * 60_000;
    this.snapshotEveryReadings = options.snapshotEveryReadings ?? 200_000;
    this.replayChunk = options.replayChunk ?? 5000;
    this.replaySnapshotEvery = options.replaySnapshotEvery ?? 50_000;
    this.maxInbox = options.maxInbox ?? 2 * MAX_BATCH;
    this.lastSnapshotAt = ctx.now();
  }

  /** Restores the engines; a failure is logged and retried on the next tick rather than stopping the gateway. */
  start(): Promise<void> {
    return this.serial(async () => {
      try {
        await this.restore();
      } catch (err) {
        this.failed ??= err as Error;
        this.log.error({ err }, 'hazard rules could not start; retrying at the next tick');
      }
    });
  }

  /**
   * Takes the records and returns at once: the readings go to the worker in the background, and
   * records that arrive while it is busy are sent together next (fewer, larger messages under
   * load). `drained()` resolves when all of them are evaluated and their alerts applied.
   * Back-pressure: while the inbox holds `maxInbox` records the returned promise waits for room,
   * so the runner holds the rest (or leaves it in the ledger) instead of this inbox growing.
   */
  onRecords(records: StoredRecord[]): Promise<void> | void {
    if (this.stopping) return;
    this.inbox.push(records);
    this.inboxSize += records.length;
    this.pump();
    if (this.inboxSize >= this.maxInbox) return new Promise((resolve) => this.roomWaiters.push(resolve));
  }

  /** Last ledger seq the engines have evaluated (alerts of records up to it are applied). */
  processedThrough(): number {
    return this.processedSeq;
  }

  async drained(): Promise<void> {
    while (this.pumping) await this.pumping;
  }

  tick(now: number): Promise<void> | void {
    this.intervals.clear(); // a re-registered interval applies from the next tick on
    if (this.failed) return this.recover();
    if (this.readingsSinceSnapshot > 0 && now - this.lastSnapshotAt >= this.snapshotEveryMs) return this.snapshot().then(() => undefined);
  }

  /**
   * Stops where it is (issue 15: a stop never waits for the backlog): the batch on the worker
   * finishes, a snapshot saves the engines as of the last record they evaluated, and everything
   * after it — the inbox, the rest of a replay — is replayed from the ledger at the next start.
   */
  stop(): Promise<void> {
    this.stopping = true;
    this.inbox = [];
    this.inboxSize = 0;
    this.releaseRoom();
    return this.serial(async () => {
      if (this.worker && !this.failed) await this.takeSnapshot();
      const worker = this.worker;
      this.worker = undefined;
      await worker?.terminate();
    });
  }

  /** Writes the engines that changed and moves `snapshot_seq` to the last record seen. */
  snapshot(): Promise<{ sites: number; bytes: number }> {
    return this.serial(() => this.takeSnapshot());
  }

  stats(): typeof this.counters & { processedSeq: number; appliedSeq: number; sites: number; replaying: boolean; inbox: number } {
    return { ...this.counters, processedSeq: this.processedSeq, appliedSeq: this.appliedSeq, sites: this.sites.size, replaying: this.replaying, inbox: this.inboxSize };
  }

  /** The engines' own counters (readings, samples, late, evaluations …), summed over sites. */
  engineStats(): Promise<HazardStats> {
    return this.serial(async () => ((await this.call({ type: 'stats' })) as Extract<HazardReply, { type: 'stats' }>).stats);
  }

  /** Event-loop utilisation of the worker thread (busy ms since it started): what the rules cost off the main thread. */
  workerBusyMs(): number {
    return this.worker?.worker.performance.eventLoopUtilization().active ?? 0;
  }

  /** Memory of the worker thread that holds the engines (heap + typed arrays), in bytes. */
  memory(): Promise<number> {
    return this.serial(async () => ((await this.call({ type: 'memory' })) as Extract<HazardReply, { type: 'memory' }>).bytes);
  }

  /** The device's registered interval, cached between ticks (the registry copies a device on every lookup). */
  private intervalOf(deviceId: string): number | undefined {
    let cached = this.intervals.get(deviceId);
    if (cached === undefined) {
      cached = { intervalS: this.ctx.registry.device(deviceId)?.intervalS };
      this.intervals.set(deviceId, cached);
    }
    return cached.intervalS;
  }

  private releaseRoom(): void {
    for (const resolve of this.roomWaiters.splice(0)) resolve();
  }

  private pump(): void {
    if (this.pumping || this.stopping || this.inbox.length === 0) return;
    this.pumping = this.serial(async () => {
      try {
        if (this.failed) await this.restore(); // the worker died: rebuild it from the snapshot and the ledger
        // Under load the runner hands over small batches (one per ledger commit): gather a few ms of
        // them into one message, since each message costs the main thread ~15 µs whatever its size.
        if (this.inboxSize < GATHER_UP_TO) await new Promise((resolve) => setTimeout(resolve, GATHER_MS));
        await this.process(this.takeInbox(), false);
      } catch (err) {
        // The engines may now hold part of these records: rebuild them before the next ones
        // (the replay from the snapshot covers the records still in the inbox).
        this.failed ??= err as Error;
        this.log.error({ err }, 'hazard rules failed; rebuilding from the last snapshot at the next tick');
      }
    }).finally(() => {
      this.pumping = null;
      if (!this.failed) this.pump(); // after a failure, tick() rebuilds and resumes
      if (this.inboxSize < this.maxInbox || this.stopping) this.releaseRoom();
    });
  }

  /** After a failure: a fresh worker from the snapshot and the ledger, then the records that waited. */
  private recover(): Promise<void> {
    return this.serial(async () => {
      try {
        await this.restore();
      } catch (err) {
        this.failed ??= err as Error;
        this.log.error({ err }, 'hazard rules could not be rebuilt; retrying at the next tick');
      }
    }).then(() => this.pump());
  }

  /** Up to MAX_BATCH records from the inbox, oldest first. */
  private takeInbox(): StoredRecord[] {
    if (this.inbox.length === 1 || this.inboxSize <= MAX_BATCH) {
      const all = this.inbox.length === 1 ? this.inbox[0]! : this.inbox.flat();
      this.inbox = [];
      this.inboxSize = 0;
      this.releaseRoom();
      return all;
    }
    const out: StoredRecord[] = [];
    while (this.inbox.length > 0 && out.length + this.inbox[0]!.length <= MAX_BATCH) {
      const next = this.inbox.shift()!;
      for (const r of next) out.push(r);
    }
    if (out.length === 0) out.push(...this.inbox.shift()!);
    this.inboxSize -= out.length;
    if (this.inboxSize < this.maxInbox) this.releaseRoom();
    return out;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** A fresh worker with the last snapshot restored, then the ledger replayed after it (see the file comment). */
  private async restore(): Promise<void> {
    if (this.worker) {
      this.counters.restarts++;
      const old = this.worker;
      this.worker = undefined;
      void old.terminate();
    }
    this.failed = undefined;
    this.pending = [];
    this.sites.clear();
    await this.spawn();
    const { snapshotSeq, appliedSeq } = this.store.cursor();
    for (const { siteId, doc } of this.store.snapshots()) {
      const config = this.configOf(siteId, this.ctx.registry.site(siteId));
      try {
        await this.call({ type: 'site', siteId, timezone: config.timezone, settings: config.settings, doc });
        this.sites.set(siteId, config);
      } catch (err) {
        // An unreadable snapshot: that site's alerts restart from the replay after P only.
        this.log.error({ err, siteId }, 'hazard snapshot could not be restored');
      }
    }
    this.processedSeq = snapshotSeq;
    this.appliedSeq = appliedSeq;
    const t0 = performance.now();
    const replayedBefore = this.counters.replayed;
    let sinceSnapshot = 0;
    this.replaying = true;
    try {
      while (!this.stopping) {
        const chunk = this.ctx.ledger.readAfter(this.processedSeq, this.replayChunk, ['reading']);
        if (chunk.length === 0) break;
        await this.process(chunk, true);
        sinceSnapshot += chunk.length;
        // By replay length, not by a process's lifetime: see replaySnapshotEvery.
        if (sinceSnapshot >= this.replaySnapshotEvery && !this.stopping) {
          await this.takeSnapshot();
          sinceSnapshot = 0;
        }
      }
    } finally {
      this.replaying = false;
    }
    this.log.info({ snapshotSeq, appliedSeq, replayed: this.counters.replayed - replayedBefore, stopped: this.stopping, ms: Math.round(performance.now() - t0) }, 'hazard rules restored');
  }

  private async spawn(): Promise<void> {
    const worker = await RpcWorker.start<HazardRequest, HazardReply>(new URL('./hazardWorker.ts', import.meta.url), { name: 'hazard' });
    worker.worker.unref();
    this.worker = worker;
    worker.onDeath((err) => {
      if (this.worker !== worker) return;
      this.failed = err;
      this.log.error({ err }, 'hazard worker failed; it is rebuilt from the last snapshot on the next batch');
    });
  }

  private call(req: HazardRequest): Promise<HazardReply> {
    const worker = this.worker;
    if (!worker || this.failed) return Promise.reject(this.failed ?? new Error('hazard worker not started'));
    return worker.call(req, req.type === 'ingest' ? [req.readings.head.buffer, req.readings.values.buffer] : []);
  }

  private async process(records: StoredRecord[], replaying: boolean): Promise<void> {
    const batch = new ReadingBatch();
    let last = this.processedSeq;
    for (const r of records) {
      if (r.seq <= this.processedSeq) continue; // seen already (replayed at start, or covered by the snapshot)
      if (r.kind === 'reading') {
        const change = this.siteChange(r.siteId);
        if (change !== undefined) {
          // Evaluate what came before under the old settings, snapshot, then switch (file comment).
          await this.ingest(batch, last);
          if (this.sites.has(r.siteId)) await this.takeSnapshot();
          await this.call({ type: 'site', siteId: r.siteId, timezone: change.timezone, settings: change.settings });
          if (this.sites.has(r.siteId)) this.log.info({ siteId: r.siteId, timezone: change.timezone, settings: change.settings }, 'hazard settings changed; new limits apply from the next reading');
          this.sites.set(r.siteId, change);
        }
        const intervalS = this.intervalOf(r.deviceId);
        batch.add(r.seq, r.siteId, r.deviceId, r.ts, r.body.metrics as Record<string, number>, intervalS);
        if (replaying) {
          this.counters.replayed++;
          if (r.seq <= this.appliedSeq) this.counters.replayDropped++;
        }
      }
      last = r.seq;
    }
    await this.ingest(batch, last);
    if (this.readingsSinceSnapshot >= this.snapshotEveryReadings) await this.takeSnapshot();
  }

  /** Evaluates readings on the worker, then applies their signals; the engines have seen through `through`. */
  private async ingest(batch: ReadingBatch, through: number): Promise<void> {
    const n = batch.length;
    if (n > 0) {
      const reply = (await this.call({ type: 'ingest', readings: batch.take() })) as Extract<HazardReply, { type: 'ingest' }>;
      if (reply.failed) {
        this.counters.failedReadings += reply.failed.count;
        this.log.error({ count: reply.failed.count, first: reply.failed.first }, 'hazard engine failed on readings; skipped');
      }
      for (const { seq, signals } of reply.signals) {
        // Signals of records up to appliedSeq are in the alert store already (a replay at start).
        if (seq > this.appliedSeq) for (const s of signals) this.pending.push(s);
      }
      this.counters.readings += n;
      this.readingsSinceSnapshot += n;
    }
    if (through > this.processedSeq) this.processedSeq = through;
    this.flush();
  }

  /** Applies the pending signals and records them as applied through `processedSeq`, atomically. */
  private flush(): void {
    if (this.pending.length === 0) return;
    const signals = this.pending;
    this.pending = [];
    const through = this.processedSeq;
    this.store.inTransaction(through, () => {
      for (const s of signals) this.ctx.alerts.apply(s);
    });
    this.appliedSeq = through;
    this.counters.signals += signals.length;
    this.counters.flushes++;
  }

  private async takeSnapshot(): Promise<{ sites: number; bytes: number }> {
    this.flush();
    const reply = (await this.call({ type: 'snapshot' })) as Extract<HazardReply, { type: 'snapshot' }>;
    const now = this.ctx.now();
    this.store.save(this.processedSeq, reply.docs, now);
    this.lastSnapshotAt = now;
    this.readingsSinceSnapshot = 0;
    this.counters.snapshots++;
    return { sites: reply.docs.length, bytes: reply.docs.reduce((n, d) => n + d.doc.length, 0) };
  }

  /** The site's configuration when its engine must be created or changed, else undefined (cheap: one identity check). */
  private siteChange(siteId: string): SiteConfig | undefined {
    const site = this.ctx.registry.site(siteId);
    const current = this.sites.get(siteId);
    if (current !== undefined && current.site === site) return undefined;
    const next = this.configOf(siteId, site);
    if (current !== undefined && next.settingsKey === current.settingsKey && next.timezone === current.timezone) {
      current.site = site;
      return undefined;
    }
    return next;
  }

  /**
   * The hazard part of a site's settings. The site schema accepts any threshold key; a key that
   * names no metric or rule is left out (and logged) rather than dropping the site's other limits.
   */
  private configOf(siteId: string, site: Site | undefined): SiteConfig {
    const timezone = site?.timezone ?? DEFAULT_TIMEZONE;
    const raw = site?.settings;
    if (raw?.thresholds === undefined && raw?.devices === undefined) return { site, settings: undefined, settingsKey: '', timezone };
    const problems: string[] = [];
    const thresholds = (map: Record<string, unknown> | undefined, where: string): Thresholds | undefined => {
      if (map === undefined) return undefined;
      const out: Thresholds = {};
      for (const [k, v] of Object.entries(map)) {
        const one = Thresholds.safeParse({ [k]: v });
        if (one.success) Object.assign(out, one.data);
        else problems.push(`${where}${k}: ${one.error.issues[0]?.message ?? 'invalid'}`);
      }
      return out;
    };
    const settings: HazardSettings = {};
    const siteThresholds = thresholds(raw.thresholds, 'thresholds.');
    if (siteThresholds !== undefined) settings.thresholds = siteThresholds;
    if (raw.devices !== undefined) {
      settings.devices = {};
      for (const [deviceId, d] of Object.entries(raw.devices)) {
        const t = thresholds(d.thresholds, `devices.${deviceId}.thresholds.`);
        const parsed = DeviceHazardSettings.safeParse({ ...(t !== undefined ? { thresholds: t } : {}), ...(d.intervalS !== undefined ? { intervalS: d.intervalS } : {}) });
        if (parsed.success) settings.devices[deviceId] = parsed.data;
        else problems.push(`devices.${deviceId}: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
      }
    }
    if (problems.length > 0) this.log.warn({ siteId, problems }, 'site hazard settings: keys ignored');
    const parsed = HazardSettings.parse(settings);
    return { site, settings: parsed, settingsKey: JSON.stringify(parsed), timezone };
  }
}

export const hazardCheck = (options: HazardCheckOptions = {}): CheckFactory => (ctx) => new HazardCheck(ctx, options);
