/**
 * Image decoding for the face engine: any sharp-readable input (JPEG in practice) to packed 8-bit
 * RGB, with the EXIF orientation applied.
 *
 * Large camera JPEGs are shrunk at decode time (libvips shrink-on-load) so that the longer side is
 * at most `maxSide` px: 1280 px is plenty for landmark alignment of a face (models/NOTES.md §6) and
 * a 4288×2929 JPEG decodes in ~117 ms instead of ~246 ms. Small images are never enlarged here; the
 * detector does its own letterboxing.
 */
import sharp from 'sharp';

export interface RgbImage {
  /** packed RGB, row-major, `width * height * 3` bytes */
  data: Uint8Array;
  width: number;
  height: number;
}

export interface DecodedImage {
  image: RgbImage;
  /** size of the (EXIF-rotated) source image; `image` may be smaller */
  origWidth: number;
  origHeight: number;
  /** multiply `image` coordinates by this to get source-image coordinates (≥ 1) */
  toOrig: number;
}

export const DEFAULT_MAX_DECODE_SIDE = 1280;
/**
 * Inputs above this many pixels are refused as undecodable (decompression-bomb guard; a 48 MP
 * phone photo is 8000×6000). JPEGs are shrunk on load, but PNG/WebP would be decoded in full.
 */
export const MAX_INPUT_PIXELS = 64_000_000;

export class UndecodableImageError extends Error {
  constructor(cause: unknown) {
    super(`image could not be decoded: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = 'UndecodableImageError';
  }
}

/** Throws UndecodableImageError for anything sharp cannot decode (or an empty buffer). */
export async function decodeRgb(buf: Buffer | Uint8Array, maxSide = DEFAULT_MAX_DECODE_SIDE): Promise<DecodedImage> {
  if (!buf || buf.length === 0) throw new UndecodableImageError('empty buffer');
  try {
    const input = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
    const meta = await sharp(input, { limitInputPixels: MAX_INPUT_PIXELS }).metadata();
    if (!meta.width || !meta.height) throw new Error('no dimensions');
    // EXIF orientations 5..8 swap width and height.
    const swap = (meta.orientation ?? 1) >= 5;
    const origWidth = swap ? meta.height : meta.width;
    const origHeight = swap ? meta.width : meta.height;
    if (meta.width * meta.height > MAX_INPUT_PIXELS) throw new Error(`image too large: ${meta.width}×${meta.height}`);
    let pipeline = sharp(input, { failOn: 'error', limitInputPixels: MAX_INPUT_PIXELS }).rotate();
    if (Math.max(origWidth, origHeight) > maxSide) {
      pipeline = pipeline.resize(maxSide, maxSide, { fit: 'inside', withoutEnlargement: true });
    }
    const { data, info } = await pipeline.toColourspace('srgb').removeAlpha().raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`unexpected channel count ${info.channels}`);
    return {
      image: { data, width: info.width, height: info.height },
      origWidth,
      origHeight,
      toOrig: origWidth / info.width,
    };
  } catch (err) {
    if (err instanceof UndecodableImageError) throw err;
    throw new UndecodableImageError(err);
  }
}
