import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../gateway/src/config/loadConfig.ts';
import { freePort, tempDir } from './support/gateway.ts';
import { spawnGateway } from './support/process.ts';

describe('configuration', () => {
  it('has the contract\'s defaults', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({ SITEGATE_DATA_DIR: './data', SITEGATE_HTTP_PORT: 8080, SITEGATE_MQTT_PORT: 1883, SITEGATE_MQTT_WS_PORT: 8083 });
    expect(c.SITEGATE_INFLUX_URL).toBeUndefined();
    expect(c.SITEGATE_ALERT_TIMER_MS).toBe(30_000);
  });

  it.each([
    [{ SITEGATE_HTTP_PORT: 'eighty' }, 'SITEGATE_HTTP_PORT'],
    [{ SITEGATE_MQTT_PORT: '70000' }, 'SITEGATE_MQTT_PORT'],
    [{ SITEGATE_ADMIN_TOKEN: 'short' }, 'SITEGATE_ADMIN_TOKEN'],
    [{ SITEGATE_INFLUX_URL: 'not a url' }, 'SITEGATE_INFLUX_URL'],
    [{ SITEGATE_INFLUX_URL: 'http://localhost:8086' }, 'SITEGATE_INFLUX_TOKEN'],
    [{ SITEGATE_INFLUX_DB: 'sitegate' }, 'SITEGATE_INFLUX_URL'],
    [{ SITEGATE_HTTP_PROT: '8080' }, 'SITEGATE_HTTP_PROT'],
    [{ SITEGATE_LOG_LEVEL: 'loud' }, 'SITEGATE_LOG_LEVEL'],
    [{ SITEGATE_ALERT_TIMER_MS: '0' }, 'SITEGATE_ALERT_TIMER_MS'], // 0 would leave every deadline unfired
    [{ SITEGATE_REDIS_URL: 'http://127.0.0.1:6379', SITEGATE_INSTANCE_ID: 'gw-1' }, 'SITEGATE_REDIS_URL'],
    [{ SITEGATE_REDIS_URL: 'redis://127.0.0.1:6379' }, 'SITEGATE_INSTANCE_ID'],
    [{ SITEGATE_REDIS_URL: 'redis://127.0.0.1:6379', SITEGATE_INSTANCE_ID: 'gw 1' }, 'SITEGATE_INSTANCE_ID'],
    [{ SITEGATE_DATABASE_URL: 'mysql://db.example/sitegate' }, 'SITEGATE_DATABASE_URL'],
  ])('%o stops the start with one line naming the key', (env, key) => {
    let err: unknown;
    try { loadConfig(env); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(ConfigError);
    const msg = (err as Error).message;
    expect(msg).toContain(key);
    expect(msg.split('\n')).toHaveLength(1);
  });

  it('selects InfluxDB 1.x with SITEGATE_INFLUX_DB and 2.x with token/org/bucket', () => {
    expect(loadConfig({ SITEGATE_INFLUX_URL: 'http://127.0.0.1:8086', SITEGATE_INFLUX_DB: 'sitegate' }).SITEGATE_INFLUX_DB).toBe('sitegate');
    expect(loadConfig({ SITEGATE_INFLUX_URL: 'http://127.0.0.1:8086', SITEGATE_INFLUX_TOKEN: 't', SITEGATE_INFLUX_ORG: 'o', SITEGATE_INFLUX_BUCKET: 'b' }).SITEGATE_INFLUX_BUCKET).toBe('b');
  });

  it('joins the broker to a region with SITEGATE_REDIS_URL and SITEGATE_INSTANCE_ID, and only then', () => {
    expect(loadConfig({}).SITEGATE_REDIS_URL).toBeUndefined();
    expect(loadConfig({ SITEGATE_REDIS_URL: 'rediss://:pw@redis.example:6380/2', SITEGATE_INSTANCE_ID: 'gw-1' })).toMatchObject({ SITEGATE_INSTANCE_ID: 'gw-1' });
  });

  it('puts ledger and state in PostgreSQL with SITEGATE_DATABASE_URL and an instance id, and says which is missing without echoing the password', () => {
    expect(loadConfig({}).SITEGATE_DATABASE_URL).toBeUndefined();
    const url = 'postgres://sitegate:s3cret-pw@db.example:5432/sitegate';
    expect(loadConfig({ SITEGATE_DATABASE_URL: url, SITEGATE_INSTANCE_ID: 'gw-1' })).toMatchObject({ SITEGATE_DATABASE_URL: url, SITEGATE_INSTANCE_ID: 'gw-1' });
    let err: unknown;
    try { loadConfig({ SITEGATE_DATABASE_URL: url }); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/^invalid configuration: SITEGATE_INSTANCE_ID: required with SITEGATE_DATABASE_URL/);
    expect((err as Error).message).not.toContain('s3cret-pw');
  });
});

describe('the gateway process', () => {
  it('refuses to start on invalid configuration, with one line on stderr and exit code 2', async () => {
    const gw = spawnGateway({ SITEGATE_DATA_DIR: tempDir(), SITEGATE_MQTT_WS_PORT: 'off' });
    const { code } = await gw.exited;
    expect(code).toBe(2);
    expect(gw.stderr().trim().split('\n')).toEqual(['sitegate: invalid configuration: SITEGATE_MQTT_WS_PORT: Invalid input: expected number, received NaN']);
  });

  it('generates an admin token into a 0600 file when none is configured, and stops cleanly on SIGTERM', async () => {
    const fs = await import('node:fs');
    const path = await import('node:path');
    const dataDir = tempDir();
    const gw = spawnGateway({
      SITEGATE_DATA_DIR: dataDir, SITEGATE_HTTP_HOST: '127.0.0.1', SITEGATE_MQTT_HOST: '127.0.0.1',
      SITEGATE_HTTP_PORT: String(await freePort()), SITEGATE_MQTT_PORT: String(await freePort()), SITEGATE_MQTT_WS_PORT: '0',
    });
    await gw.ready;
    const file = path.join(dataDir, 'admin-token');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(file, 'utf8').trim()).toMatch(/^sg_[A-Za-z0-9_-]{40,}$/);
    expect(gw.stdoutLines.some((l) => l.includes(file))).toBe(true);
    gw.proc.kill('SIGTERM');
    const { code } = await gw.exited;
    expect(code).toBe(0);
    expect(gw.stdoutLines.some((l) => l.includes('"sitegate stopped"'))).toBe(true);
  });
});

describe('listening', () => {
  it('rejects a start whose MQTT WebSocket port is taken, instead of an uncaught error', async () => {
    const net = await import('node:net');
    const { startGateway } = await import('./support/gateway.ts');
    const busy = net.createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
    const port = (busy.address() as import('node:net').AddressInfo).port;
    try {
      await expect(startGateway({ SITEGATE_MQTT_WS_PORT: String(port) }, { checks: [] })).rejects.toMatchObject({ code: 'EADDRINUSE' });
    } finally {
      busy.close();
    }
  });
});
