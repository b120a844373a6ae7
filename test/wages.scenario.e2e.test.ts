import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { monthAttendance } from '../gateway/src/attendance/attendance.ts';
import { digestSubject, evidenceMonthClose } from '../gateway/src/checks/evidence-month-close/monthClose.ts';
import { wageCheck } from '../gateway/src/checks/wages/wageCheck.ts';
import { startGateway, type TestGateway } from './support/gateway.ts';
import { TestClock } from './support/clock.ts';
import { expectWageAlerts, expectWageFindings, passWageDueDate, wageAlerts } from './support/monthExpectations.ts';
import { loadScenario, registerScenario, replayScenario, type Scenario } from './support/scenario.ts';

/** The wall clock these tests run at: well after September's data and its wages' due date, so only the site's watermark decides. */
const clock = new TestClock('2026-11-10T12:00:00+08:00');

/**
 * The public month's wage findings, computed by the gateway from what the replay sent (check-ins
 * through MQTT, the payroll CSVs through the API), never copied from expected.json.
 */
describe('public month: wage findings and wage alerts', () => {
  let g: TestGateway;
  let s: Scenario;

  beforeAll(async () => {
    s = loadScenario();
    g = await startGateway({}, { checks: [wageCheck, evidenceMonthClose], now: clock.now });
    const secrets = await registerScenario(g, s);
    // Readings play no part in wages: check-ins, statuses and the payroll CSVs are replayed.
    await replayScenario(g, s, secrets, { filter: (e) => e.via === 'http' || !e.topic!.endsWith('/telemetry') });
    await g.gw.ledger.drained();
    await g.gw.checks.idle();
  }, 300_000);
  afterAll(async () => g?.stop());

  it('attendance of the wage-relevant workers is the expected one (the basis of the findings)', async () => {
    for (const [siteId, workers] of Object.entries(s.expected.attendance as Record<string, Record<string, { days: number }>>)) {
      const got = await monthAttendance(g.gw.registry, g.gw.ledger, g.gw.registry.site(siteId)!, s.expected.month);
      for (const w of got.workers.filter((x) => !x.keyRole)) expect(w.daysPresent, `${siteId}/${w.workerId}`).toBe(workers[w.workerId]!.days);
    }
  });

  it('GET wage-check gives exactly the expected findings per site, and no others, with the numbers behind them', async () => {
    // The wall clock is past the end of October.
    await expectWageFindings(g, s);
  });

  it('raises the wage alerts only when the site\'s watermark passes the due date, once per site + worker + period', async () => {
    // The wall clock is past the due date, the watermark (end of September) is not: nothing yet.
    await g.gw.checks.tick(clock.now());
    expect(await wageAlerts(g)).toEqual([]);
    await passWageDueDate(g, s);
    await g.gw.checks.tick(clock.now());
    const alerts = await wageAlerts(g);
    expectWageAlerts(s, alerts);
    // Ticking again raises nothing new.
    await g.gw.checks.tick(clock.now());
    expect(await wageAlerts(g)).toHaveLength(alerts.length);
  });

  it('closed September in the audit trail with every registered worker\'s evidence root, as served', async () => {
    for (const site of s.registry.sites) {
      const entries = g.gw.audit.bySubject(digestSubject(site.siteId, '2026-09'));
      expect(entries).toHaveLength(1);
      const workers = s.registry.workers.filter((w) => w.siteId === site.siteId).map((w) => w.workerId).sort();
      expect(Object.keys(entries[0]!.data.workers as object).sort()).toEqual(workers);
      const e = await g.api('GET', `/sites/${site.siteId}/workers/${workers.at(-1)}/evidence?month=2026-09`);
      expect(e.json.digest).toMatchObject({ closed: true, matchesRecorded: true });
      expect(e.json.daysPresent).toBe(s.expected.attendance[site.siteId][workers.at(-1)!].days);
    }
    expect(g.gw.audit.verify()).toMatchObject({ ok: true });
  });
});
