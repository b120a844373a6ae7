import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './support/gateway.ts';
import { expectStatsMatchList } from './support/alertFigures.ts';
import { settled } from './support/settle.ts';
import { expectPayrollAccepted, expectStoredOnce } from './support/monthExpectations.ts';
import { loadScenario, registerScenario, replayScenario, type ReplayResult, type Scenario } from './support/scenario.ts';

/**
 * The public month (shared/scenarios/public-2026-09, copied to test/fixtures) replayed into a
 * real gateway through its public interfaces only: registry through the API, device traffic
 * through MQTT with each device's own credentials, wage payments as the CSV the payroll posts.
 */
describe('public month replayed through MQTT and the API', () => {
  let g: TestGateway;
  let s: Scenario;
  let replay: ReplayResult;
  let secrets: Record<string, string>;
  const BAD = 7;

  beforeAll(async () => {
    s = loadScenario();
    g = await startGateway();
    secrets = await registerScenario(g, s);
    replay = await replayScenario(g, s, secrets);
    // Messages the contract rejects, sent by a scenario device after the month: never stored.
    const dev = s.registry.devices.find((d) => d.deviceId.startsWith('ENV'))!;
    const c = await mqtt.connectAsync(g.mqttUrl, { username: dev.deviceId, password: secrets[dev.deviceId], reconnectPeriod: 0 });
    const topic = `sites/${dev.siteId}/devices/${dev.deviceId}/telemetry`;
    const bad = [
      { id: 'bad-1', ts: '2026-09-30T10:00:00', metrics: { pm10: 1 } },
      { id: 'bad-2', ts: Date.now() + 3_600_000, metrics: { pm10: 1 } },
      { id: 'bad-3', ts: 1790000000000, metrics: { pm10: 'high' } },
      { id: 'bad-4', ts: 1790000000000, metrics: {} },
      { id: 'bad-5', metrics: { pm10: 1 } },
      { batch: Array.from({ length: 1001 }, (_, i) => ({ id: `b${i}`, ts: 1790000000000, metrics: { pm10: 1 } })) },
    ];
    for (const m of bad) await c.publishAsync(topic, JSON.stringify(m), { qos: 1 });
    await c.publishAsync(topic, '{"id":', { qos: 1 });
    // …and a redelivery of the month's first reading: counted once.
    const first = s.events.find((e) => e.topic === topic)!;
    await c.publishAsync(topic, JSON.stringify(first.payload), { qos: 1 });
    await c.endAsync();
  }, 300_000);
  afterAll(async () => g?.stop());

  it('stores every reading and check-in sent, once, and none of the rejected ones', async () => {
    expectStoredOnce(replay, await g.gw.ledger.countByKind());
    const m = await g.gw.metrics.registry.getSingleMetric('sitegate_messages_rejected_total')!.get();
    expect(m.values.reduce((a, v) => a + v.value, 0)).toBe(BAD);
    const dup = await g.gw.metrics.registry.getSingleMetric('sitegate_messages_duplicate_total')!.get();
    expect(dup.values.reduce((a, v) => a + v.value, 0)).toBe(1);
  });

  it('accepts the payroll CSVs row by row', async () => {
    expectPayrollAccepted(s, replay, await g.gw.ledger.countByKind());
  });

  it('shows the devices and their latest readings in the site status', async () => {
    const st = await g.api('GET', `/sites/${s.registry.sites[0]!.siteId}/status`);
    expect(st.status).toBe(200);
    const withReadings = st.json.devices.filter((d: any) => Object.keys(d.latest).length > 0);
    expect(withReadings.length).toBeGreaterThan(0);
    expect(st.json.watermark.startsWith('2026-09-30') || st.json.watermark.startsWith('2026-10-01')).toBe(true);
  });

  it('reports alert figures (/stats/alerts, contract §6) equal to what GET /alerts lists for the month', async () => {
    await settled(g.gw);
    const stats = await expectStatsMatchList(g);
    expect(stats.total.raised).toBeGreaterThan(0);
    const month = await expectStatsMatchList(g, undefined, 'from=2026-09-01T00:00:00%2B08:00&to=2026-10-01T00:00:00%2B08:00');
    expect(month.total.raised).toBeGreaterThan(0);
  });
});
