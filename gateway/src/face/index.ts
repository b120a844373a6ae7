/**
 * Face re-verification engine (public API). See models/MODEL_CARD.md for the models, their
 * licences and the threshold calibration.
 *
 *   const pool = await FacePool.create();                 // or: await FaceEngine.load()
 *   const r = await pool.verify(photo, enrolledEmbedding);  // { verdict, similarity, faceSizePx }
 */
export {
  FaceEngine,
  cosine,
  verdictFor,
  enrolmentFor,
  verifyWith,
  enrolWith,
  DEFAULT_MODELS_DIR,
  DEFAULT_THRESHOLD,
  DEFAULT_MIN_FACE_PX,
  DEFAULT_ENROL_MIN_FACE_PX,
  FACE_MODEL_ID,
  DETECTOR_FILE,
  EMBEDDER_FILE,
} from './faceEngine.ts';
export type {
  FaceAnalysis,
  FaceAnalyzer,
  FaceBox,
  FaceEngineOptions,
  RefineOptions,
  VerifyOptions,
  VerifyResult,
  EnrolOptions,
  EnrolResult,
  EnrolError,
} from './faceEngine.ts';
export { FacePool } from './facePool.ts';
export type { FacePoolOptions, FacePoolStats } from './facePool.ts';
export { decodeRgb, UndecodableImageError, DEFAULT_MAX_DECODE_SIDE } from './image.ts';
export type { RgbImage, DecodedImage } from './image.ts';
export { YuNetDetector } from './detector.ts';
export type { Box, Point, DetectedFace, DetectOptions } from './detector.ts';
export { alignFace, estimateSimilarity, ARCFACE_TEMPLATE, ALIGNED_SIZE } from './align.ts';
export { MobileFaceNetEmbedder, EMBEDDING_DIM } from './embedder.ts';
