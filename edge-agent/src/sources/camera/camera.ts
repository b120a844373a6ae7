import crypto from 'node:crypto';
import sharp from 'sharp';
import type { z } from 'zod';
import type { CameraSource } from '../../../../schemas/src/agent.ts';
import type { Input, InputContext } from '../input.ts';
import { reencode } from '../photo.ts';

type Config = z.infer<typeof CameraSource>;

/** A 16×16 grey thumbnail: enough to tell an unchanged scene from a changed one, cheap to compare. */
async function thumbnail(jpeg: Buffer): Promise<Buffer> {
  return sharp(jpeg).resize(16, 16, { fit: 'fill' }).greyscale().raw().toBuffer();
}

/**
 * An IP camera's HTTP snapshot URL (what most cameras offer beside RTSP), polled every
 * `intervalS`: the frame is re-encoded (orientation applied, longest side capped) and queued on
 * `…/snapshot`, where the gateway identifies it by its SHA-256. A frame whose thumbnail differs
 * from the last queued one by at most `unchangedDiff` (mean absolute grey level) is skipped and
 * counted `unchanged`: a night of an empty site costs nothing. A failed fetch or a body that is
 * not an image is counted and the next poll tries again.
 */
export class CameraInput implements Input {
  readonly name: string;
  readonly devices: { deviceId: string; secret: string }[];
  readonly intervalS: number;
  private ctx?: InputContext;
  private last?: Buffer;

  constructor(private readonly cfg: Config) {
    this.name = `camera:${cfg.deviceId}`;
    this.devices = [{ deviceId: cfg.deviceId, secret: cfg.secret }];
    this.intervalS = cfg.intervalS;
  }

  async start(ctx: InputContext): Promise<void> {
    this.ctx = ctx;
  }

  async gather(): Promise<void> {
    const ctx = this.ctx!;
    const headers: Record<string, string> = {};
    if (this.cfg.username !== undefined) headers.authorization = `Basic ${Buffer.from(`${this.cfg.username}:${this.cfg.password ?? ''}`).toString('base64')}`;
    let body: Buffer;
    try {
      const res = await fetch(this.cfg.url, { headers, signal: AbortSignal.timeout(this.cfg.timeoutMs) });
      body = Buffer.from(await res.arrayBuffer());
      if (!res.ok) return ctx.error('camera_http', `${this.cfg.url} answered ${res.status}`);
    } catch (e) {
      return ctx.error('camera_http', `${this.cfg.url}: ${(e as Error).message}`);
    }
    let jpeg: Buffer;
    let thumb: Buffer;
    try {
      jpeg = await reencode(body, this.cfg.photo);
      thumb = await thumbnail(jpeg);
    } catch (e) {
      return ctx.error('camera_not_an_image', `${this.cfg.url}: ${body.length} bytes that are not an image (${(e as Error).message})`);
    }
    if (this.last && meanAbsDiff(thumb, this.last) <= this.cfg.unchangedDiff) {
      ctx.count('unchanged');
      return;
    }
    const sha256 = crypto.createHash('sha256').update(jpeg).digest('hex');
    const put = ctx.enqueue([{ deviceId: this.cfg.deviceId, channel: 'snapshot', msgId: sha256, payload: jpeg }]);
    // Compared against the last frame queued: a refused frame (queue full) is not "seen".
    if (put.ok) this.last = thumb;
  }

  async stop(): Promise<void> {}
}

export function meanAbsDiff(a: Buffer, b: Buffer): number {
  if (a.length !== b.length) return Infinity;
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!);
  return sum / a.length;
}
