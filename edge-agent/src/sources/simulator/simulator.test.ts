import { describe, expect, it } from 'vitest';
import { agentConfig } from '../../../../test/support/agent.ts';
import { buildAgent } from '../../agent.ts';
import { SimulatorInput } from './simulator.ts';

describe('simulator', () => {
  it('drives a site on its own clock: the morning check-in wave with photos, and every sensor each step', async () => {
    const dev = (deviceId: string) => ({ deviceId, secret: 's' });
    const cfg = agentConfig('mqtt://127.0.0.1:1', [{
      type: 'simulator', terminal: dev('SIM-FT'), dust: dev('SIM-DUST'), noise: dev('SIM-NOISE'), crane: dev('SIM-CRANE'), pit: dev('SIM-PIT'),
      workers: 30, start: '2026-11-02T06:55:00+08:00', stepS: 60, speed: 3600,
    }]);
    const agent = buildAgent(cfg, { poll: false });
    await agent.start();
    const sim = agent.inputs[0] as SimulatorInput;
    for (let i = 0; i < 60; i++) await agent.gather(sim); // 06:55 → 07:55 site time
    expect(sim.now).toBe(Date.parse('2026-11-02T07:55:00+08:00'));
    const checkins = agent.outbox.next('SIM-FT', 0, 1000).map((e) => JSON.parse(e.payload.toString()));
    expect(checkins).toHaveLength(30); // everyone arrives between 07:00 and 07:45
    expect(checkins.every((c) => c.direction === 'in' && c.photo && c.ts >= Date.parse('2026-11-02T07:00:00+08:00'))).toBe(true);
    expect(new Set(checkins.map((c) => c.id)).size).toBe(30);
    const dust = agent.outbox.next('SIM-DUST', 0, 1000).map((e) => JSON.parse(e.payload.toString()));
    expect(dust).toHaveLength(60);
    expect(dust[0]).toMatchObject({ ts: Date.parse('2026-11-02T06:56:00+08:00'), metrics: { pm10: expect.any(Number) } });
    const pit = agent.outbox.next('SIM-PIT', 0, 1000).map((e) => JSON.parse(e.payload.toString()).metrics.pit_displacement_mm);
    expect(pit[59]).toBeGreaterThan(pit[0]); // drifting, slowly
    expect(pit[59]).toBeLessThan(0.1);
    await agent.stop();
  });
});
