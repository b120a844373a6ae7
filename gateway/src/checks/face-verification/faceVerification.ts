import { SiteCalendar } from '../../calendar/siteCalendar.ts';
import { DEFAULT_MIN_FACE_PX, DEFAULT_THRESHOLD, FACE_MODEL_ID, verdictFor } from '../../face/index.ts';
import type { Verdict } from '../../attendance/attendance.ts';
import { readEvidence } from '../../ledger/evidence.ts';
import type { LedgerRecord, StoredRecord } from '../../ledger/types.ts';
import { DEFAULT_TIMEZONE } from '../../registry/registry.ts';
import type { Check, CheckContext, CheckFactory } from '../check.ts';
import { CheckProgress } from '../progress.ts';
import type { RaiseSignal } from '../types.ts';

export const FACE_VERIFICATION = 'face-verification';

/** Attempts per check-in when the analysis itself fails (worker crash); afterwards it waits for a restart. */
const MAX_ATTEMPTS = 3;

export interface FaceOutcome {
  verdict: Verdict;
  similarity?: number;
  faceSizePx?: number;
  /** Why: not_enrolled / model_changed (unverified); no_photo, photo_missing, undecodable, no_face, face_too_small (no_face). */
  reason?: string;
  threshold: number;
  minFacePx: number;
}

export interface FaceVerification extends Check {
  /** Resolves when every face check-in handed in so far has its verdict (or has failed for this run). */
  idle(): Promise<void>;
  /** Face check-ins waiting for, or in, analysis. */
  readonly backlog: number;
}

/**
 * Re-checks the terminal's decision for `method: face` check-ins (domain.md "Face verification"),
 * off the MQTT hot path: the check-in is already durable and acknowledged when it gets here.
 * Photos go to the shared worker pool (bounded, one worker per core); at most `2 × workers` are
 * handed to it at a time and the rest wait here as ledger records (no photo held in memory), so
 * under overload check-ins wait and are never dropped. Each check-in gets one `verdict` ledger
 * record (dedupe key `verdict:<check-in key>`, stamped with the check-in's event time so reports
 * and the InfluxDB `checkin` point pick it up), and `checkin.face_mismatch` / `checkin.no_face`
 * alerts keyed site + worker + local day (contract §5) carry similarity, threshold and photo hash.
 *
 * Restart: `resumeAfter` (state.db) is a ledger seq below which every face check-in has a verdict;
 * on start the check-ins after it without a verdict are queued again.
 */
export const faceVerificationCheck: CheckFactory = (ctx) => new FaceVerificationCheck(ctx);

class FaceVerificationCheck implements FaceVerification {
  readonly name = FACE_VERIFICATION;
  private readonly ctx: CheckContext;
  private readonly progress: CheckProgress;
  private readonly maxInFlight: number;
  private pending: { r: StoredRecord; attempts: number; resumed: boolean }[] = [];
  private readonly inFlight = new Map<number, Promise<void>>();
  /** Check-ins that failed MAX_ATTEMPTS times: they hold `resumeAfter` back so a restart retries them. */
  private readonly failed = new Set<number>();
  private maxSeqSeen = 0;
  private scannedThrough = 0;
  private stopping = false;
  private waiters: (() => void)[] = [];

  constructor(ctx: CheckContext) {
    this.ctx = ctx;
    this.progress = new CheckProgress(ctx.registry.db, FACE_VERIFICATION);
    this.maxInFlight = 2 * Math.max(1, ctx.faces?.workers ?? 1);
  }

  get backlog(): number {
    return this.pending.length + this.inFlight.size;
  }

  start(): void {
    const after = this.progress.get('resumeAfter') ?? 0;
    this.scannedThrough = this.ctx.ledger.lastSeq;
    const waiting = new Map<string, StoredRecord>();
    for (const r of this.ctx.ledger.scan(['checkin', 'verdict'], after)) {
      if (r.seq > this.scannedThrough) break;
      if (r.kind === 'checkin' && r.body.method === 'face') waiting.set(r.dedupeKey, r);
      else if (r.kind === 'verdict') waiting.delete(r.body.checkinKey as string);
    }
    this.maxSeqSeen = this.scannedThrough;
    for (const r of waiting.values()) this.pending.push({ r, attempts: 0, resumed: true });
    if (this.pending.length) this.ctx.logger.info({ checkins: this.pending.length }, 'resuming face verification of check-ins without a verdict');
    this.pump();
  }

  onRecords(records: StoredRecord[]): void {
    for (const r of records) {
      if (r.seq <= this.scannedThrough) continue; // already found by the start-up scan
      if (r.seq > this.maxSeqSeen) this.maxSeqSeen = r.seq;
      if (r.kind === 'checkin' && r.body.method === 'face') this.pending.push({ r, attempts: 0, resumed: false });
    }
    this.pump();
    this.saveProgress();
  }

  idle(): Promise<void> {
    if (this.backlog === 0 || this.stopping) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  async stop(): Promise<void> {
    // Queued check-ins stay without a verdict and are resumed at the next start.
    this.stopping = true;
    await Promise.all(this.inFlight.values());
    this.saveProgress(true);
    for (const w of this.waiters.splice(0)) w();
  }

  private pump(): void {
    while (!this.stopping && this.inFlight.size < this.maxInFlight && this.pending.length) {
      const job = this.pending.shift()!;
      const p = this.run(job).finally(() => {
        this.inFlight.delete(job.r.seq);
        this.saveProgress();
        this.pump();
        this.report();
      });
      this.inFlight.set(job.r.seq, p);
    }
    this.report();
  }

  private report(): void {
    this.ctx.metrics.faceQueueDepth.set(this.pending.length + (this.ctx.faces?.poolQueueDepth() ?? 0));
    if (this.backlog === 0) for (const w of this.waiters.splice(0)) w();
  }

  private async run(job: { r: StoredRecord; attempts: number; resumed: boolean }): Promise<void> {
    const { r } = job;
    let outcome: FaceOutcome;
    try {
      outcome = await this.verify(r);
    } catch (err) {
      job.attempts++;
      this.ctx.logger.warn({ err, siteId: r.siteId, checkinId: r.msgId, attempt: job.attempts }, 'face analysis failed');
      if (job.attempts < MAX_ATTEMPTS && !this.stopping) this.pending.push(job);
      else this.failed.add(r.seq);
      return;
    }
    const b = r.body as { workerId: string; direction: string; method: string; photoSha256?: string };
    // Alert first, verdict second: a crash in between re-verifies on restart, and the alert
    // store keeps one alert per key, so nothing is lost and nothing doubles.
    const signal = this.alertFor(r, outcome);
    if (signal) this.ctx.alerts.reconcile(signal.key, signal, { exclusive: false });
    const verdict: LedgerRecord = {
      siteId: r.siteId, deviceId: r.deviceId, kind: 'verdict', msgId: `verdict:${r.msgId}`, dedupeKey: `verdict:${r.dedupeKey}`,
      ts: r.ts, receivedAt: this.ctx.now(),
      body: {
        deviceId: r.deviceId, workerId: b.workerId, direction: b.direction, method: b.method, checkinId: r.msgId, checkinKey: r.dedupeKey,
        verdict: outcome.verdict, ...(outcome.similarity !== undefined ? { similarity: round4(outcome.similarity) } : {}),
        ...(b.photoSha256 ? { photoSha256: b.photoSha256 } : {}), threshold: outcome.threshold, minFacePx: outcome.minFacePx,
        ...(outcome.faceSizePx !== undefined ? { faceSizePx: Math.round(outcome.faceSizePx) } : {}),
        ...(outcome.reason ? { reason: outcome.reason } : {}), modelId: FACE_MODEL_ID,
      },
    };
    await this.ctx.ledger.append(verdict);
    this.ctx.metrics.faceVerdicts.inc({ verdict: outcome.verdict });
    if (!job.resumed) this.ctx.metrics.faceCheckinSeconds.observe(Math.max(0, this.ctx.now() - r.receivedAt) / 1000);
  }

  /** The verdict rules of domain.md "Face verification", with the site's threshold and minimum face size. */
  private async verify(r: StoredRecord): Promise<FaceOutcome> {
    const settings = this.ctx.registry.site(r.siteId)?.settings ?? {};
    const threshold = settings.faceThreshold ?? DEFAULT_THRESHOLD;
    const minFacePx = settings.minFacePx ?? DEFAULT_MIN_FACE_PX;
    const base = { threshold, minFacePx };
    const b = r.body as { workerId: string; photoSha256?: string };
    const enrolled = this.ctx.faces?.enrolled(r.siteId, b.workerId);
    // Nobody to compare with: stored as unverified, never alerted.
    if (!enrolled) return { ...base, verdict: 'unverified', reason: 'not_enrolled' };
    if (enrolled.modelId !== FACE_MODEL_ID) return { ...base, verdict: 'unverified', reason: 'model_changed' };
    if (!b.photoSha256) return { ...base, verdict: 'no_face', reason: 'no_photo' };
    const photo = readEvidence(this.ctx.ledger.evidenceDir, b.photoSha256);
    if (!photo) return { ...base, verdict: 'no_face', reason: 'photo_missing' };
    const v = verdictFor(await this.ctx.faces!.analyze(photo), enrolled.embedding, { threshold, minFacePx });
    return {
      ...base, verdict: v.verdict, ...(v.similarity !== undefined ? { similarity: v.similarity } : {}),
      ...(v.faceSizePx !== undefined ? { faceSizePx: v.faceSizePx } : {}), ...(v.reason ? { reason: v.reason } : {}),
    };
  }

  private alertFor(r: StoredRecord, o: FaceOutcome): RaiseSignal | undefined {
    if (o.verdict !== 'face_mismatch' && o.verdict !== 'no_face') return undefined;
    const site = this.ctx.registry.site(r.siteId);
    const tz = site?.timezone ?? DEFAULT_TIMEZONE;
    const cal = SiteCalendar.of(tz);
    const b = r.body as { workerId: string; photoSha256?: string; terminalScore?: number };
    const day = cal.localDay(r.ts);
    const kind = o.verdict === 'face_mismatch' ? 'checkin.face_mismatch' : 'checkin.no_face';
    const evidence = {
      rule: kind, checkinId: r.msgId, deviceId: r.deviceId, day, ts: new Date(r.ts).toISOString(),
      threshold: o.threshold, minFacePx: o.minFacePx, modelId: FACE_MODEL_ID,
      ...(o.similarity !== undefined ? { similarity: round4(o.similarity) } : {}),
      ...(o.faceSizePx !== undefined ? { faceSizePx: Math.round(o.faceSizePx) } : {}),
      ...(o.reason ? { reason: o.reason } : {}),
      ...(b.terminalScore !== undefined ? { terminalScore: b.terminalScore } : {}),
      ...(b.photoSha256 ? { photoSha256: b.photoSha256 } : {}),
    };
    return {
      type: 'raise', kind, siteId: r.siteId, subject: { workerId: b.workerId },
      key: `${kind}:${r.siteId}:${b.workerId}:${day}`,
      // A proxy check-in is fraud evidence (warning); a photo the gateway could not re-check is for review (info).
      severity: kind === 'checkin.face_mismatch' ? 'warning' : 'info',
      openedAt: r.ts,
      message: kind === 'checkin.face_mismatch'
        ? `check-in ${r.msgId} of ${b.workerId}: photo does not match the enrolled face (similarity ${round4(o.similarity ?? 0)} < ${o.threshold})`
        : `check-in ${r.msgId} of ${b.workerId}: ${o.reason === 'no_photo' ? 'no photo' : o.reason === 'face_too_small' ? `face smaller than ${o.minFacePx} px` : o.reason === 'undecodable' ? 'photo is not a decodable image' : 'no face in the photo'}`,
      evidence,
    };
  }

  /**
   * Every face check-in at or below the saved seq has its verdict (or is not a face check-in).
   * Written at most once a second (and at stop): after a crash the start-up scan simply begins a
   * little earlier and skips check-ins that already have their verdict.
   */
  private saveProgress(force = false): void {
    const t = performance.now();
    if (!force && t - this.savedAt < 1000) return;
    this.savedAt = t;
    let low = this.maxSeqSeen;
    for (const p of this.pending) low = Math.min(low, p.r.seq - 1);
    for (const seq of this.inFlight.keys()) low = Math.min(low, seq - 1);
    for (const seq of this.failed) low = Math.min(low, seq - 1);
    if (low !== this.saved) {
      this.progress.set('resumeAfter', low);
      this.saved = low;
    }
  }

  private saved: number | undefined;
  private savedAt = -Infinity;
}

const round4 = (x: number) => Math.round(x * 10_000) / 10_000;
