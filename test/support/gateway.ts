import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { buildApp, type Gateway, type GatewayDeps } from '../../gateway/src/app.ts';
import { loadConfig } from '../../gateway/src/config/loadConfig.ts';

export const ADMIN_TOKEN = 'test-admin-token-0123456789abcdef';

export interface TestGateway {
  gw: Gateway;
  dataDir: string;
  httpUrl: string;
  mqttUrl: string;
  wsUrl: string;
  /** Calls the HTTP API over the real socket; `token` defaults to the admin token. */
  api<T = any>(method: string, p: string, body?: unknown, opts?: { token?: string | null; contentType?: string }): Promise<{ status: number; json: T; text: string }>;
  /** Registers a site and a device, returns the device's MQTT secret. */
  device(siteId: string, deviceId: string, kind?: 'sensor' | 'face_terminal' | 'camera', regionCode?: string): Promise<string>;
  connect(deviceId: string, secret: string, opts?: mqtt.IClientOptions): Promise<mqtt.MqttClient>;
  /** Closes the gateway; `keepDataDir` leaves its data directory for a restart on the same data. */
  stop(opts?: { keepDataDir?: boolean }): Promise<void>;
}

/** A port free on loopback right now (for listeners where 0 means "off", like the WebSocket one). */
export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

export function tempDir(prefix = 'sitegate-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/**
 * `TestGateway.api` for a gateway listening at `httpUrl` (in this process or its own).
 * `connectionPerRequest`: no keep-alive, so a TCP balancer (HAProxy in region mode) balances
 * every request, not only the first of a connection.
 */
export function httpApi(httpUrl: string, adminToken = ADMIN_TOKEN, { connectionPerRequest = false } = {}): TestGateway['api'] {
  return async (method, p, body, opts = {}) => {
    const headers: Record<string, string> = connectionPerRequest ? { connection: 'close' } : {};
    const token = opts.token === undefined ? adminToken : opts.token;
    if (token) headers.authorization = `Bearer ${token}`;
    let payload: string | Buffer | undefined;
    if (body !== undefined) {
      headers['content-type'] = opts.contentType ?? 'application/json';
      payload = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
    }
    const res = await fetch(`${httpUrl}${p.startsWith('/api') || p.startsWith('/healthz') || p.startsWith('/readyz') || p.startsWith('/metrics') || p.startsWith('/docs') ? '' : '/api/v1'}${p}`, { method, headers, body: payload as BodyInit | undefined });
    const text = await res.text();
    let json: any;
    try { json = JSON.parse(text); } catch { json = undefined; }
    return { status: res.status, json, text };
  };
}

/**
 * A real gateway (real ledger, registry, aedes, Fastify) on ephemeral loopback ports, with a
 * throw-away data directory. scrypt is cheaper than production (N=1024) to keep suites fast;
 * the hashing code path is the same.
 */
export async function startGateway(env: Record<string, string> = {}, deps: GatewayDeps = {}, dataDir = tempDir(), opts: { waitForChecks?: boolean } = {}): Promise<TestGateway> {
  // The WebSocket port cannot be 0 (0 turns it off), so it is picked free beforehand; another
  // test file may take it in between, so a start that finds its port in use is tried again.
  let gw: Gateway | undefined;
  let ports: { httpPort: number; mqttPort: number; wsPort: number } | undefined;
  for (let attempt = 1; !ports; attempt++) {
    const config = loadConfig({
      SITEGATE_DATA_DIR: dataDir, SITEGATE_HTTP_HOST: '127.0.0.1', SITEGATE_MQTT_HOST: '127.0.0.1',
      SITEGATE_HTTP_PORT: '0', SITEGATE_MQTT_PORT: '0', SITEGATE_MQTT_WS_PORT: String(await freePort()),
      SITEGATE_ADMIN_TOKEN: ADMIN_TOKEN, SITEGATE_LOG_LEVEL: 'silent', SITEGATE_SECRET_SCRYPT_N: '1024', ...env,
    });
    gw = await buildApp(config, deps);
    try {
      ports = await gw.listen();
    } catch (e) {
      await gw.close();
      if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 5) throw e;
    }
  }
  const { httpPort, mqttPort, wsPort } = ports;
  // listen() does not wait for the checks' restore and replay (ingest never does); these tests
  // look at checks right after a start, so they wait for it here.
  if (opts.waitForChecks !== false) await gw!.checks.idle(); // restored and caught up with the ledger
  const started = gw!;
  const httpUrl = `http://127.0.0.1:${httpPort}`;
  const clients: mqtt.MqttClient[] = [];
  const t: TestGateway = {
    gw: started, dataDir, httpUrl, mqttUrl: `mqtt://127.0.0.1:${mqttPort}`, wsUrl: `ws://127.0.0.1:${wsPort}`,
    api: httpApi(httpUrl),
    async device(siteId, deviceId, kind = 'sensor', regionCode = '330106') {
      if (!started.registry.site(siteId)) {
        const s = await t.api('PUT', `/sites/${siteId}`, { name: siteId, regionCode });
        if (s.status >= 300) throw new Error(`PUT site: ${s.status} ${s.text}`);
      }
      const r = await t.api('PUT', `/sites/${siteId}/devices/${deviceId}`, { kind });
      if (r.status !== 201) throw new Error(`PUT device: ${r.status} ${r.text}`);
      return r.json.secret as string;
    },
    async connect(deviceId, secret, opts = {}) {
      const c = await mqtt.connectAsync(t.mqttUrl, { username: deviceId, password: secret, clientId: `${deviceId}-${clients.length}`, protocolVersion: 4, reconnectPeriod: 0, ...opts });
      clients.push(c);
      return c;
    },
    async stop(opts = {}) {
      await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})));
      await started.close();
      if (!opts.keepDataDir) fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return t;
}
