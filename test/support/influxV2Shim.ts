import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import zlib from 'node:zlib';

/**
 * A stand-in for InfluxDB 2.x's write endpoint, because InfluxDB 2.x cannot run on this machine
 * (only Debian's influxd 1.6.7, which has no /api/v2). It translates, it does not store:
 * `POST /api/v2/write?org=&bucket=&precision=` (Authorization: Token …, body possibly gzip) goes
 * to the real influxd's `POST /write?db=<bucket>&precision=`, and influxd's status and body come
 * back unchanged, so the points land in — and are refused by — a real InfluxDB.
 * `GET /health` answers 200 like 2.x does.
 */
export interface InfluxV2Shim {
  url: string;
  token: string;
  org: string;
  /** Write requests seen, with whether their body came gzip-encoded. */
  requests: { bucket: string; gzip: boolean; status: number }[];
  close(): Promise<void>;
}

const gunzip = promisify(zlib.gunzip);

export async function startInfluxV2Shim(influxUrl: string, opts: { token?: string; org?: string } = {}): Promise<InfluxV2Shim> {
  const token = opts.token ?? 'shim-token';
  const org = opts.org ?? 'sitegate';
  const requests: InfluxV2Shim['requests'] = [];

  const json = (res: http.ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
    res.end(JSON.stringify(body));
  };

  const server = http.createServer(async (req, res) => {
    try {
      const u = new URL(req.url ?? '/', 'http://shim');
      if (req.method === 'GET' && u.pathname === '/health') return json(res, 200, { name: 'influxdb', status: 'pass', message: 'ready for queries and writes (v2 shim over influxd 1.x)' });
      if (u.pathname !== '/api/v2/write') return json(res, 404, { code: 'not found', message: `the shim only translates /api/v2/write, not ${u.pathname}` });
      if (req.method !== 'POST') return json(res, 405, { code: 'method not allowed', message: 'POST only' });
      if (req.headers.authorization !== `Token ${token}`) return json(res, 401, { code: 'unauthorized', message: 'unauthorized access' });
      const bucket = u.searchParams.get('bucket');
      if (!bucket || u.searchParams.get('org') !== org) return json(res, 404, { code: 'not found', message: `bucket "${bucket}" not found in org "${u.searchParams.get('org')}"` });
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const gzip = /\bgzip\b/i.test(String(req.headers['content-encoding'] ?? ''));
      const body = gzip ? await gunzip(Buffer.concat(chunks)) : Buffer.concat(chunks);
      const q = new URLSearchParams({ db: bucket, precision: u.searchParams.get('precision') ?? 'ns' });
      const upstream = await fetch(`${influxUrl}/write?${q}`, { method: 'POST', headers: { 'content-type': 'text/plain; charset=utf-8' }, body });
      const text = await upstream.text();
      requests.push({ bucket, gzip, status: upstream.status });
      const headers: Record<string, string> = {};
      const ct = upstream.headers.get('content-type');
      if (ct && text) headers['content-type'] = ct;
      res.writeHead(upstream.status, headers);
      res.end(text);
    } catch (e) {
      // influxd unreachable behind the shim: what a 2.x behind a proxy would look like.
      if (!res.headersSent) json(res, 503, { code: 'unavailable', message: `shim: influxd unreachable: ${(e as Error).message}` });
      else res.destroy();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`, token, org, requests,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
