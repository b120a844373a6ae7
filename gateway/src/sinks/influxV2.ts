import { HttpError, InfluxDB, type WriteApi } from '@influxdata/influxdb-client';
import { classifyStatus, SinkError, type Sink } from './sink.ts';

/**
 * InfluxDB 2.x / 3.x through the official client. The client's own buffering and retries are
 * turned off: the ledger is the spool and the SinkRunner owns batching, retry and the cursor, so
 * a batch is confirmed exactly when `write` resolves.
 */
export class InfluxV2Sink implements Sink {
  readonly name = 'influx-v2';
  private readonly client: InfluxDB;
  private readonly writeApi: WriteApi;
  private readonly url: string;

  constructor(opts: { url: string; token: string; org: string; bucket: string; timeoutMs?: number }) {
    this.url = opts.url.replace(/\/$/, '');
    this.client = new InfluxDB({ url: this.url, token: opts.token, timeout: opts.timeoutMs ?? 10_000 });
    this.writeApi = this.client.getWriteApi(opts.org, opts.bucket, 'ms', {
      maxRetries: 0,
      batchSize: Number.MAX_SAFE_INTEGER,
      flushInterval: 0,
      maxBufferLines: Number.MAX_SAFE_INTEGER,
      // Hand every failure straight back to flush(): no internal retry buffer, no console logging.
      writeFailed: (error: Error) => Promise.reject(error),
    });
  }

  async write(lines: string[]): Promise<void> {
    if (lines.length === 0) return;
    this.writeApi.writeRecords(lines);
    try {
      await this.writeApi.flush();
    } catch (e) {
      if (e instanceof HttpError) throw new SinkError(classifyStatus(e.statusCode), `influx v2 write ${e.statusCode}: ${e.body ?? e.message}`.slice(0, 600), e.statusCode);
      throw new SinkError('retryable', `influx v2 write: ${(e as Error).message}`);
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

  async close(): Promise<void> {
    await this.writeApi.close().catch(() => {});
  }
}
