import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { wageCheck } from '../gateway/src/checks/wages/wageCheck.ts';
import { luhnValid } from '../gateway/src/ingest/validate.ts';
import { testCard } from './support/cards.ts';
import { TestClock } from './support/clock.ts';
import { startGateway, type TestGateway } from './support/gateway.ts';

const SITE = 'S-WAGE';
const clock = new TestClock('2026-11-10T12:00:00+08:00'); // after October, before its wages are due
const deps = { checks: [wageCheck], now: clock.now };
const card = (w: string) => testCard(w.charCodeAt(0));

/**
 * The wage rules through the public interfaces: check-ins over HTTP, payments as payroll CSV,
 * findings from GET wage-check, alerts once the site's watermark passes the due date, scopes,
 * restarts and late data.
 */
describe('wage checks end to end', () => {
  let g: TestGateway;
  const tokens: Record<string, string> = {};
  const workers = ['A', 'B', 'C', 'E', 'F', 'G', 'H', 'I'];
  const present: Record<string, number> = { A: 3, B: 2, C: 5, E: 1, F: 1, G: 1, I: 2, KS: 4 };

  const wageAlerts = async (q = '') => (await g.api('GET', `/alerts?siteId=${SITE}&limit=1000${q}`)).json.items.filter((a: { kind: string }) => a.kind.startsWith('wage.'));
  const findings = async (month = '2026-09') => {
    const r = await g.api('GET', `/sites/${SITE}/wage-check?month=${month}`);
    expect(r.status, r.text).toBe(200);
    return r;
  };
  const keys = (fs: { kind: string; workerId?: string; subject?: { workerId: string } }[]) => fs.map((f) => `${f.kind} ${f.workerId ?? f.subject!.workerId}`).sort();

  beforeAll(async () => {
    g = await startGateway({}, deps);
    await g.device(SITE, 'T1', 'face_terminal', '330106');
    await g.device(SITE, 'ENV1', 'sensor', '330106');
    await g.device('S-OTHER', 'T9', 'face_terminal', '511302');
    for (const w of workers) expect((await g.api('PUT', `/sites/${SITE}/workers/${w}`, { name: w, wageCard: card(w) })).status).toBe(201);
    await g.api('PUT', `/sites/${SITE}/workers/KS`, { name: 'key staff', keyRole: 'safety_officer', wageCard: card('K') });
    for (const [name, body] of Object.entries({
      auditor: { role: 'auditor', scope: { sites: [SITE] } }, auditorOut: { role: 'auditor', scope: { sites: ['S-OTHER'] } },
      regulator: { role: 'regulator', scope: { regions: ['3301'] } }, regulatorOut: { role: 'regulator', scope: { regions: ['5113'] } },
      payroll: { role: 'payroll', scope: { sites: [SITE] } }, terminal: { role: 'terminal', scope: { siteId: SITE, deviceId: 'T1' } },
    })) tokens[name] = (await g.api('POST', '/tokens', body)).json.token;
    // Check-ins: day d of September, in at 08:00 and out at 17:00 (E: an `in` alone, still a present day).
    const checkins = Object.entries(present).flatMap(([w, n]) => Array.from({ length: n }, (_, i) => {
      const day = `2026-09-${String(i + 1).padStart(2, '0')}`;
      const ins = [{ id: `${w}-${day}-in`, workerId: w, ts: `${day}T08:00:00+08:00`, direction: 'in', method: 'card' }];
      return w === 'E' ? ins : [...ins, { id: `${w}-${day}-out`, workerId: w, ts: `${day}T17:00:00+08:00`, direction: 'out', method: 'card' }];
    }).flat());
    const r = await g.api('POST', `/sites/${SITE}/devices/T1/checkins`, checkins);
    expect(r.json.accepted, r.text).toBe(checkins.length);
    const paid = '2026-10-10T10:00:00+08:00';
    const csv = 'id,workerId,period,amount,paidAt,card,status\r\n' + [
      ['A-1', 'A', 360, card('A'), 'failed'], ['A-2', 'A', 360, card('A'), 'paid'], // failed, then paid
      ['B-1', 'B', 240, card('B'), 'returned'], // returned: no payment
      ['C-1', 'C', 300, card('C'), 'paid'], ['C-2', 'C', 300, card('C'), 'paid'], // together 5 × 120
      ['E-1', 'E', 120, card('E'), 'paid'], // one day, exactly the minimum
      ['F-1', 'F', 119, card('F'), 'paid'], // one day, below it
      ['H-1', 'H', 6200, card('H'), 'paid'], // never present
      ['I-1', 'I', 240, card('Z'), 'paid'], // to a card not hers
      ['KS-1', 'KS', 1, card('K'), 'paid'], // key staff: outside the wage rules
    ].map(([id, w, amount, c, status]) => `${id},${w},2026-09,${amount},${paid},${c},${status}`).join('\r\n') + '\r\n';
    const p = await g.api('POST', `/sites/${SITE}/wage-payments`, csv, { contentType: 'text/csv', token: tokens.payroll });
    expect(p.json, p.text).toMatchObject({ accepted: 10, rejected: 0 });
    await g.gw.checks.idle();
  }, 120_000);
  afterAll(async () => g?.stop());

  it('the test cards are plausible bank cards', () => {
    for (const w of [...workers, 'K', 'Z']) expect(luhnValid(card(w))).toBe(true);
  });

  it('finds each edge case, and nothing for key staff, for a failed-then-paid or a two-payment minimum', async () => {
    const r = await findings();
    expect(r.json).toMatchObject({ due: true, pending: [], settings: { minDailyWage: 120, wageDueMonths: 1 }, dueAt: '2026-10-31T16:00:00.000Z' });
    expect(keys(r.json.findings)).toEqual(['wage.card_mismatch I', 'wage.ghost H', 'wage.underpaid F', 'wage.unpaid B', 'wage.unpaid G']);
    const f = (k: string, w: string) => r.json.findings.find((x: any) => x.kind === k && x.workerId === w);
    expect(f('wage.unpaid', 'B')).toMatchObject({ daysPresent: 2, payments: [{ id: 'B-1', status: 'returned', amount: 240, cardLast4: card('B').slice(-4) }] });
    expect(f('wage.underpaid', 'F')).toMatchObject({ daysPresent: 1, amount: 119, minimum: 120, shortfall: 1 });
    expect(f('wage.unpaid', 'G')).toMatchObject({ daysPresent: 1, payments: [] });
    expect(f('wage.card_mismatch', 'I')).toMatchObject({ registeredCardLast4: card('I').slice(-4), paidCardLast4: [card('Z').slice(-4)], amount: 240 });
    expect(r.text).not.toContain(card('I'));
    expect(r.text).not.toContain(card('Z'));
  });

  it('is open to auditors of the site and regulators of its region only', async () => {
    const path = `/sites/${SITE}/wage-check?month=2026-09`;
    for (const [who, status] of [['auditor', 200], ['regulator', 200], ['auditorOut', 403], ['regulatorOut', 403], ['payroll', 403], ['terminal', 403]] as const) {
      expect((await g.api('GET', path, undefined, { token: tokens[who] })).status, who).toBe(status);
    }
    expect((await g.api('GET', path, undefined, { token: null })).status).toBe(401);
    expect((await g.api('GET', `/sites/${SITE}/wage-check?month=2026-13`)).status).toBe(400);
  });

  it('raises alerts when the watermark passes the due date (not on the wall clock alone), once per key, across a restart', async () => {
    await g.gw.checks.tick(clock.now());
    expect(await wageAlerts()).toEqual([]);
    const r = await g.api('POST', `/sites/${SITE}/devices/ENV1/readings`, { id: 'nov-1', ts: '2026-11-01T00:30:00+08:00', metrics: { temperature_c: 9 } });
    expect(r.json.accepted).toBe(1);
    await g.gw.checks.tick(clock.now());
    const alerts = await wageAlerts();
    expect(keys(alerts)).toEqual(['wage.card_mismatch I', 'wage.ghost H', 'wage.underpaid F', 'wage.unpaid B', 'wage.unpaid G']);
    const unpaidG = alerts.find((a: any) => a.kind === 'wage.unpaid' && a.subject.workerId === 'G');
    expect(unpaidG).toMatchObject({ severity: 'critical', state: 'open', openedAt: '2026-10-31T16:00:00.000Z', evidence: { period: '2026-09', daysPresent: 1 } });
    // A person closes one; a restart on the same data re-decides the period and repeats nothing.
    expect((await g.api('POST', `/alerts/${unpaidG.id}/resolve`, { note: 'paid in cash, receipt filed' })).status).toBe(200);
    const dataDir = g.dataDir;
    await g.stop({ keepDataDir: true });
    g = await startGateway({}, deps, dataDir);
    await g.gw.checks.tick(clock.now());
    const after = await wageAlerts();
    expect(after.map((a: any) => a.id).sort()).toEqual(alerts.map((a: any) => a.id).sort());
    expect(after.find((a: any) => a.id === unpaidG.id).state).toBe('resolved');
  });

  it('withdraws an alert that a late-arriving payment shows never held, and raises what late data newly shows', async () => {
    const late = 'id,workerId,period,amount,paidAt,card,status\r\n'
      + `B-2,B,2026-09,240,2026-10-20T10:00:00+08:00,${card('B')},paid\r\n` // paid before the due date, reported after it
      + `E-2,E,2026-09,50,2026-10-20T10:00:00+08:00,${card('Z')},paid\r\n`; // E's second payment went to another card
    expect((await g.api('POST', `/sites/${SITE}/wage-payments`, late, { contentType: 'text/csv' })).json.accepted).toBe(2);
    await g.gw.checks.tick(clock.now());
    // Card Z now received pay for I and for E: a shared card, reported on I with E (the lower id of two unregistered holders).
    const now = ['wage.card_mismatch E', 'wage.card_mismatch I', 'wage.ghost H', 'wage.shared_card I', 'wage.underpaid F', 'wage.unpaid G'];
    const alerts = await wageAlerts();
    expect(keys(alerts)).toEqual(now);
    expect(alerts.find((a: any) => a.kind === 'wage.shared_card').subject).toEqual({ workerId: 'I', with: 'E' });
    const withdrawn = (await wageAlerts('&includeWithdrawn=true')).filter((a: any) => a.withdrawn);
    expect(keys(withdrawn)).toEqual(['wage.unpaid B']);
    expect(keys((await findings()).json.findings)).toEqual(now);
  });

  it('before the due date answers what does not depend on it and lists the rest as pending', async () => {
    const csv = `id,workerId,period,amount,paidAt,card,status\r\nI-10,I,2026-10,240,2026-11-10T10:00:00+08:00,${card('Z')},paid\r\n`;
    expect((await g.api('POST', `/sites/${SITE}/wage-payments`, csv, { contentType: 'text/csv' })).json.accepted).toBe(1);
    const r = await findings('2026-10');
    // October is over by the wall clock (wage.ghost is decided); its due date, 30 November, is not.
    expect(r.json).toMatchObject({ due: false, pending: ['wage.unpaid', 'wage.underpaid'], dueAt: '2026-11-30T16:00:00.000Z' });
    expect(keys(r.json.findings)).toEqual(['wage.card_mismatch I', 'wage.ghost I']);
    // No October alert: the watermark is at 1 November.
    await g.gw.checks.tick(clock.now());
    expect((await wageAlerts()).filter((a: any) => a.evidence.period === '2026-10')).toEqual([]);
  });

  it('a site\'s minimum daily wage applies to its findings', async () => {
    const site = g.gw.registry.site(SITE)!;
    expect((await g.api('PUT', `/sites/${SITE}`, { name: site.name, regionCode: site.regionCode, settings: { minDailyWage: 150 } })).status).toBe(200);
    const r = await findings();
    expect(r.json.settings.minDailyWage).toBe(150);
    expect(r.json.findings.find((x: any) => x.kind === 'wage.underpaid' && x.workerId === 'C')).toMatchObject({ daysPresent: 5, amount: 600, minimum: 750 });
  });
});
