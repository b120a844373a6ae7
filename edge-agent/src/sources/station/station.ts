import type { z } from 'zod';
import type { StationSource } from '../../../../schemas/src/agent.ts';
import { Reading } from '../../../../schemas/src/messages.ts';
import { AgentError } from '../../errors.ts';
import type { Input, InputContext } from '../input.ts';
import { at, items, pushRoute } from '../push.ts';

type Config = z.infer<typeof StationSource>;

/**
 * An environment station that pushes JSON: `POST /stations/{deviceId}/readings` with
 * `Authorization: Bearer <token>`; a reading, an array of them, or `{"batch": […]}`. With `fields`
 * empty each reading is the contract's (`{id, ts, metrics}`); otherwise a flat vendor record whose
 * fields are renamed to metrics (`{"PM10": 80, "Noise": 62.5, "time": …}`). A record without an
 * id gets its timestamp as id: the station's own time of the sample, so a resend keeps it.
 * Valid readings are queued before the 200; a full queue answers 507 and queues none of them.
 */
export class StationInput implements Input {
  readonly name: string;
  readonly devices: { deviceId: string; secret: string }[];

  constructor(private readonly cfg: Config) {
    this.name = `station:${cfg.deviceId}`;
    this.devices = [{ deviceId: cfg.deviceId, secret: cfg.secret }];
  }

  private toReading(raw: unknown): unknown {
    const ts = at(raw, this.cfg.tsField);
    const id = at(raw, this.cfg.idField) ?? (ts === undefined ? undefined : String(ts));
    if (Object.keys(this.cfg.fields).length === 0) return raw && typeof raw === 'object' ? { ...raw, id } : raw;
    const metrics: Record<string, unknown> = {};
    for (const [field, metric] of Object.entries(this.cfg.fields)) {
      const v = at(raw, field);
      if (v !== undefined && v !== null && v !== '') metrics[metric] = typeof v === 'string' ? Number(v) : v;
    }
    return { id: typeof id === 'number' ? String(id) : id, ts, metrics };
  }

  async start(ctx: InputContext): Promise<void> {
    pushRoute(ctx, `/stations/${this.cfg.deviceId}/readings`, this.cfg.token, async (body, reply) => {
      const list = body && typeof body === 'object' && 'batch' in body && Array.isArray((body as { batch: unknown }).batch) ? (body as { batch: unknown[] }).batch : items(body);
      const rejected: { index: number; error: string; message: string }[] = [];
      const events = [];
      for (const [index, raw] of list.entries()) {
        const r = Reading.safeParse(this.toReading(raw));
        if (!r.success) {
          const message = r.error.issues.map((i) => `${i.path.join('.') || '(reading)'}: ${i.message}`).join('; ');
          rejected.push({ index, error: 'schema_invalid', message });
          ctx.error('schema_invalid', `reading ${index}: ${message}`);
          continue;
        }
        events.push({ deviceId: this.cfg.deviceId, channel: 'telemetry' as const, msgId: r.data.id, payload: Buffer.from(JSON.stringify(r.data)) });
      }
      if (events.length > 0) {
        const put = ctx.enqueue(events);
        if (!put.ok) throw new AgentError(put.reason, put.message, undefined, true);
      }
      return reply.code(events.length === 0 && rejected.length > 0 ? 422 : 200).send({ accepted: events.length, rejected });
    });
  }

  async stop(): Promise<void> {}
}
