import Database from 'better-sqlite3';
import path from 'node:path';
import fs from 'node:fs';
import mqtt from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, tempDir } from './support/gateway.ts';
import { spawnGateway, type GatewayProcess } from './support/process.ts';

const ADMIN = 'crash-test-admin-token-0123456789';

/**
 * Contract §1: "A message the gateway accepts with QoS 1 is PUBACKed only once it is durable (it
 * survives kill -9 of the gateway from then on)." The gateway runs in its own process; a
 * publisher keeps QoS 1 messages in flight; the process is killed with SIGKILL mid-stream; after a
 * restart on the same data directory, every message whose PUBACK the publisher saw is stored.
 */
describe('kill -9 while a device publishes QoS 1', () => {
  const dataDir = tempDir('sitegate-crash-');
  let gw: GatewayProcess | undefined;
  afterAll(async () => {
    gw?.proc.kill('SIGKILL');
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('loses no PUBACKed message and counts none twice after restart', async () => {
    const [httpPort, mqttPort] = [await freePort(), await freePort()];
    const env = {
      SITEGATE_DATA_DIR: dataDir, SITEGATE_HTTP_HOST: '127.0.0.1', SITEGATE_MQTT_HOST: '127.0.0.1', SITEGATE_HTTP_PORT: String(httpPort),
      SITEGATE_MQTT_PORT: String(mqttPort), SITEGATE_MQTT_WS_PORT: '0', SITEGATE_ADMIN_TOKEN: ADMIN, SITEGATE_SECRET_SCRYPT_N: '1024',
    };
    gw = spawnGateway(env);
    await gw.ready;
    const api = (method: string, p: string, body: unknown) => fetch(`http://127.0.0.1:${httpPort}/api/v1${p}`, {
      method, headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify(body),
    }).then((r) => r.json() as Promise<any>);
    await api('PUT', '/sites/S1', { name: 'S1', regionCode: '330106' });
    const { secret } = await api('PUT', '/sites/S1/devices/D1', { kind: 'sensor' });

    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { username: 'D1', password: secret, reconnectPeriod: 0, protocolVersion: 4 });
    client.on('error', () => {});
    const acked = new Set<string>();
    const sent = new Set<string>();
    const ts = Date.parse('2026-11-02T08:00:00+08:00'); // event times fixed in the past: the gateway process runs on the real clock
    let i = 0;
    let killed = false;
    const inflight = new Set<Promise<void>>();
    // Publish with up to 100 in flight; kill the gateway once 2,000 PUBACKs have come back.
    while (!killed && i < 50_000) {
      const id = `m-${i++}`;
      sent.add(id);
      const p: Promise<void> = client.publishAsync('sites/S1/devices/D1/telemetry', JSON.stringify({ id, ts: ts + i, metrics: { pm10: i % 300 } }), { qos: 1 })
        .then(() => { acked.add(id); }, () => {})
        .finally(() => inflight.delete(p));
      inflight.add(p);
      // Kill with a full window: 100 messages sent and not yet acknowledged.
      if (acked.size >= 2000 && inflight.size >= 100 && !killed) {
        gw.proc.kill('SIGKILL');
        killed = true;
        break; // the publishes in flight now never settle: the connection is gone
      }
      if (inflight.size >= 100) await Promise.race(inflight);
    }
    const { signal } = await gw.exited;
    expect(signal).toBe('SIGKILL');
    client.end(true);
    const ackedAtKill = new Set(acked);
    expect(ackedAtKill.size).toBeGreaterThanOrEqual(2000);
    expect(sent.size).toBeGreaterThan(ackedAtKill.size); // some were in flight, unacknowledged

    // Restart on the same data directory; the device resends everything it did not see acknowledged.
    gw = spawnGateway(env);
    await gw.ready;
    const again = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { username: 'D1', password: secret, reconnectPeriod: 0, protocolVersion: 4 });
    const resend = [...sent].filter((id) => !ackedAtKill.has(id)).slice(0, 500);
    for (const id of resend) {
      const n = Number(id.slice(2));
      await again.publishAsync('sites/S1/devices/D1/telemetry', JSON.stringify({ id, ts: ts + n + 1, metrics: { pm10: n % 300 } }), { qos: 1 });
    }
    // …and, as devices do after a lost connection, some it had already seen acknowledged.
    for (const id of [...ackedAtKill].slice(0, 200)) {
      const n = Number(id.slice(2));
      await again.publishAsync('sites/S1/devices/D1/telemetry', JSON.stringify({ id, ts: ts + n + 1, metrics: { pm10: n % 300 } }), { qos: 1 });
    }
    await again.endAsync();
    gw.proc.kill('SIGTERM');
    expect((await gw.exited).code).toBe(0);

    const db = new Database(path.join(dataDir, 'ledger.db'), { readonly: true });
    const ids = new Set((db.prepare("SELECT msg_id FROM records WHERE kind = 'reading'").all() as { msg_id: string }[]).map((r) => r.msg_id));
    const total = (db.prepare("SELECT COUNT(*) AS n FROM records WHERE kind = 'reading'").get() as { n: number }).n;
    db.close();
    const lost = [...ackedAtKill].filter((id) => !ids.has(id));
    expect(lost).toEqual([]);
    expect(total).toBe(ids.size); // stored once each
    for (const id of resend) expect(ids.has(id)).toBe(true);
  });
});
