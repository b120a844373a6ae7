import sharp from 'sharp';

export interface Encoding { maxSide: number; quality: number }

/**
 * Re-encodes an image as a baseline JPEG: EXIF orientation applied (terminals mounted sideways
 * send rotated frames with an orientation tag the face model would ignore), the longest side
 * capped, metadata dropped (a smaller message, no device serials or GPS in evidence). Throws
 * when the bytes are not an image sharp can read.
 */
export async function reencode(input: Buffer, enc: Encoding): Promise<Buffer> {
  return sharp(input, { failOn: 'error' })
    .rotate()
    .resize({ width: enc.maxSide, height: enc.maxSide, fit: 'inside', withoutEnlargement: true })
    .jpeg({ quality: enc.quality, mozjpeg: false })
    .toBuffer();
}
