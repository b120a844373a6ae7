import { HttpError, InfluxDB, type Transport } from '@influxdata/influxdb-client';
import { InfluxSink } from './influxSink.ts';
import type { DeviceKindOf } from './points.ts';
import { classifyStatus, SinkError } from './sink.ts';

/**
 * InfluxDB 2.x / 3.x `/api/v2/write` through the official client's transport (token auth, gzip
 * above 1 kB, timeouts, `HttpError` with InfluxDB's message). Not through its `WriteApi`: that
 * one buffers, splits a large write into several requests whose failures it swallows, and
 * retries on its own, while here the ledger is the spool and the SinkRunner owns batching, retry
 * and the cursor. So one `write` is exactly one request, confirmed exactly when it resolves.
 */
export class InfluxV2Sink extends InfluxSink {
  readonly name = 'influx-v2';
  private readonly transport: Transport;
  private readonly writePath: string;
  private readonly url: string;

  constructor(opts: { url: string; token: string; org: string; bucket: string; timeoutMs?: number; deviceKind?: DeviceKindOf }) {
    super(opts.deviceKind);
    this.url = opts.url.replace(/\/$/, '');
    this.transport = new InfluxDB({ url: this.url, token: opts.token, timeout: opts.timeoutMs ?? 10_000 }).transport;
    this.writePath = `/api/v2/write?${new URLSearchParams({ org: opts.org, bucket: opts.bucket, precision: 'ms' })}`;
  }

  protected async send(body: string): Promise<void> {
    try {
      await this.transport.request(this.writePath, body, {
        method: 'POST',
        headers: { 'content-type': 'text/plain; charset=utf-8', accept: 'application/json' },
        gzipThreshold: 1000,
      });
    } catch (e) {
      if (e instanceof HttpError) throw new SinkError(classifyStatus(e.statusCode), `influx v2 write ${e.statusCode}: ${e.body || e.message}`.slice(0, 600), e.statusCode);
      throw new SinkError('retryable', `influx v2 write: ${(e as Error).message || (e as Error).name}`);
    }
  }

  async ping(): Promise<boolean> {
    try {
      const res = await fetch(`${this.url}/health`, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      return res.ok;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {}
}
