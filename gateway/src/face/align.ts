/**
 * 5-point face alignment to the standard ArcFace 112×112 template (models/NOTES.md §2).
 *
 * A least-squares similarity transform (rotation + uniform scale + translation, no reflection) is
 * estimated from the detected landmarks to the template — the closed form equals
 * cv2.estimateAffinePartial2D — and the face is warped by inverse mapping with bilinear
 * interpolation and a constant-0 border, like cv2.warpAffine's defaults.
 *
 * Do NOT swap in foamliu's padded template (inner_padding_factor 0.25): MobileFaceNet was trained
 * on standard ArcFace crops and the padded template makes genuine and impostor pairs overlap.
 */
import type { RgbImage } from './image.ts';
import type { Point } from './detector.ts';

export const ALIGNED_SIZE = 112;

/** ArcFace template, same values as OpenCV's FaceRecognizerSF::alignCrop. */
export const ARCFACE_TEMPLATE: readonly Point[] = [
  [38.2946, 51.6963],
  [73.5318, 51.5014],
  [56.0252, 71.7366],
  [41.5493, 92.3655],
  [70.7299, 92.2041],
];

/** 2×3 affine matrix [[a, −b, tx], [b, a, ty]] flattened as [a, −b, tx, b, a, ty]. */
export type Affine = [number, number, number, number, number, number];

/** Least-squares similarity transform mapping `src` points onto `dst` points. */
export function estimateSimilarity(src: readonly Point[], dst: readonly Point[] = ARCFACE_TEMPLATE): Affine {
  const n = src.length;
  if (n !== dst.length || n < 2) throw new Error('estimateSimilarity needs matching point sets (≥ 2)');
  let mx = 0, my = 0, mu = 0, mv = 0;
  for (let i = 0; i < n; i++) {
    mx += src[i][0]; my += src[i][1];
    mu += dst[i][0]; mv += dst[i][1];
  }
  mx /= n; my /= n; mu /= n; mv /= n;
  let num1 = 0, num2 = 0, den = 0;
  for (let i = 0; i < n; i++) {
    const x = src[i][0] - mx, y = src[i][1] - my;
    const u = dst[i][0] - mu, v = dst[i][1] - mv;
    num1 += x * u + y * v;
    num2 += x * v - y * u;
    den += x * x + y * y;
  }
  if (!(den > 0)) throw new Error('degenerate landmarks');
  const a = num1 / den;
  const b = num2 / den;
  const tx = mu - (a * mx - b * my);
  const ty = mv - (b * mx + a * my);
  return [a, -b, tx, b, a, ty];
}

/**
 * Warps `img` with the forward transform `m` (image → template) into a `size`×`size` packed RGB
 * buffer. Each output pixel (u, v) samples the source at M⁻¹·(u, v); neighbours outside the image
 * count as 0 (constant border).
 */
export function warpAffineRgb(img: RgbImage, m: Affine, size = ALIGNED_SIZE, out: Uint8Array = new Uint8Array(size * size * 3)): Uint8Array {
  const { data, width: W, height: H } = img;
  const a = m[0], tx = m[2], b = m[3], ty = m[5]; // m = [a, −b, tx, b, a, ty]
  const det = a * a + b * b;
  // Inverse of [[a, −b], [b, a]] is [[a, b], [−b, a]] / det.
  const ia = a / det;
  const ib = b / det;
  const rowBytes = W * 3;
  let o = 0;
  for (let v = 0; v < size; v++) {
    const dv = v - ty;
    for (let u = 0; u < size; u++) {
      const du = u - tx;
      const sx = ia * du + ib * dv;
      const sy = -ib * du + ia * dv;
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      const fx = sx - x0;
      const fy = sy - y0;
      const w00 = (1 - fx) * (1 - fy);
      const w01 = fx * (1 - fy);
      const w10 = (1 - fx) * fy;
      const w11 = fx * fy;
      const in0 = y0 >= 0 && y0 < H;
      const in1 = y0 + 1 >= 0 && y0 + 1 < H;
      const inx0 = x0 >= 0 && x0 < W;
      const inx1 = x0 + 1 >= 0 && x0 + 1 < W;
      const p00 = in0 && inx0 ? y0 * rowBytes + x0 * 3 : -1;
      const p01 = in0 && inx1 ? y0 * rowBytes + (x0 + 1) * 3 : -1;
      const p10 = in1 && inx0 ? (y0 + 1) * rowBytes + x0 * 3 : -1;
      const p11 = in1 && inx1 ? (y0 + 1) * rowBytes + (x0 + 1) * 3 : -1;
      for (let ch = 0; ch < 3; ch++) {
        let s = 0;
        if (p00 >= 0) s += data[p00 + ch] * w00;
        if (p01 >= 0) s += data[p01 + ch] * w01;
        if (p10 >= 0) s += data[p10 + ch] * w10;
        if (p11 >= 0) s += data[p11 + ch] * w11;
        const r = Math.round(s);
        out[o++] = r > 255 ? 255 : r;
      }
    }
  }
  return out;
}

/** Aligns the face given by its 5 landmarks (in `img` pixels) to a 112×112 RGB crop. */
export function alignFace(img: RgbImage, landmarks: readonly Point[], out?: Uint8Array): Uint8Array {
  return warpAffineRgb(img, estimateSimilarity(landmarks), ALIGNED_SIZE, out);
}
