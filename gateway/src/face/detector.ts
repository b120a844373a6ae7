/**
 * YuNet face detector (face_detection_yunet_2023mar.onnx, fixed 1×3×640×640).
 *
 * Pre/post-processing follows models/NOTES.md §1 exactly (itself matching OpenCV's
 * FaceDetectorYN): letterbox the image to fit 640 (scale s = 640 / max(W, H), libvips linear
 * resize, also upscaling small images, image at the top-left, zero padding right/bottom), feed **BGR** planes with raw 0..255 values, decode the
 * three strides, greedy NMS, and divide every coordinate by s.
 *
 * Landmark order: subject's right eye, left eye, nose tip, right mouth corner, left mouth corner —
 * the ArcFace template order, so align.ts needs no reordering.
 */
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import type { RgbImage } from './image.ts';

export type Box = [x: number, y: number, w: number, h: number];
export type Point = [x: number, y: number];

export interface DetectedFace {
  /** x, y, w, h in the coordinates of the image passed to detect() */
  box: Box;
  score: number;
  /** 5 points, ArcFace template order */
  landmarks: Point[];
}

export interface DetectOptions {
  /** default 0.6 (opencv_zoo yunet.py default; 0.9 loses a real fixture face) */
  scoreThreshold?: number;
  /** IoU threshold for greedy NMS, default 0.3 */
  nmsThreshold?: number;
  /** candidates kept before NMS, default 5000 */
  topK?: number;
}

export const YUNET_INPUT = 640;
const STRIDES = [8, 16, 32] as const;

/**
 * A letterbox ready for the model: either already-resized packed RGB (`rgb`), or — for upscaling,
 * which libvips does slowly — the source image and region, resized by upscaleToBgrPlanar() straight
 * into the input tensor.
 */
export type PreparedInput = ({ rgb: Uint8Array } | { src: RgbImage; region: Region }) & Letterbox;

export interface Letterbox {
  /** scale applied to the image: letterbox coordinate = (image coordinate − offset) × scale */
  scale: number;
  width: number;
  height: number;
  /** top-left of the letterboxed region in the image (0, 0 unless a region was given) */
  offsetX: number;
  offsetY: number;
}

/** Integer pixel rectangle inside an image. */
export interface Region {
  left: number;
  top: number;
  width: number;
  height: number;
}

/**
 * Letterbox step 1: resize the image (or `region` of it) so that its longer side is `size`,
 * keeping the aspect ratio (scale s = size / max(W, H), output round(W·s) × round(H·s)), with
 * libvips' **linear** kernel semantics.
 *
 * This is what the reference pipeline that produced test/fixtures/faces/expected.json did (sharp
 * 0.35 `resize(w, h, { kernel: 'linear' })`): it reproduces the reference landmarks to ≤0.05 px
 * and the reference cosine matrix to 0.000. An OpenCV-style INTER_LINEAR resize (src = (dst + ½)/s
 * − ½) was tried first; it moved landmarks by up to 1.6 px and single cosines by up to 0.07, which
 * shows how sensitive the embeddings are to the detector input — keep these semantics.
 *
 * Downscaling goes through libvips (anti-aliased reduce, off the JS thread). Upscaling — every
 * photo under 640 px, and every refinement crop — is left to upscaleToBgrPlanar(), which emulates
 * libvips' linear upsampling in JS at about a third of the cost (`upscale: 'libvips'` forces sharp).
 */
export async function letterboxResize(
  img: RgbImage,
  size = YUNET_INPUT,
  region?: Region,
  upscale: 'js' | 'libvips' = 'js',
): Promise<PreparedInput> {
  const { data, width: W, height: H } = img;
  const r = region ?? { left: 0, top: 0, width: W, height: H };
  const whole = r.left === 0 && r.top === 0 && r.width === W && r.height === H;
  const scale = size / Math.max(r.width, r.height);
  const width = Math.min(size, Math.max(1, Math.round(r.width * scale)));
  const height = Math.min(size, Math.max(1, Math.round(r.height * scale)));
  const base = { scale, width, height, offsetX: r.left, offsetY: r.top };
  if (whole && width === W && height === H) return { rgb: data, ...base };
  if (upscale === 'js' && width >= r.width && height >= r.height) return { src: img, region: r, ...base };
  const input = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  let pipeline = sharp(input, { raw: { width: W, height: H, channels: 3 } });
  if (!whole) pipeline = pipeline.extract(r);
  const rgb = await pipeline.resize(width, height, { kernel: 'linear', fit: 'fill' }).raw().toBuffer();
  return { rgb, ...base };
}

function upscaleTaps(start: number, n: number, outN: number): { i0: Int32Array; i1: Int32Array; w: Float32Array } {
  const s = n / outN;
  const i0 = new Int32Array(outN);
  const i1 = new Int32Array(outN);
  const w = new Float32Array(outN);
  for (let x = 0; x < outN; x++) {
    let f = x * s - 0.5;
    if (f < 0) f = 0;
    if (f > n - 1) f = n - 1;
    const a = Math.floor(f);
    i0[x] = start + a;
    i1[x] = start + Math.min(a + 1, n - 1);
    w[x] = f - a;
  }
  return { i0, i1, w };
}

/**
 * Upscales `region` of `img` to outW×outH into the top-left of a planar **BGR** float32 size×size
 * tensor (padding zeroed), reproducing sharp/libvips `resize(…, { kernel: 'linear' })` when
 * enlarging: sample position src = dst·(n/outN) − ½ clamped to the region, bilinear, rounded to
 * 8 bits. Measured against sharp 0.35.5 / libvips 8.18.7 on the fixtures: every value within 1
 * grey level, 98.5–99.8 % identical (libvips uses fixed-point weights). face.test.ts pins this.
 */
export function upscaleToBgrPlanar(img: RgbImage, region: Region, outW: number, outH: number, out: Float32Array, size = YUNET_INPUT): void {
  const { data, width: W } = img;
  const plane = size * size;
  if (outW < size || outH < size) out.fill(0);
  const tx = upscaleTaps(region.left, region.width, outW);
  const ty = upscaleTaps(region.top, region.height, outH);
  const rowBytes = W * 3;
  // Bilinear is separable: interpolate source rows horizontally once (cached, since consecutive
  // output rows reuse the same pair of source rows), then blend the two rows vertically.
  let rowA = new Float32Array(outW * 3), rowB = new Float32Array(outW * 3);
  let rowAIdx = -1, rowBIdx = -1;
  const hpass = (srcRow: number, dst: Float32Array): void => {
    const base = srcRow * rowBytes;
    for (let x = 0, q = 0; x < outW; x++, q += 3) {
      const p0 = base + tx.i0[x] * 3;
      const p1 = base + tx.i1[x] * 3;
      const w = tx.w[x];
      const w0 = 1 - w;
      dst[q] = data[p0] * w0 + data[p1] * w;
      dst[q + 1] = data[p0 + 1] * w0 + data[p1 + 1] * w;
      dst[q + 2] = data[p0 + 2] * w0 + data[p1 + 2] * w;
    }
  };
  const gPlane = plane, rPlane = 2 * plane;
  for (let y = 0; y < outH; y++) {
    const s0 = ty.i0[y], s1 = ty.i1[y];
    if (rowAIdx !== s0) {
      if (rowBIdx === s0) {
        const t = rowA; rowA = rowB; rowB = t; rowAIdx = s0; rowBIdx = -1;
      } else {
        hpass(s0, rowA); rowAIdx = s0;
      }
    }
    if (rowBIdx !== s1) {
      hpass(s1, rowB); rowBIdx = s1;
    }
    const wy = ty.w[y];
    const wy0 = 1 - wy;
    const rowOut = y * size;
    for (let x = 0, q = 0; x < outW; x++, q += 3) {
      const o = rowOut + x;
      // R → plane 2, G → plane 1, B → plane 0; values are ≥ 0, so (v + 0.5) | 0 rounds half up
      out[rPlane + o] = (rowA[q] * wy0 + rowB[q] * wy + 0.5) | 0;
      out[gPlane + o] = (rowA[q + 1] * wy0 + rowB[q + 1] * wy + 0.5) | 0;
      out[o] = (rowA[q + 2] * wy0 + rowB[q + 2] * wy + 0.5) | 0;
    }
  }
}

/**
 * Letterbox step 2: packed RGB (width×height) → top-left of a planar **BGR** float32 size×size
 * tensor with raw 0..255 values; the padding (right/bottom) is zeroed.
 */
export function packBgrPlanar(rgb: Uint8Array, width: number, height: number, out: Float32Array, size = YUNET_INPUT): void {
  const plane = size * size;
  if (width < size || height < size) out.fill(0);
  const bOff = 0, gOff = plane, rOff = 2 * plane;
  let p = 0;
  for (let y = 0; y < height; y++) {
    let o = y * size;
    for (let x = 0; x < width; x++, o++, p += 3) {
      out[rOff + o] = rgb[p];
      out[gOff + o] = rgb[p + 1];
      out[bOff + o] = rgb[p + 2];
    }
  }
}

function clamp01(v: number): number {
  return v < 0 ? 0 : v > 1 ? 1 : v;
}

export function iou(a: Box, b: Box): number {
  const x1 = Math.max(a[0], b[0]);
  const y1 = Math.max(a[1], b[1]);
  const x2 = Math.min(a[0] + a[2], b[0] + b[2]);
  const y2 = Math.min(a[1] + a[3], b[1] + b[3]);
  const inter = Math.max(0, x2 - x1) * Math.max(0, y2 - y1);
  const union = a[2] * a[3] + b[2] * b[3] - inter;
  return union > 0 ? inter / union : 0;
}

/** Decodes raw YuNet outputs (letterbox coordinates) and applies greedy NMS. Exported for tests. */
export function decodeYuNet(
  outputs: Record<string, { data: unknown }>,
  padW: number,
  padH: number,
  opts: Required<DetectOptions>,
): DetectedFace[] {
  const cands: DetectedFace[] = [];
  for (const s of STRIDES) {
    const cls = outputs[`cls_${s}`].data as Float32Array;
    const obj = outputs[`obj_${s}`].data as Float32Array;
    const bbox = outputs[`bbox_${s}`].data as Float32Array;
    const kps = outputs[`kps_${s}`].data as Float32Array;
    const cols = padW / s;
    const rows = padH / s;
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        const i = r * cols + c;
        // cls/obj are already sigmoid'ed inside the graph.
        const score = Math.sqrt(clamp01(cls[i]) * clamp01(obj[i]));
        if (score < opts.scoreThreshold) continue;
        const cx = (c + bbox[4 * i]) * s;
        const cy = (r + bbox[4 * i + 1]) * s;
        const w = Math.exp(bbox[4 * i + 2]) * s;
        const h = Math.exp(bbox[4 * i + 3]) * s;
        const landmarks: Point[] = [];
        for (let n = 0; n < 5; n++) {
          landmarks.push([(kps[10 * i + 2 * n] + c) * s, (kps[10 * i + 2 * n + 1] + r) * s]);
        }
        cands.push({ box: [cx - w / 2, cy - h / 2, w, h], score, landmarks });
      }
    }
  }
  cands.sort((a, b) => b.score - a.score);
  if (cands.length > opts.topK) cands.length = opts.topK;
  const kept: DetectedFace[] = [];
  for (const cand of cands) {
    if (kept.every((k) => iou(k.box, cand.box) <= opts.nmsThreshold)) kept.push(cand);
  }
  return kept;
}

export class YuNetDetector {
  private readonly input: Float32Array;
  private readonly inputTensor: ort.Tensor;
  private readonly inputName: string;

  private constructor(
    private readonly session: ort.InferenceSession,
    /** square model input side: 640 for the fixed model; any multiple of 32 for the dynamic one */
    readonly inputSize: number,
  ) {
    this.input = new Float32Array(3 * inputSize * inputSize);
    this.inputTensor = new ort.Tensor('float32', this.input, [1, 3, inputSize, inputSize]);
    this.inputName = session.inputNames[0];
  }

  /**
   * `inputSize` other than 640 needs face_detection_yunet_s_dynamic.onnx (same weights, dynamic
   * input) and must be a multiple of 32.
   */
  static async create(modelPath: string, sessionOptions: ort.InferenceSession.SessionOptions, inputSize = YUNET_INPUT): Promise<YuNetDetector> {
    if (inputSize % 32 !== 0) throw new Error(`YuNet input size must be a multiple of 32, got ${inputSize}`);
    const session = await ort.InferenceSession.create(modelPath, sessionOptions);
    return new YuNetDetector(session, inputSize);
  }

  /**
   * Lock-free part of detection (libvips resize on the libuv pool); pass the result to
   * detectPrepared. With `region`, only that part of the image is letterboxed (used to re-detect a
   * small face at a better scale).
   */
  prepare(img: RgbImage, region?: Region): Promise<PreparedInput> {
    return letterboxResize(img, this.inputSize, region);
  }

  /**
   * Runs the model on a prepared letterbox; coordinates are returned in the original `img` pixels.
   * Not re-entrant: the input tensor is reused, so callers must not overlap calls on one instance
   * (FaceEngine serialises them).
   */
  async detectPrepared(lb: PreparedInput, opts: DetectOptions = {}): Promise<DetectedFace[]> {
    const o: Required<DetectOptions> = {
      scoreThreshold: opts.scoreThreshold ?? 0.6,
      nmsThreshold: opts.nmsThreshold ?? 0.3,
      topK: opts.topK ?? 5000,
    };
    if ('rgb' in lb) packBgrPlanar(lb.rgb, lb.width, lb.height, this.input, this.inputSize);
    else upscaleToBgrPlanar(lb.src, lb.region, lb.width, lb.height, this.input, this.inputSize);
    const out = await this.session.run({ [this.inputName]: this.inputTensor });
    const faces = decodeYuNet(out, this.inputSize, this.inputSize, o);
    for (const t of Object.values(out)) t.dispose?.();
    const inv = 1 / lb.scale;
    const ox = lb.offsetX, oy = lb.offsetY;
    for (const f of faces) {
      f.box = [f.box[0] * inv + ox, f.box[1] * inv + oy, f.box[2] * inv, f.box[3] * inv];
      f.landmarks = f.landmarks.map(([x, y]) => [x * inv + ox, y * inv + oy] as Point);
    }
    return faces;
  }

  /** prepare + detectPrepared (same re-entrancy caveat). */
  async detect(img: RgbImage, opts: DetectOptions = {}): Promise<DetectedFace[]> {
    return this.detectPrepared(await this.prepare(img), opts);
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
