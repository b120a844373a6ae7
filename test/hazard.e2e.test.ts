import type { Worker } from 'node:worker_threads';
import { beforeAll, describe, expect, it } from 'vitest';
import type { HazardCheck } from '../gateway/src/checks/hazard/hazardCheck.ts';
import { startGateway, type TestGateway } from './support/gateway.ts';
import { expectHazardFindings, HAZARD_KINDS, hazardFindings } from './support/monthExpectations.ts';
import { loadScenario, registerScenario, replayScenario, type Scenario, allAlerts } from './support/scenario.ts';

/**
 * The hazard rules through the whole gateway: the public month (shared/scenarios/public-2026-09)
 * published by its devices over MQTT, committed to the ledger, evaluated by the check runner and
 * read back from GET /alerts, scored as shared/tools/replay.mjs `score()` does for the hazard kinds.
 * Then the same month with the gateway restarted twice mid-month — once after a crash (no
 * snapshot at shutdown, alerts applied after the last snapshot, readings committed but never
 * evaluated), once cleanly — and the rules' worker thread killed once, must end with the very
 * same alerts, none repeated.
 */
/** What must be identical between runs: everything but ids and wall-clock times. */
function summary(g: TestGateway) {
  return g.gw.alerts.list({ limit: 100_000, includeWithdrawn: true }).items
    .filter((a) => HAZARD_KINDS.has(a.kind))
    .map((a) => ({ key: a.key, siteId: a.siteId, openedAt: a.openedAt, severity: a.severity, state: a.state, withdrawn: a.withdrawn, evidence: a.evidence }))
    .sort((a, b) => a.openedAt - b.openedAt || a.key.localeCompare(b.key));
}

describe('hazard rules on the public month, through MQTT and the whole gateway', () => {
  let s: Scenario;
  let reference: ReturnType<typeof summary>;

  beforeAll(() => {
    s = loadScenario();
  });

  it('raises every expected hazard alert on its day and severity, none of the noAlerts, and nothing else', async () => {
    const g = await startGateway();
    try {
      const secrets = await registerScenario(g, s);
      const replay = await replayScenario(g, s, secrets);
      await g.gw.checks.idle();
      const found = hazardFindings(s, await allAlerts(g));
      const stats = g.gw.checks.get<HazardCheck>('hazard')!.stats();
      console.info(`hazard e2e: ${replay.readingsSent} readings in ${replay.seconds.toFixed(1)} s, ${stats.signals} signals, ` +
        `${found.alerts.length} hazard alerts; expected ${found.wanted.length - found.missed.length}/${found.wanted.length}, noAlerts violated ${found.violated.length}, false positives ${found.falsePositives.length}`);
      expect(stats.readings).toBe(replay.readingsSent);
      expectHazardFindings(found);
      reference = summary(g);
    } finally {
      await g.stop();
    }
  }, 300_000);

  it('restarted mid-month (after a crash, then cleanly) ends with the same alerts, none repeated', async () => {
    expect(reference, 'needs the uninterrupted run').toBeDefined();
    const at = (iso: string) => Date.parse(iso);
    const part = (from: number, to: number) => ({ ...s, events: s.events.filter((e) => e.ts >= from && e.ts < to) });
    const SNAPSHOT = at('2026-09-09T12:00:00+08:00'); // after the crane warning of 09-08
    const BLIND = at('2026-09-12T00:00:00+08:00'); // after the dust alerts of 09-10 opened and cleared
    const CRASH = at('2026-09-16T00:00:00+08:00'); // after the wind alert of 09-15
    const CLEAN = at('2026-09-20T00:00:00+08:00'); // while the night-noise alert of 09-19 is open
    const WORKER_DIES = at('2026-09-24T00:00:00+08:00'); // after the crane and pit alerts of 09-23

    let g = await startGateway();
    const dataDir = g.dataDir;
    const secrets = await registerScenario(g, s);
    const hazard = () => g.gw.checks.get<HazardCheck>('hazard')!;
    await replayScenario(g, part(-Infinity, SNAPSHOT), secrets);
    await g.gw.checks.idle();
    await hazard().snapshot();
    await replayScenario(g, part(SNAPSHOT, BLIND), secrets);
    await g.gw.checks.idle();
    const beforeCrash = hazard().stats();
    // Then the check falls behind: readings are committed (and acknowledged) but never evaluated,
    // and the gateway crashes — no snapshot at shutdown, the alerts raised since the snapshot in the store.
    // A crash: no snapshot at the stop; the engines' thread just ends.
    hazard().stop = () => (hazard() as unknown as { worker: Worker }).worker.terminate().then(() => undefined);
    await g.gw.checks.stop();
    await replayScenario(g, part(BLIND, CRASH), secrets);
    await g.stop({ keepDataDir: true });

    g = await startGateway({}, {}, dataDir);
    const restored = hazard().stats();
    // Replayed from the snapshot: the signals of the readings up to the last applied batch were
    // dropped (in the store already); those of the readings the check never saw were applied.
    expect(restored.replayed).toBeGreaterThan(0);
    expect(restored.replayDropped).toBeGreaterThan(0);
    expect(restored.appliedSeq).toBeGreaterThan(beforeCrash.appliedSeq);
    expect(restored.signals).toBeGreaterThan(0);
    await replayScenario(g, part(CRASH, CLEAN), secrets);
    await g.gw.checks.idle();
    await g.stop({ keepDataDir: true }); // clean: snapshot at stop

    g = await startGateway({}, {}, dataDir);
    expect(hazard().stats().replayed).toBe(0);
    try {
      await replayScenario(g, part(CLEAN, WORKER_DIES), secrets);
      await g.gw.checks.idle();
      // The engines' thread dies: the next batch rebuilds it from the snapshot and the ledger.
      await (hazard() as unknown as { worker: Worker }).worker.terminate();
      await replayScenario(g, part(WORKER_DIES, Infinity), secrets);
      await g.gw.checks.idle();
      expect(hazard().stats().restarts).toBe(1);
      const after = summary(g);
      const open = after.filter((a) => !a.withdrawn);
      expect(new Set(open.map((a) => `${a.key}@${a.openedAt}`)).size).toBe(open.length);
      expect(after).toEqual(reference);
    } finally {
      await g.stop();
    }
  }, 300_000);
});
