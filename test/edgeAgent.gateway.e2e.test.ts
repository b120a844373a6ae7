import { afterAll, describe, expect, it } from 'vitest';
import { buildAgent, type Agent } from '../edge-agent/src/agent.ts';
import { agentConfig, bearer, STATION_TOKEN, T0, TERMINAL_TOKEN } from './support/agent.ts';
import { freePort, startGateway, tempDir, type TestGateway } from './support/gateway.ts';

/**
 * Store and forward against the real gateway: the gateway goes away, equipment keeps producing,
 * the agent is restarted while the gateway is still away, the gateway comes back: every event
 * arrives, each is stored once, in order per device.
 */
describe('edge agent → gateway, across a gateway outage and an agent restart', () => {
  const dataDir = tempDir('sitegate-agent-gw-');
  const agentDir = tempDir('sitegate-agent-q-');
  let g: TestGateway | undefined;
  let agent: Agent | undefined;
  afterAll(async () => { await agent?.stop().catch(() => {}); await g?.stop(); });

  let nReadings = 0;
  let nCheckins = 0;
  async function produce(a: Agent, readings: number, checkins: number): Promise<void> {
    for (let done = 0; done < readings; done += 100) {
      const batch = Array.from({ length: Math.min(100, readings - done) }, () => {
        const i = nReadings++;
        return { id: `r-${String(i).padStart(6, '0')}`, ts: T0 + i * 1000, metrics: { pm10: 40 + (i % 30), noise_dba: 60 } };
      });
      const r = await a.http.inject({ method: 'POST', url: '/stations/ST-1/readings', headers: bearer(STATION_TOKEN), payload: { batch } });
      expect(r.statusCode, r.body).toBe(200);
    }
    for (let done = 0; done < checkins; done += 25) {
      const events = Array.from({ length: Math.min(25, checkins - done) }, () => {
        const i = nCheckins++;
        return { id: `c-${String(i).padStart(6, '0')}`, workerId: `W${i % 50}`, ts: T0 + i * 1000, direction: i % 2 ? 'out' : 'in', method: 'card' };
      });
      const r = await a.http.inject({ method: 'POST', url: '/terminals/FT-1/events', headers: bearer(TERMINAL_TOKEN), payload: events });
      expect(r.statusCode, r.body).toBe(200);
    }
  }

  it('delivers every reading and check-in exactly once, in order per device', async () => {
    const env = { SITEGATE_MQTT_PORT: String(await freePort()) };
    g = await startGateway(env, {}, dataDir);
    const sources = [
      { type: 'face_terminal', deviceId: 'FT-1', secret: await g.device('S1', 'FT-1', 'face_terminal'), token: TERMINAL_TOKEN },
      { type: 'station', deviceId: 'ST-1', secret: await g.device('S1', 'ST-1', 'sensor'), token: STATION_TOKEN },
    ];
    const config = agentConfig(g.mqttUrl, sources, {}, agentDir);
    agent = buildAgent(config);
    await agent.start();
    await produce(agent, 2000, 200);
    await agent.drained();

    await g.stop({ keepDataDir: true });
    await produce(agent, 3500, 400);
    expect(agent.outbox.depth).toBe(3900);
    // The agent restarts while the gateway is still away: its queue survives.
    await agent.stop();
    agent = buildAgent(config);
    expect(agent.outbox.depth).toBe(3900);
    await agent.start();
    await produce(agent, 3500, 400);
    expect(agent.status().queue.depth).toBe(7800);
    expect(agent.status().queue.oldestQueuedAt).toBeTypeOf('number');

    g = await startGateway(env, {}, dataDir);
    await agent.drained();
    const st = agent.status();
    expect(st.queue.depth).toBe(0);
    expect(st.lastPublishAt).toBeTypeOf('number');
    expect(st.sources.find((s) => s.name === 'station:ST-1')).toMatchObject({ accepted: 3500, refused: 0, errors: {} });
    expect(st.devices.map((d) => d.rejectedByGateway)).toEqual([0, 0]);
    await agent.stop();
    agent = undefined;

    await g.gw.ledger.drained();
    const rows = (await g.gw.ledger.readAfter(0, 100_000));
    const ids = (kind: string, device: string) => rows.filter((r) => r.kind === kind && r.deviceId === device).map((r) => r.msgId);
    const readings = ids('reading', 'ST-1');
    const checkins = ids('checkin', 'FT-1');
    // 10,000 events in all (issue 13): 9,000 readings and 1,000 check-ins.
    expect(readings).toHaveLength(9000);
    expect(new Set(readings).size).toBe(9000);
    expect(checkins).toHaveLength(1000);
    expect(new Set(checkins).size).toBe(1000);
    // In order per device: the ledger holds them in the order the terminal and station produced them.
    expect(readings).toEqual([...readings].sort());
    expect(checkins).toEqual([...checkins].sort());
  });
});
