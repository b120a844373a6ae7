/**
 * Face re-verification engine: decode → YuNet detect → ArcFace 5-point align → MobileFaceNet
 * embed → cosine. Everything runs locally from the ONNX files in models/; nothing is downloaded.
 *
 * One FaceEngine owns one ONNX session per model and serialises inference on them (tensors are
 * reused); decoding runs outside that lock on sharp's thread pool. For parallelism across cores
 * use FacePool (facePool.ts), which runs one engine per worker thread.
 *
 * Verdict rules (shared/domain.md "Face verification"):
 *  - photo undecodable, no face, or largest face's box has a larger side < minFacePx (48) → no_face
 *  - cosine(largest face, enrolled) < threshold (0.40 for the shipped model) → face_mismatch
 *  - otherwise verified
 * Enrolment is stricter: exactly one face of at least 60 px.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as ort from 'onnxruntime-node';
import { decodeRgb, DEFAULT_MAX_DECODE_SIDE, UndecodableImageError, type RgbImage } from './image.ts';
import { YuNetDetector, YUNET_INPUT, iou, type Box, type DetectedFace, type DetectOptions, type Point } from './detector.ts';
import { alignFace, ALIGNED_SIZE } from './align.ts';
import { MobileFaceNetEmbedder } from './embedder.ts';

/** models/ at the repository root (gateway/src/face → ../../../models). */
export const DEFAULT_MODELS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../models');

export const DETECTOR_FILE = 'face_detection_yunet_2023mar.onnx';
export const EMBEDDER_FILE = 'face_recognition_mobilefacenet_foamliu.onnx';
/** Same YuNet weights with a dynamic input; used only for a refinement pass smaller than 640. */
export const DETECTOR_DYNAMIC_FILE = 'face_detection_yunet_s_dynamic.onnx';

/**
 * Identifies the embedding space. Embeddings from another model or another preprocessing are not
 * comparable: store this with every enrolled template and re-enrol when it changes.
 */
export const FACE_MODEL_ID = 'mobilefacenet-foamliu-b7120c09/yunet-2023mar-640/arcface112-ls/imagenet-rgb/v1';

/** Default accept threshold (cosine) for the shipped MobileFaceNet; see models/MODEL_CARD.md. */
export const DEFAULT_THRESHOLD = 0.4;
/** Check-in photos: smallest usable face (larger side of the detected box, source pixels). */
export const DEFAULT_MIN_FACE_PX = 48;
/** Enrolment photos need a bigger face. */
export const DEFAULT_ENROL_MIN_FACE_PX = 60;

export interface FaceBox {
  /** x, y, w, h in source-image pixels (after EXIF rotation) */
  box: Box;
  score: number;
  /** larger side of the box, source-image pixels */
  sizePx: number;
  /** 5 landmarks (subject's right eye, left eye, nose, right/left mouth corner), source pixels */
  landmarks: Point[];
}

export type FaceAnalysis =
  | {
      ok: true;
      /** the largest face, which was embedded */
      face: FaceBox;
      /** number of faces detected (score ≥ threshold, after NMS) */
      faces: number;
      /** every detected face, largest first (detections[0] is `face`) */
      detections: FaceBox[];
      /** L2-normalised, 128-d */
      embedding: Float32Array;
    }
  | { ok: false; reason: 'undecodable' | 'no_face' };

/** Anything that can analyse a photo: a FaceEngine or a FacePool. */
export interface FaceAnalyzer {
  analyze(jpeg: Buffer): Promise<FaceAnalysis>;
}

export interface FaceEngineOptions {
  /** intra-op threads per ONNX session; default: ORT's default (all cores). Pool workers use 1. */
  threads?: number;
  /** longer side of the decoded image; larger photos are shrunk at decode (default 1280) */
  maxDecodeSide?: number;
  detect?: DetectOptions;
  /**
   * Second detection pass for faces that are small in the 640 detector input (wide terminal frames,
   * distant faces): re-detect on a square crop around the face so that the landmarks, and so the
   * alignment, are measured with the face at ~200 px in the detector input (NOTES.md: keep faces
   * at about 100–300 px there). Measured on ~120 genuine check-ins synthesised from the fixtures
   * (faces 128–512 px pasted into 640×480 … 1920×1080 frames): without it 16–24 fell below 0.40
   * (mean 0.53); with it 0–2 (mean 0.60, the hardest pair sitting at ~0.40); impostors unchanged
   * (max ≈ 0.30–0.33). See models/MODEL_CARD.md.
   *
   * Defaults: refine when the face is < 150 px in the first-pass input; crop 2× the face box;
   * run the crop through the dynamic YuNet (same weights) at 416×416, which scored the same as a
   * 640 crop (mean genuine 0.605 vs 0.604) for a third of the cost. The fixture photos are never
   * refined (their faces are ≥ 190 px in the first-pass input), so they keep the reference results.
   * `false` disables it.
   */
  refine?: false | RefineOptions;
}

export interface RefineOptions {
  /** refine when the face's larger side in the detector input is below this (px of 640); default 150 */
  belowPx?: number;
  /** side of the square crop as a multiple of the face box's larger side; default 2 */
  cropFactor?: number;
  /** detector input side for the refinement pass (multiple of 32); ≠ 640 uses the dynamic model; default 416 */
  inputSize?: number;
}

export interface VerifyOptions {
  threshold?: number;
  minFacePx?: number;
}

export interface VerifyResult {
  verdict: 'verified' | 'face_mismatch' | 'no_face';
  similarity?: number;
  faceSizePx?: number;
  /** why a no_face verdict was given */
  reason?: 'undecodable' | 'no_face' | 'face_too_small';
}

export type EnrolError = 'image_undecodable' | 'no_face' | 'multiple_faces' | 'face_too_small';

export type EnrolResult =
  | { ok: true; embedding: Float32Array; face: FaceBox; modelId: string }
  | { ok: false; reason: EnrolError; message: string; faces?: number; faceSizePx?: number };

export interface EnrolOptions {
  minFacePx?: number;
}

/** Cosine similarity; for L2-normalised embeddings this is the dot product. */
export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`embedding length mismatch: ${a.length} vs ${b.length}`);
  let dot = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  const d = Math.sqrt(na * nb);
  return d > 0 ? dot / d : 0;
}

/** Applies the check-in verdict rules to an analysis (pure; used by FaceEngine and FacePool). */
export function verdictFor(analysis: FaceAnalysis, enrolled: ArrayLike<number>, opts: VerifyOptions = {}): VerifyResult {
  const threshold = opts.threshold ?? DEFAULT_THRESHOLD;
  const minFacePx = opts.minFacePx ?? DEFAULT_MIN_FACE_PX;
  if (!analysis.ok) return { verdict: 'no_face', reason: analysis.reason };
  const faceSizePx = analysis.face.sizePx;
  if (faceSizePx < minFacePx) return { verdict: 'no_face', reason: 'face_too_small', faceSizePx };
  const similarity = cosine(analysis.embedding, enrolled);
  return { verdict: similarity >= threshold ? 'verified' : 'face_mismatch', similarity, faceSizePx };
}

/** Applies the enrolment rules to an analysis (pure). */
export function enrolmentFor(analysis: FaceAnalysis, opts: EnrolOptions = {}): EnrolResult {
  const minFacePx = opts.minFacePx ?? DEFAULT_ENROL_MIN_FACE_PX;
  if (!analysis.ok) {
    return analysis.reason === 'undecodable'
      ? { ok: false, reason: 'image_undecodable', message: 'the photo is not a decodable image' }
      : { ok: false, reason: 'no_face', message: 'no face found in the photo', faces: 0 };
  }
  const big = analysis.detections.filter((d) => d.sizePx >= minFacePx).length;
  if (big > 1) {
    return { ok: false, reason: 'multiple_faces', message: `${big} faces of at least ${minFacePx} px; enrolment needs exactly one`, faces: big };
  }
  if (analysis.face.sizePx < minFacePx) {
    const faceSizePx = Math.round(analysis.face.sizePx);
    return { ok: false, reason: 'face_too_small', message: `face is ${faceSizePx} px, enrolment needs at least ${minFacePx} px`, faces: analysis.faces, faceSizePx };
  }
  return { ok: true, embedding: analysis.embedding, face: analysis.face, modelId: FACE_MODEL_ID };
}

export async function verifyWith(analyzer: FaceAnalyzer, photo: Buffer, enrolled: ArrayLike<number>, opts?: VerifyOptions): Promise<VerifyResult> {
  return verdictFor(await analyzer.analyze(photo), enrolled, opts);
}

export async function enrolWith(analyzer: FaceAnalyzer, photo: Buffer, opts?: EnrolOptions): Promise<EnrolResult> {
  return enrolmentFor(await analyzer.analyze(photo), opts);
}

const DEFAULT_REFINE: Required<RefineOptions> = { belowPx: 150, cropFactor: 2, inputSize: 416 };

function sessionOptions(threads?: number): ort.InferenceSession.SessionOptions {
  const o: ort.InferenceSession.SessionOptions = {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    interOpNumThreads: 1,
    // ORT's intra-op threads spin-wait after each run by default. Measured on 2 vCPUs (YuNet 640,
    // one run every ~10 ms): 18.8 ms of CPU per 6.7 ms run with spinning, 8.8 ms per 4.9 ms run
    // without. The gateway has other work for those cores, so do not spin.
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  };
  if (threads !== undefined) o.intraOpNumThreads = threads;
  return o;
}

function toFaceBox(f: DetectedFace, k: number): FaceBox {
  const box: Box = [f.box[0] * k, f.box[1] * k, f.box[2] * k, f.box[3] * k];
  const landmarks = f.landmarks.map(([x, y]) => [x * k, y * k] as Point);
  return { box, score: f.score, sizePx: Math.max(box[2], box[3]), landmarks };
}

export class FaceEngine implements FaceAnalyzer {
  private lock: Promise<unknown> = Promise.resolve();
  private readonly aligned = new Uint8Array(ALIGNED_SIZE * ALIGNED_SIZE * 3);

  private constructor(
    private readonly detector: YuNetDetector,
    /** detector for the refinement pass (the same instance unless a smaller input is configured) */
    private readonly refiner: YuNetDetector,
    private readonly embedder: MobileFaceNetEmbedder,
    private readonly opts: FaceEngineOptions,
  ) {}

  static async load(modelsDir: string = DEFAULT_MODELS_DIR, opts: FaceEngineOptions = {}): Promise<FaceEngine> {
    const so = sessionOptions(opts.threads);
    const refineSize = opts.refine === false ? YUNET_INPUT : (opts.refine?.inputSize ?? DEFAULT_REFINE.inputSize);
    // allSettled, not all: a failed load must not return while another session is still being
    // created natively. The face worker reports the failure and is terminated; a native call that
    // completes in a terminating thread aborts the whole process (node-addon-api: "terminate called
    // after throwing an instance of 'Napi::Error'", seen in the suite as a vitest fork that died).
    const [detector, embedder, refiner] = await Promise.allSettled([
      YuNetDetector.create(path.join(modelsDir, DETECTOR_FILE), so),
      MobileFaceNetEmbedder.create(path.join(modelsDir, EMBEDDER_FILE), so),
      refineSize === YUNET_INPUT ? Promise.resolve(null) : YuNetDetector.create(path.join(modelsDir, DETECTOR_DYNAMIC_FILE), so, refineSize),
    ]);
    for (const r of [detector, embedder, refiner]) if (r.status === 'rejected') throw r.reason;
    const ok = <T>(r: PromiseSettledResult<T>) => (r as PromiseFulfilledResult<T>).value;
    return new FaceEngine(ok(detector), ok(refiner) ?? ok(detector), ok(embedder), opts);
  }

  /** Runs `fn` after every previously queued inference has finished. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn, fn);
    this.lock = run.catch(() => undefined);
    return run;
  }

  /** Finds the largest face and embeds it. Never throws for bad input; only for engine faults. */
  async analyze(jpeg: Buffer): Promise<FaceAnalysis> {
    let decoded;
    try {
      decoded = await decodeRgb(jpeg, this.opts.maxDecodeSide ?? DEFAULT_MAX_DECODE_SIDE);
    } catch (err) {
      if (err instanceof UndecodableImageError) return { ok: false, reason: 'undecodable' };
      throw err;
    }
    const { image, toOrig } = decoded;
    const prepared = await this.detector.prepare(image);
    return this.serial(async () => {
      const found = await this.detector.detectPrepared(prepared, this.opts.detect);
      if (found.length === 0) return { ok: false, reason: 'no_face' } as const;
      const ranked = found
        .map((f) => ({ f, fb: toFaceBox(f, toOrig) }))
        .sort((a, b) => b.fb.sizePx - a.fb.sizePx || b.fb.score - a.fb.score);
      const top = ranked[0];
      const refined = await this.refine(image, top.f, prepared.scale);
      if (refined) {
        top.f = refined;
        top.fb = toFaceBox(refined, toOrig);
      }
      alignFace(image, top.f.landmarks, this.aligned);
      const embedding = await this.embedder.embed(this.aligned);
      return { ok: true, face: top.fb, faces: found.length, detections: ranked.map((r) => r.fb), embedding } as const;
    });
  }

  /**
   * Re-detects `face` on a square crop around it when it is small in the first-pass detector
   * input, and returns the matching detection (or null: keep the first pass). Must run inside
   * serial().
   */
  private async refine(image: RgbImage, face: DetectedFace, firstScale: number): Promise<DetectedFace | null> {
    if (this.opts.refine === false) return null;
    const belowPx = this.opts.refine?.belowPx ?? DEFAULT_REFINE.belowPx;
    const cropFactor = this.opts.refine?.cropFactor ?? DEFAULT_REFINE.cropFactor;
    const side = Math.max(face.box[2], face.box[3]);
    if (side * firstScale >= belowPx) return null;
    const cx = face.box[0] + face.box[2] / 2;
    const cy = face.box[1] + face.box[3] / 2;
    const half = (side * cropFactor) / 2;
    const left = Math.max(0, Math.floor(cx - half));
    const top = Math.max(0, Math.floor(cy - half));
    const right = Math.min(image.width, Math.ceil(cx + half));
    const bottom = Math.min(image.height, Math.ceil(cy + half));
    const region = { left, top, width: right - left, height: bottom - top };
    if (region.width < 8 || region.height < 8) return null;
    // Only worth it if the crop actually enlarges the face in the detector input.
    if (this.refiner.inputSize / Math.max(region.width, region.height) <= firstScale * 1.05) return null;
    const again = await this.refiner.detectPrepared(await this.refiner.prepare(image, region), this.opts.detect);
    let best: DetectedFace | null = null;
    let bestIou = 0.3;
    for (const f of again) {
      const o = iou(f.box, face.box);
      if (o > bestIou) {
        best = f;
        bestIou = o;
      }
    }
    return best;
  }

  verify(photo: Buffer, enrolledEmbedding: ArrayLike<number>, opts?: VerifyOptions): Promise<VerifyResult> {
    return verifyWith(this, photo, enrolledEmbedding, opts);
  }

  enrol(photo: Buffer, opts?: EnrolOptions): Promise<EnrolResult> {
    return enrolWith(this, photo, opts);
  }

  async close(): Promise<void> {
    await this.serial(async () => {
      const sessions = [this.detector.release(), this.embedder.release()];
      if (this.refiner !== this.detector) sessions.push(this.refiner.release());
      await Promise.all(sessions);
    });
  }
}
