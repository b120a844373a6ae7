import { InfluxSink } from './influxSink.ts';
import type { DeviceKindOf } from './points.ts';
import { classifyStatus, SinkError } from './sink.ts';

/** InfluxDB 1.x through its v1 `/write` API (precision ms). Also what 2.x/3.x offer as v1 compatibility. */
export class InfluxV1Sink extends InfluxSink {
  readonly name = 'influx-v1';
  private readonly writeUrl: string;
  private readonly pingUrl: string;
  private readonly headers: Record<string, string>;

  constructor(opts: { url: string; db: string; username?: string; password?: string; timeoutMs?: number; deviceKind?: DeviceKindOf }) {
    super(opts.deviceKind);
    const base = opts.url.replace(/\/$/, '');
    const q = new URLSearchParams({ db: opts.db, precision: 'ms' });
    this.writeUrl = `${base}/write?${q}`;
    this.pingUrl = `${base}/ping`;
    this.headers = { 'content-type': 'text/plain; charset=utf-8' };
    if (opts.username) this.headers.authorization = `Basic ${Buffer.from(`${opts.username}:${opts.password ?? ''}`).toString('base64')}`;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
  }

  private readonly timeoutMs: number;

  protected async send(body: string): Promise<void> {
    let res: Response;
    try {
      res = await fetch(this.writeUrl, { method: 'POST', headers: this.headers, body, signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (e) {
      throw new SinkError('retryable', `influx v1 write: ${(e as Error).cause ?? (e as Error).message}`);
    }
    if (res.status === 204 || res.status === 200) {
      await res.arrayBuffer();
      return;
    }
    const text = (await res.text()).slice(0, 500);
    throw new SinkError(classifyStatus(res.status), `influx v1 write ${res.status}: ${text}`, res.status);
  }

  async ping(): Promise<boolean> {
    try {
      const res = await fetch(this.pingUrl, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      return res.status === 204 || res.status === 200;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {}
}
