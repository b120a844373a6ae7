import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { agentConfig, bearer, STATION_TOKEN, T0, TERMINAL_TOKEN } from '../../test/support/agent.ts';
import { freePort, tempDir } from '../../test/support/gateway.ts';
import { buildAgent, type Agent } from './agent.ts';

const FACE = fs.readFileSync(path.resolve(import.meta.dirname, '../../test/fixtures/faces/carl_walz_1.jpg'));
const MAIN = path.resolve(import.meta.dirname, 'main.ts');

/**
 * What equipment sees at the agent's door, with no gateway reachable (a closed port): everything
 * accepted stays queued, every bad input is answered with a clear error and counted.
 */
describe('edge agent: equipment input, queue bound, status', () => {
  let agent: Agent | undefined;
  afterEach(async () => { await agent?.stop(); agent = undefined; });
  const sources = [
    { type: 'face_terminal', deviceId: 'FT-1', secret: 's', token: TERMINAL_TOKEN, photo: { maxSide: 200 } },
    { type: 'face_terminal', deviceId: 'HK-1', secret: 's', token: `${TERMINAL_TOKEN}-hk`, vendor: 'hikvision-acs' },
    { type: 'station', deviceId: 'ST-1', secret: 's', token: STATION_TOKEN, fields: { PM10: 'pm10', Noise: 'noise_dba' }, idField: 'seq', tsField: 'time' },
  ];
  const start = async (extra: Record<string, unknown> = {}, dir?: string) => {
    agent = buildAgent(agentConfig(`mqtt://127.0.0.1:${await freePort()}`, sources, extra, dir), { poll: false });
    await agent.start();
    return agent;
  };
  const post = (a: Agent, url: string, token: string, payload: unknown) =>
    a.http.inject({ method: 'POST', url, headers: bearer(token), payload: typeof payload === 'string' ? payload : JSON.stringify(payload) });
  const queued = (a: Agent, device: string) => a.outbox.next(device, 0, 1000).map((e) => JSON.parse(e.payload.toString()));

  it('re-encodes a terminal photo, maps a vendor shape, and answers bad input with counted errors', async () => {
    const a = await start();
    const ok = await post(a, '/terminals/FT-1/events', TERMINAL_TOKEN, { id: 'e1', workerId: 'W1', ts: T0, direction: 'in', photo: FACE.toString('base64'), score: 0.93 });
    expect(ok.json()).toEqual({ accepted: 1, rejected: [], warnings: [] });
    const [c] = queued(a, 'FT-1');
    expect(c).toMatchObject({ id: 'e1', workerId: 'W1', ts: T0, direction: 'in', method: 'face', terminalScore: 0.93 });
    const sharp = (await import('sharp')).default;
    const meta = await sharp(Buffer.from(c.photo, 'base64')).metadata();
    expect([meta.format, Math.max(meta.width!, meta.height!)]).toEqual(['jpeg', 200]);

    expect((await post(a, '/terminals/FT-1/events', 'wrong-token-0123456789', { id: 'e2' })).statusCode).toBe(401);
    const bad = await post(a, '/terminals/FT-1/events', TERMINAL_TOKEN, '{"id": "e3", "workerId": ');
    expect([bad.statusCode, bad.json().error]).toEqual([400, 'invalid_json']);
    const notImage = await post(a, '/terminals/FT-1/events', TERMINAL_TOKEN, [
      { id: 'e4', workerId: 'W2', ts: T0 + 1, direction: 'in', photo: Buffer.from('not a jpeg at all').toString('base64') },
      { id: 'e5', workerId: 'W 3', ts: '2026-11-02 08:00:00', direction: 'sideways' },
    ]);
    expect(notImage.statusCode).toBe(200);
    expect(notImage.json().accepted).toBe(1);
    expect(notImage.json().warnings).toMatchObject([{ index: 0, id: 'e4', error: 'photo_not_an_image' }]);
    expect(notImage.json().rejected).toMatchObject([{ index: 1, error: 'schema_invalid' }]);
    expect(notImage.json().rejected[0].message).toMatch(/workerId.*ts.*direction/s);
    expect(queued(a, 'FT-1').map((e) => [e.id, 'photo' in e])).toEqual([['e1', true], ['e4', false]]);

    const hk = await post(a, '/terminals/HK-1/events', `${TERMINAL_TOKEN}-hk`, {
      ipAddress: '10.0.0.21', dateTime: '2026-11-02T07:58:12+08:00', eventType: 'AccessControllerEvent',
      AccessControllerEvent: { serialNo: 4711, employeeNoString: 'W0007', attendanceStatus: 'checkIn', currentVerifyMode: 'cardOrFace', similarity: 88 },
    });
    expect(hk.statusCode).toBe(200);
    expect(queued(a, 'HK-1')).toEqual([{ id: '4711', workerId: 'W0007', ts: '2026-11-02T07:58:12+08:00', direction: 'in', method: 'face', terminalScore: 0.88 }]);

    const st = await post(a, '/stations/ST-1/readings', STATION_TOKEN, [{ seq: 1, time: T0, PM10: '81', Noise: 63.5 }, { seq: 2, time: T0 + 60_000, PM10: 'n/a' }]);
    expect(st.json()).toMatchObject({ accepted: 1, rejected: [{ index: 1, error: 'schema_invalid' }] });
    expect(queued(a, 'ST-1')).toEqual([{ id: '1', ts: T0, metrics: { pm10: 81, noise_dba: 63.5 } }]);

    const s = a.status().sources;
    expect(s.find((x) => x.name === 'face_terminal:FT-1')).toMatchObject({ accepted: 2, errors: { unauthorized: 1, invalid_json: 1, photo_not_an_image: 1, schema_invalid: 1 } });
    expect(s.find((x) => x.name === 'station:ST-1')).toMatchObject({ accepted: 1, errors: { schema_invalid: 1 } });
    expect(a.outbox.depth).toBe(4); // nothing accepted was lost to the errors around it
  });

  it('refuses telemetry at the source when the queue is full, and still takes check-ins', async () => {
    const a = await start({ queue: { file: path.join(tempDir('sitegate-agent-full-'), 'q.db'), maxBytes: 64 * 1024 } });
    let refusedAt = -1;
    for (let i = 0; i < 100 && refusedAt < 0; i++) {
      const batch = Array.from({ length: 20 }, (_, j) => ({ seq: i * 20 + j, time: T0 + (i * 20 + j) * 1000, PM10: 50, Noise: 60 }));
      const r = await post(a, '/stations/ST-1/readings', STATION_TOKEN, { batch });
      if (r.statusCode !== 200) {
        expect([r.statusCode, r.json().error]).toEqual([507, 'queue_full']);
        refusedAt = i;
      }
    }
    expect(refusedAt).toBeGreaterThan(0);
    for (let i = 0; i < 50; i++) {
      const r = await post(a, '/terminals/FT-1/events', TERMINAL_TOKEN, { id: `full-${i}`, workerId: 'W1', ts: T0 + i, direction: 'in', method: 'card' });
      expect(r.statusCode).toBe(200);
    }
    const st = a.status();
    expect(st.queue.byChannel).toEqual({ telemetry: refusedAt * 20, checkin: 50 });
    expect(st.sources.find((x) => x.name === 'station:ST-1')).toMatchObject({ refused: 20, errors: { queue_full: 1 } });
    expect(st.queue.bytes).toBeGreaterThan(st.queue.maxBytes); // only check-ins went beyond it
  });

  it('sitegate-agent status: from the running agent, and from the queue file when it is not running', async () => {
    const dir = tempDir('sitegate-agent-cli-');
    const configFile = path.join(dir, 'agent.json');
    const a = await start({}, dir);
    await post(a, '/terminals/FT-1/events', TERMINAL_TOKEN, { id: 'cli-1', workerId: 'W1', ts: T0, direction: 'in', method: 'card' });
    await post(a, '/terminals/FT-1/events', 'wrong-token-0123456789', {});
    const port = await freePort();
    await a.http.listen({ port, host: '127.0.0.1' });
    fs.writeFileSync(configFile, JSON.stringify({ ...a.config, http: { host: '127.0.0.1', port } }));
    const run = promisify(execFile);
    const live = await run(process.execPath, ['--import', 'tsx', MAIN, 'status', '--config', configFile]);
    expect(live.stdout).toMatch(/agent running/);
    expect(live.stdout).toMatch(/queue +1 events/);
    expect(live.stdout).toMatch(/face_terminal:FT-1 +accepted 1 refused 0 +errors: unauthorized=1/);
    const page = await a.http.inject({ method: 'GET', url: '/' });
    expect(page.body).toContain('status.json');
    await a.stop();
    agent = undefined;
    const offline = await run(process.execPath, ['--import', 'tsx', MAIN, 'status', '--config', configFile, '--json']);
    expect(JSON.parse(offline.stdout)).toMatchObject({ running: false, queue: { depth: 1, byChannel: { checkin: 1 } } });
  });
});

describe('edge-agent/agent.sample.json', () => {
  it('is a configuration the agent accepts', async () => {
    const { AgentConfig } = await import('../../schemas/src/agent.ts');
    const r = AgentConfig.safeParse(JSON.parse(fs.readFileSync(path.resolve(import.meta.dirname, '../agent.sample.json'), 'utf8')));
    expect(r.success, JSON.stringify(r.error?.issues)).toBe(true);
  });
});
