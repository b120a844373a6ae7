import { SiteCalendar } from '../../calendar/siteCalendar.ts';
import { DEFAULT_MIN_FACE_PX, DEFAULT_THRESHOLD, FACE_MODEL_ID, verdictFor } from '../../face/index.ts';
import type { Verdict } from '../../attendance/attendance.ts';
import { readEvidence } from '../../ledger/evidence.ts';
import type { LedgerRecord, StoredRecord } from '../../ledger/types.ts';
import { DEFAULT_TIMEZONE } from '../../registry/registry.ts';
import type { Check, CheckContext, CheckFactory, Prepared } from '../check.ts';
import type { RaiseSignal } from '../types.ts';

export const FACE_VERIFICATION = 'face-verification';

/** Attempts per check-in when the analysis itself fails (a pool worker crashed); then the runner retries the step. */
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

export interface FaceVerification extends Check<FacePrepared> {
  /** Face check-ins of the step in hand waiting for, or in, analysis. */
  readonly backlog: number;
}

/** The step's verdicts, appended to the ledger in `prepare`; their alerts are raised in `onRecords`. */
interface FacePrepared extends Prepared {
  outcomes: { r: StoredRecord; outcome: FaceOutcome }[];
}

/**
 * Re-checks the terminal's decision for `method: face` check-ins (domain.md "Face verification"),
 * off the MQTT hot path: the check-in is already durable and acknowledged when it gets here.
 * Photos go to the shared worker pool (bounded, one worker per core); at most `2 × workers` of a
 * step are handed to it at a time and the rest wait here as ledger records (no photo held in
 * memory), so under overload check-ins wait and are never dropped. Each check-in gets one `verdict`
 * ledger record (dedupe key `verdict:<check-in key>`, stamped with the check-in's event time so
 * reports and the InfluxDB `checkin` point pick it up), and `checkin.face_mismatch` /
 * `checkin.no_face` alerts keyed site + worker + local day (contract §5) carry similarity,
 * threshold and photo hash.
 *
 * Restart is the runner's (issue 10): verdicts are appended before the step's alerts and cursor
 * commit, so a crash in between verifies the step again — the verdict is deduplicated by its key
 * and the alert reconciled — and nothing after the cursor is lost. An analysis that fails (a pool
 * worker died) is tried again; a step that keeps failing is retried by the runner.
 */
export const faceVerificationCheck: CheckFactory = (ctx) => new FaceVerificationCheck(ctx);

class FaceVerificationCheck implements FaceVerification {
  readonly name = FACE_VERIFICATION;
  readonly kinds = ['checkin'] as const;
  /** A step's verdicts reach the other checks when it ends: keep steps short. */
  readonly maxBatch = 64;
  private readonly ctx: CheckContext;
  private readonly maxInFlight: number;
  private inHand = 0;
  private waiting = 0;

  constructor(ctx: CheckContext) {
    this.ctx = ctx;
    this.maxInFlight = 2 * Math.max(1, ctx.faces?.workers ?? 1);
  }

  get backlog(): number {
    return this.inHand;
  }

  async prepare(records: StoredRecord[], replay: boolean): Promise<FacePrepared> {
    const todo = replay ? [] : records.filter((r) => r.body.method === 'face');
    const outcomes: FacePrepared['outcomes'] = [];
    this.inHand = this.waiting = todo.length;
    this.report();
    let next = 0;
    const lane = async () => {
      while (next < todo.length) {
        const r = todo[next++]!;
        this.waiting--;
        this.report();
        const outcome = await this.verifyWithRetries(r);
        await this.ctx.ledger.append(this.verdictRecord(r, outcome));
        outcomes.push({ r, outcome });
        this.inHand--;
        this.report();
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(this.maxInFlight, todo.length) }, lane));
    } finally {
      this.inHand = this.waiting = 0;
      this.report();
    }
    return { outcomes };
  }

  onRecords(_records: StoredRecord[], prepared: FacePrepared | undefined): void {
    for (const { r, outcome } of prepared?.outcomes ?? []) {
      const signal = this.alertFor(r, outcome);
      if (signal) this.ctx.alerts.reconcile(signal.key, signal, { exclusive: false });
      this.ctx.metrics.faceVerdicts.inc({ verdict: outcome.verdict });
      this.ctx.metrics.faceCheckinSeconds.observe(Math.max(0, this.ctx.now() - r.receivedAt) / 1000);
    }
  }

  private report(): void {
    this.ctx.metrics.faceQueueDepth.set(this.waiting + (this.ctx.faces?.poolQueueDepth() ?? 0));
  }

  private async verifyWithRetries(r: StoredRecord): Promise<FaceOutcome> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.verify(r);
      } catch (err) {
        this.ctx.logger.warn({ err, siteId: r.siteId, checkinId: r.msgId, attempt }, 'face analysis failed');
        if (attempt >= MAX_ATTEMPTS) throw err;
      }
    }
  }

  private verdictRecord(r: StoredRecord, outcome: FaceOutcome): LedgerRecord {
    const b = r.body as { workerId: string; direction: string; method: string; photoSha256?: string };
    return {
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

}

const round4 = (x: number) => Math.round(x * 10_000) / 10_000;
