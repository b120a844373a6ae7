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
 * Restart (neither missing nor repeating an alert): the runner's cursor (`checkRunner.ts`) is
 * moved in the transaction that applies a step's signals, so the alert store holds the signals of
 * every reading up to it and of none after. Beside it, a snapshot (snapshotStore.ts) holds every
 * engine exactly as it was after ledger seq P ≤ cursor; it is taken between steps, when everything
 * the engines have seen is applied. On start the engines are restored and `start` returns P: the
 * runner hands over the readings from P to the cursor as a replay (the engines rebuild their state,
 * the signals are already applied and dropped), then the ones after it as usual — including
 * readings committed and acknowledged but not yet evaluated when the process died. The engine is
 * deterministic, so the replay re-derives exactly what the first evaluation did; an alert open
 * since before the replayed span keeps its `openedAt`, so a later withdrawal still names it.
 * A settings change takes a snapshot first (the step ends before the reading that sees the change,
 * see `Prepared.through`), so a replay judges every reading by the settings that judged it live.
 * (A change of a device's registered interval is not snapshotted: a replay across one judges the
 * replayed readings by the new interval.) The engines' thread dying fails the step; the runner
 * restores the check from the snapshot and the ledger and goes on.
 */
import type { Logger } from 'pino';
import type { StoredRecord } from '../../ledger/types.ts';
import { RpcWorker } from '../../util/workerRpc.ts';
import type { Check, CheckContext, CheckFactory, Prepared } from '../check.ts';
import type { AlertSignal } from '../types.ts';
import type { HazardStats } from './engine.ts';
import type { HazardReply, HazardRequest } from './hazardWorker.ts';
import { ReadingBatch } from './readingBatch.ts';
import { siteConfig, type SiteConfig } from './siteConfig.ts';
import { HazardSnapshotStore } from './snapshotStore.ts';

export interface HazardCheckOptions {
  /** Wall-clock time between snapshots of the engines that changed (default 5 min). */
  snapshotEveryMs?: number;
  /** Readings after which a snapshot is taken anyway, bounding the replay at start (default 200,000). */
  snapshotEveryReadings?: number;
  /** Records per step (the runner's read-back and queue hand over at most this many; default 20,000). */
  maxBatch?: number;
  /**
   * Readings replayed at start after which a snapshot is taken (default 50,000): a start that is
   * killed after replaying this many has moved the snapshot on, so a crash loop cannot make each
   * start replay more than the last (issue 15).
   */
  replaySnapshotEvery?: number;
}

interface HazardPrepared extends Prepared {
  signals: AlertSignal[];
}

export class HazardCheck implements Check<HazardPrepared> {
  readonly name = 'hazard';
  readonly kinds = ['reading'] as const;
  readonly maxBatch: number;
  private readonly ctx: CheckContext;
  private readonly log: Logger;
  private readonly store: HazardSnapshotStore;
  private readonly snapshotEveryMs: number;
  private readonly snapshotEveryReadings: number;
  private readonly replaySnapshotEvery: number;
  /** Sites whose engine exists on the worker, with the settings it was given. */
  private readonly sites = new Map<string, SiteConfig>();
  private worker: RpcWorker<HazardRequest, HazardReply> | undefined;
  /** Every interaction with the worker runs in this chain, one at a time. */
  private chain: Promise<unknown> = Promise.resolve();
  private failed: Error | undefined;
  /** Last ledger seq whose record the engines have seen. */
  private processedSeq = 0;
  /** Signals of records up to this seq are in the alert store (the runner's cursor). */
  private appliedSeq = 0;
  private replaying = false;
  private readonly intervals = new Map<string, { intervalS: number | undefined }>();
  private readingsSinceSnapshot = 0;
  private replayedSinceSnapshot = 0;
  private lastSnapshotAt: number;
  private readonly counters = { readings: 0, failedReadings: 0, signals: 0, flushes: 0, replayed: 0, replayDropped: 0, snapshots: 0, restarts: 0 };

  constructor(ctx: CheckContext, options: HazardCheckOptions = {}) {
    this.ctx = ctx;
    this.log = ctx.logger.child({ check: this.name });
    this.store = new HazardSnapshotStore(ctx.registry.db, ctx.shard, ctx.fence);
    this.snapshotEveryMs = options.snapshotEveryMs ?? 5 * 60_000;
    this.snapshotEveryReadings = options.snapshotEveryReadings ?? 200_000;
    this.maxBatch = options.maxBatch ?? 20_000;
    this.replaySnapshotEvery = options.replaySnapshotEvery ?? 50_000;
    this.lastSnapshotAt = ctx.now();
  }

  /** A fresh worker with the last snapshot restored; the runner replays the readings after it. */
  start(cursor: number): Promise<number> {
    return this.serial(async () => {
      if (this.worker) {
        this.counters.restarts++;
        const old = this.worker;
        this.worker = undefined;
        void old.terminate();
      }
      this.failed = undefined;
      this.sites.clear();
      await this.spawn();
      const { snapshotSeq } = this.store.cursor();
      for (const { siteId, doc } of this.store.snapshots()) {
        if (this.ctx.owns && !this.ctx.owns(siteId)) continue; // another shard's (region mode)
        const config = siteConfig(siteId, this.ctx.registry.site(siteId), this.log);
        try {
          await this.call({ type: 'site', siteId, timezone: config.timezone, settings: config.settings, doc });
          this.sites.set(siteId, config);
        } catch (err) {
          // An unreadable snapshot: that site's alerts restart from the replay after P only.
          this.log.error({ err, siteId }, 'hazard snapshot could not be restored');
        }
      }
      this.processedSeq = snapshotSeq;
      this.appliedSeq = cursor;
      this.replaying = snapshotSeq < cursor;
      this.log.info({ snapshotSeq, cursor }, 'hazard engines restored; the runner replays the readings after the snapshot');
      return snapshotSeq;
    });
  }

  /**
   * Evaluates a step's readings on the worker. A replay (`replay`: at or below the cursor) only
   * rebuilds the engines. A step that meets a site's settings change ends before that reading, so
   * that the snapshot taken at the change covers applied signals only.
   */
  prepare(records: StoredRecord[], replay: boolean): Promise<HazardPrepared> {
    return this.serial(async () => {
      if (this.failed) throw this.failed; // the runner restores the check and goes on
      if (this.snapshotDue(replay)) await this.takeSnapshot();
      this.replaying = replay;
      const batch = new ReadingBatch();
      const signals: AlertSignal[] = [];
      let last = 0;
      let through: number | undefined;
      for (const r of records) {
        if (r.seq <= this.processedSeq) continue;
        const change = this.siteChange(r.siteId);
        if (change !== undefined) {
          if (batch.length > 0 && !replay) {
            through = last; // the step ends here; the change is the next step's first reading
            break;
          }
          for (const s of await this.evaluate(batch, last, replay)) signals.push(s);
          if (this.sites.has(r.siteId)) {
            await this.takeSnapshot(); // everything the engines have seen is applied: between steps, or a replay
            this.log.info({ siteId: r.siteId, timezone: change.timezone, settings: change.settings }, 'hazard settings changed; new limits apply from the next reading');
          }
          await this.call({ type: 'site', siteId: r.siteId, timezone: change.timezone, settings: change.settings });
          this.sites.set(r.siteId, change);
        }
        batch.add(r.seq, r.siteId, r.deviceId, r.ts, r.body.metrics as Record<string, number>, this.intervalOf(r.deviceId));
        last = r.seq;
      }
      for (const s of await this.evaluate(batch, last, replay)) signals.push(s);
      return through !== undefined ? { signals, through } : { signals };
    });
  }

  /** In the runner's transaction with the cursor. */
  onRecords(records: StoredRecord[], prepared: HazardPrepared | undefined): void {
    for (const s of prepared?.signals ?? []) this.ctx.alerts.apply(s);
    this.appliedSeq = records[records.length - 1]!.seq;
    this.counters.signals += prepared?.signals.length ?? 0;
    this.counters.flushes++;
  }

  tick(): void {
    this.intervals.clear(); // a re-registered interval applies from the next tick on
  }

  /** Between steps: a snapshot when the last one is older than `snapshotEveryMs`. */
  async decide(now: number): Promise<void> {
    if (this.worker && !this.failed && this.readingsSinceSnapshot > 0 && now - this.lastSnapshotAt >= this.snapshotEveryMs) await this.snapshot();
  }

  /** The runner stopped between steps: a snapshot saves the engines as of the last step. */
  stop(): Promise<void> {
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

  stats(): typeof this.counters & { processedSeq: number; appliedSeq: number; sites: number; replaying: boolean } {
    return { ...this.counters, processedSeq: this.processedSeq, appliedSeq: this.appliedSeq, sites: this.sites.size, replaying: this.replaying };
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

  private snapshotDue(replay: boolean): boolean {
    if (replay) return this.replayedSinceSnapshot >= this.replaySnapshotEvery;
    return this.readingsSinceSnapshot >= this.snapshotEveryReadings;
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

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async spawn(): Promise<void> {
    const worker = await RpcWorker.start<HazardRequest, HazardReply>(new URL('./hazardWorker.ts', import.meta.url), { name: 'hazard' });
    worker.worker.unref();
    this.worker = worker;
    worker.onDeath((err) => {
      if (this.worker !== worker) return;
      this.failed = err;
      this.log.error({ err }, 'hazard worker failed; the runner restores it from the last snapshot');
    });
  }

  private call(req: HazardRequest): Promise<HazardReply> {
    const worker = this.worker;
    if (!worker || this.failed) return Promise.reject(this.failed ?? new Error('hazard worker not started'));
    return worker.call(req, req.type === 'ingest' ? [req.readings.head.buffer, req.readings.values.buffer] : []);
  }

  /** The batch's signals from the worker (none for a replay: they are applied already). */
  private async evaluate(batch: ReadingBatch, through: number, replay: boolean): Promise<AlertSignal[]> {
    const n = batch.length;
    if (n === 0) return [];
    const reply = (await this.call({ type: 'ingest', readings: batch.take() })) as Extract<HazardReply, { type: 'ingest' }>;
    if (reply.failed) {
      this.counters.failedReadings += reply.failed.count;
      this.log.error({ count: reply.failed.count, first: reply.failed.first }, 'hazard engine failed on readings; skipped');
    }
    this.processedSeq = through;
    this.counters.readings += n;
    this.readingsSinceSnapshot += n;
    if (replay) {
      this.counters.replayed += n;
      this.replayedSinceSnapshot += n;
      this.counters.replayDropped += n; // their signals are applied already
      return [];
    }
    return reply.signals.flatMap((s) => s.signals);
  }

  private async takeSnapshot(): Promise<{ sites: number; bytes: number }> {
    const reply = (await this.call({ type: 'snapshot' })) as Extract<HazardReply, { type: 'snapshot' }>;
    const now = this.ctx.now();
    this.store.save(this.processedSeq, reply.docs, now);
    this.lastSnapshotAt = now;
    this.readingsSinceSnapshot = 0;
    this.replayedSinceSnapshot = 0;
    this.counters.snapshots++;
    return { sites: reply.docs.length, bytes: reply.docs.reduce((n, d) => n + d.doc.length, 0) };
  }

  /** The site's configuration when its engine must be created or changed, else undefined (cheap: one identity check). */
  private siteChange(siteId: string): SiteConfig | undefined {
    const site = this.ctx.registry.site(siteId);
    const current = this.sites.get(siteId);
    if (current !== undefined && current.site === site) return undefined;
    const next = siteConfig(siteId, site, this.log);
    if (current !== undefined && next.settingsKey === current.settingsKey && next.timezone === current.timezone) {
      current.site = site;
      return undefined;
    }
    return next;
  }
}

export const hazardCheck = (options: HazardCheckOptions = {}): CheckFactory => (ctx) => new HazardCheck(ctx, options);
