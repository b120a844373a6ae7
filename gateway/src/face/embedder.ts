/**
 * MobileFaceNet embedder (face_recognition_mobilefacenet_foamliu.onnx): 112×112 aligned face →
 * L2-normalised 128-d embedding (models/NOTES.md §3).
 *
 * Input is **RGB** (not BGR like YuNet), NCHW, with torchvision ImageNet normalisation
 * x = (v/255 − mean[c]) / std[c]. The export has a fixed batch of 1. The raw output is not
 * normalised; we normalise so that cosine similarity is a plain dot product.
 */
import * as ort from 'onnxruntime-node';
import { ALIGNED_SIZE } from './align.ts';

export const EMBEDDING_DIM = 128;
const MEAN = [0.485, 0.456, 0.406] as const;
const STD = [0.229, 0.224, 0.225] as const;

/** Packed RGB 112×112 uint8 → planar normalised float32 (RGB order). */
export function alignedToTensor(rgb: Uint8Array, out: Float32Array): Float32Array {
  const plane = ALIGNED_SIZE * ALIGNED_SIZE;
  // v/255 − mean)/std  ==  v·k + c  with k = 1/(255·std), c = −mean/std
  const k0 = 1 / (255 * STD[0]), k1 = 1 / (255 * STD[1]), k2 = 1 / (255 * STD[2]);
  const c0 = -MEAN[0] / STD[0], c1 = -MEAN[1] / STD[1], c2 = -MEAN[2] / STD[2];
  for (let i = 0, p = 0; i < plane; i++, p += 3) {
    out[i] = rgb[p] * k0 + c0;
    out[plane + i] = rgb[p + 1] * k1 + c1;
    out[2 * plane + i] = rgb[p + 2] * k2 + c2;
  }
  return out;
}

export function l2normalize(v: Float32Array): Float32Array {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * v[i];
  const n = Math.sqrt(s);
  if (n > 0) for (let i = 0; i < v.length; i++) v[i] /= n;
  return v;
}

export class MobileFaceNetEmbedder {
  private readonly input = new Float32Array(3 * ALIGNED_SIZE * ALIGNED_SIZE);
  private readonly inputTensor: ort.Tensor;
  private readonly inputName: string;
  private readonly outputName: string;

  private constructor(private readonly session: ort.InferenceSession) {
    this.inputTensor = new ort.Tensor('float32', this.input, [1, 3, ALIGNED_SIZE, ALIGNED_SIZE]);
    this.inputName = session.inputNames[0];
    this.outputName = session.outputNames[0];
  }

  static async create(modelPath: string, sessionOptions: ort.InferenceSession.SessionOptions): Promise<MobileFaceNetEmbedder> {
    return new MobileFaceNetEmbedder(await ort.InferenceSession.create(modelPath, sessionOptions));
  }

  /**
   * Embeds one aligned 112×112 packed-RGB face; returns a fresh, L2-normalised Float32Array(128).
   * Not re-entrant (the input tensor is reused); FaceEngine serialises calls.
   */
  async embed(alignedRgb: Uint8Array): Promise<Float32Array> {
    alignedToTensor(alignedRgb, this.input);
    const out = await this.session.run({ [this.inputName]: this.inputTensor });
    const t = out[this.outputName];
    const emb = new Float32Array(t.data as Float32Array); // copy: ORT owns the output buffer
    for (const o of Object.values(out)) o.dispose?.();
    if (emb.length !== EMBEDDING_DIM) throw new Error(`unexpected embedding size ${emb.length}`);
    return l2normalize(emb);
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
