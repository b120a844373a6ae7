import crypto from 'node:crypto';
import type { Clock } from '../clock/clock.ts';
import { Transactions } from '../state/transactions.ts';
import os from 'node:os';
import type { SqlDb } from '../state/sqlDb.ts';
import type { Logger } from 'pino';
import type { Audit } from '../state/types.ts';
import { SitegateError } from '../errors.ts';
import { DEFAULT_ENROL_MIN_FACE_PX, enrolmentFor, FacePool, type FaceAnalysis, type FaceAnalyzer } from '../face/index.ts';
import { persistEvidence } from '../ledger/evidence.ts';
import type { Metrics } from '../observability/metrics.ts';

/** A worker's enrolled face: the template check-in photos are compared with. */
export interface FaceEnrolment {
  siteId: string;
  workerId: string;
  /** L2-normalised embedding (128-d for the shipped MobileFaceNet). */
  embedding: Float32Array;
  /** The enrolment photo, kept as a content-addressed evidence file. */
  photoSha256: string;
  /** Embedding space (faceEngine.ts FACE_MODEL_ID): templates of another model are not comparable. */
  modelId: string;
  faceSizePx: number;
  enrolledAt: number;
}

/** What the gateway needs of a face analyser: a FacePool in production, anything with `analyze` in tests. */
export interface FaceAnalyzerHandle extends FaceAnalyzer {
  stats?(): { queueDepth: number };
  close?(): Promise<void>;
}

export interface FaceRegistryOptions {
  db: SqlDb;
  evidenceDir: string;
  audit: Audit;
  metrics: Metrics;
  logger: Logger;
  now: Clock;
  modelsDir?: string;
  /** Pool threads; default: one per core (models/NOTES.md: one ORT thread per worker). */
  workers?: number;
  /** Replaces the worker pool (tests). */
  analyzer?: FaceAnalyzerHandle;
}


const toBlob = (e: Float32Array) => Buffer.from(e.buffer, e.byteOffset, e.byteLength);
const fromBlob = (b: Buffer) => new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));

/**
 * Enrolled faces (state.db table `faces`) and the one face-analysis worker pool that enrolment and
 * check-in verification share. The pool starts on first use, so a gateway with no face traffic
 * never loads the models; it is bounded to the cores and queues callers, never drops them.
 */
export class FaceRegistry {
  private readonly o: FaceRegistryOptions;
  private pool: Promise<FaceAnalyzerHandle> | null = null;
  private readonly cache = new Map<string, FaceEnrolment | null>();
  private closed = false;
  private started: FaceAnalyzerHandle | undefined;

  constructor(o: FaceRegistryOptions) {
    this.o = o;
  }

  /** The worker pool, started on first call (a failed start is retried on the next call). */
  analyzer(): Promise<FaceAnalyzerHandle> {
    if (this.closed) return Promise.reject(new Error('face registry is closed'));
    if (!this.pool) {
      const { metrics, logger } = this.o;
      this.pool = this.o.analyzer ? Promise.resolve(this.o.analyzer) : FacePool.create({
        ...(this.o.modelsDir ? { modelsDir: this.o.modelsDir } : {}),
        workers: this.workers,
        onLatency: (ms, d) => metrics.faceAnalysisSeconds.observe({ outcome: d.ok ? 'ok' : 'error' }, ms / 1000),
      });
      this.pool.then(
        (p) => { this.started = p; logger.info({ modelsDir: this.o.modelsDir ?? 'models/ (default)' }, 'face analysis pool ready'); },
        (err) => { logger.error({ err }, 'face analysis pool failed to start'); this.pool = null; },
      );
    }
    return this.pool;
  }

  /** Finds, aligns and embeds the largest face of a photo on the pool (waits for a free worker). */
  async analyze(photo: Buffer): Promise<FaceAnalysis> {
    return (await this.analyzer()).analyze(photo);
  }

  /** Pool threads (one per core unless configured). */
  get workers(): number {
    return this.o.workers ?? os.availableParallelism();
  }

  /** Photos waiting for a pool worker (0 while the pool has not started). */
  poolQueueDepth(): number {
    return this.started?.stats?.().queueDepth ?? 0;
  }

  enrolled(siteId: string, workerId: string): FaceEnrolment | undefined {
    const k = `${siteId}/${workerId}`;
    let e = this.cache.get(k);
    if (e === undefined) {
      const r = this.o.db.prepare('SELECT * FROM faces WHERE site_id = ? AND worker_id = ?').get(siteId, workerId) as Record<string, unknown> | undefined;
      e = r ? {
        siteId, workerId, embedding: fromBlob(r.embedding as Buffer), photoSha256: r.photo_sha256 as string,
        modelId: r.model_id as string, faceSizePx: r.face_px as number, enrolledAt: r.enrolled_at as number,
      } : null;
      this.cache.set(k, e);
    }
    return e ?? undefined;
  }

  /**
   * Enrols a worker's face (contract §2 `PUT …/workers/{workerId}/face`): exactly one face of at
   * least 60 px (domain.md "Face verification"), aligned and embedded. The photo becomes an
   * evidence file (never overwritten), the template replaces the previous one, and the audit trail
   * records who enrolled which photo. Refusals are catalogue errors (image_undecodable, no_face,
   * multiple_faces, face_too_small).
   */
  async enrol(siteId: string, workerId: string, photo: Buffer, by: string): Promise<{ enrolment: FaceEnrolment; created: boolean }> {
    const result = enrolmentFor(await this.analyze(photo), { minFacePx: DEFAULT_ENROL_MIN_FACE_PX });
    if (!result.ok) {
      throw new SitegateError(result.reason, result.message, {
        ...(result.faces !== undefined ? { faces: result.faces } : {}), ...(result.faceSizePx !== undefined ? { faceSizePx: result.faceSizePx } : {}),
      });
    }
    const photoSha256 = crypto.createHash('sha256').update(photo).digest('hex');
    persistEvidence(this.o.evidenceDir, [{ sha256: photoSha256, data: photo }]);
    const previous = this.enrolled(siteId, workerId);
    const enrolment: FaceEnrolment = {
      siteId, workerId, embedding: result.embedding, photoSha256, modelId: result.modelId,
      faceSizePx: Math.round(result.face.sizePx), enrolledAt: this.o.now(),
    };
    Transactions.of(this.o.db).run(() => {
      this.o.db.prepare(`INSERT INTO faces (site_id, worker_id, embedding, photo_sha256, model_id, face_px, enrolled_at) VALUES (?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT(site_id, worker_id) DO UPDATE SET embedding = excluded.embedding, photo_sha256 = excluded.photo_sha256,
          model_id = excluded.model_id, face_px = excluded.face_px, enrolled_at = excluded.enrolled_at`)
        .run(siteId, workerId, toBlob(enrolment.embedding), photoSha256, enrolment.modelId, enrolment.faceSizePx, enrolment.enrolledAt);
      this.o.audit.append('face.enrolled', `worker:${siteId}/${workerId}`, {
        siteId, workerId, photoSha256, modelId: enrolment.modelId, faceSizePx: enrolment.faceSizePx, by,
        ...(previous ? { replaces: previous.photoSha256 } : {}),
      }, enrolment.enrolledAt);
    });
    this.cache.set(`${siteId}/${workerId}`, enrolment);
    return { enrolment, created: !previous };
  }

  /** Stops the pool (in-flight analyses finish; queued ones are refused). */
  async close(): Promise<void> {
    this.closed = true;
    const pool = this.pool;
    this.pool = null;
    this.started = undefined;
    if (!pool) return;
    try {
      await (await pool).close?.();
    } catch {
      /* the pool never started: nothing to close */
    }
  }
}
