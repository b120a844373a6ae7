import type { z } from 'zod';
import type { FaceTerminalSource } from '../../../../schemas/src/agent.ts';
import { AgentError } from '../../errors.ts';
import type { Input, InputContext } from '../input.ts';
import { reencode } from '../photo.ts';
import { items, pushRoute } from '../push.ts';
import { mapperFor } from './mapping.ts';

type Config = z.infer<typeof FaceTerminalSource>;

/**
 * A face terminal pushing check-ins: `POST /terminals/{deviceId}/events` with
 * `Authorization: Bearer <token>`, one event or an array, in the vendor's shape. Each event is
 * mapped, validated, its photo re-encoded, and the valid ones are in the queue before the
 * terminal gets its 200; the answer lists every rejected item by index so the terminal can tell
 * a retry from a lost cause. A photo that is not an image does not cost the worker the check-in:
 * it is queued without the photo (the gateway then raises `checkin.no_face`) and the error is
 * counted and returned as a warning.
 */
export class FaceTerminalInput implements Input {
  readonly name: string;
  readonly devices: { deviceId: string; secret: string }[];
  private readonly map;

  constructor(private readonly cfg: Config) {
    this.name = `face_terminal:${cfg.deviceId}`;
    this.devices = [{ deviceId: cfg.deviceId, secret: cfg.secret }];
    this.map = mapperFor(cfg);
  }

  async start(ctx: InputContext): Promise<void> {
    pushRoute(ctx, `/terminals/${this.cfg.deviceId}/events`, this.cfg.token, async (body, reply) => {
      const list = items(body);
      const rejected: { index: number; error: string; message: string }[] = [];
      const warnings: { index: number; id: string; error: string; message: string }[] = [];
      const events = [];
      for (const [index, raw] of list.entries()) {
        const parsed = this.map(raw);
        if (!parsed.success) {
          const message = parsed.error.issues.map((i) => `${i.path.join('.') || '(event)'}: ${i.message}`).join('; ');
          rejected.push({ index, error: 'schema_invalid', message });
          ctx.error('schema_invalid', `event ${index}: ${message}`);
          continue;
        }
        const e = parsed.data;
        let photo: string | undefined;
        if (e.photo !== undefined) {
          try {
            photo = (await reencode(Buffer.from(e.photo, 'base64'), this.cfg.photo)).toString('base64');
          } catch (err) {
            const message = `photo of event ${e.id} is not a readable image (${(err as Error).message}): queued without it`;
            warnings.push({ index, id: e.id, error: 'photo_not_an_image', message });
            ctx.error('photo_not_an_image', message);
          }
        }
        const checkin = {
          id: e.id, workerId: e.workerId, ts: e.ts, direction: e.direction, method: e.method,
          ...(e.score !== undefined ? { terminalScore: e.score } : {}), ...(photo ? { photo } : {}),
        };
        events.push({ deviceId: this.cfg.deviceId, channel: 'checkin' as const, msgId: e.id, payload: Buffer.from(JSON.stringify(checkin)) });
      }
      if (events.length > 0) {
        const put = ctx.enqueue(events); // check-ins are never refused for space (buffer/outbox.ts)
        if (!put.ok) throw new AgentError(put.reason, put.message, undefined, true);
      }
      const status = events.length === 0 && rejected.length > 0 ? 422 : 200;
      return reply.code(status).send({ accepted: events.length, rejected, warnings });
    });
  }

  async stop(): Promise<void> {}
}
