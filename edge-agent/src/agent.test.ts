import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, startGateway, tempDir, type TestGateway } from '../../test/support/gateway.ts';
import { EdgeAgent } from './agent.ts';

describe('edge agent store-and-forward against a real gateway', () => {
  const dataDir = tempDir('sitegate-edge-gw-');
  const agentDir = tempDir('sitegate-edge-agent-');
  let g: TestGateway | undefined;
  afterAll(async () => { await g?.stop(); });

  it('delivers every check-in exactly once across a gateway restart and an agent restart', async () => {
    const env = { SITEGATE_MQTT_PORT: String(await freePort()) };
    g = await startGateway(env, {}, dataDir);
    const secret = await g.device('S1', 'FT-1', 'face_terminal');
    const opts = { url: g.mqttUrl, siteId: 'S1', deviceId: 'FT-1', secret, outboxFile: path.join(agentDir, 'outbox.db'), reconnectMs: 100, window: 20 };
    let agent = new EdgeAgent(opts);
    agent.on('warn', () => {});
    agent.start();
    const base = Date.now() - 3_600_000;
    const checkin = (i: number) => ({ id: `FT-1-${i}`, workerId: `W${i % 40}`, ts: base + i * 1000, direction: i % 2 ? 'out' : 'in', method: 'card' });
    for (let i = 0; i < 300; i++) agent.send('checkin', checkin(i));
    await agent.drained();

    // The gateway goes away; the terminal keeps producing into its outbox.
    await g.stop({ keepDataDir: true });
    for (let i = 300; i < 600; i++) agent.send('checkin', checkin(i));
    expect(agent.pending).toBe(300);
    // The terminal itself restarts before the gateway is back: its outbox survives.
    await agent.stop();
    agent = new EdgeAgent(opts);
    agent.on('warn', () => {});
    expect(agent.pending).toBe(300);
    g = await startGateway(env, {}, dataDir);
    const connected = new Promise((r) => agent.once('connect', r));
    agent.start();
    await connected;
    await agent.drained();
    await agent.stop();

    const ids = g.gw.ledger.readAfter(0, 10_000).filter((r) => r.kind === 'checkin').map((r) => r.msgId);
    expect(ids).toHaveLength(600);
    expect(new Set(ids).size).toBe(600);
    const status = g.gw.live.devices.get('FT-1')?.status;
    expect(status?.state).toBe('offline'); // its clean stop announced it
  });
});
