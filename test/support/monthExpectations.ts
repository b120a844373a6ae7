import { expect } from 'vitest';
import type { TestGateway } from './gateway.ts';
import { allAlerts, alertScorer, type ExpectedAlert, type ListedAlert, type ReplayResult, type Scenario } from './scenario.ts';

/**
 * What the month tests assert about the public month once it has been replayed: one gateway
 * (scenario, hazard, keystaff.scenario, wages.scenario e2e) or a region of them behind a balancer
 * (region.month.e2e), which must give exactly the same results. `api` is a gateway's or the
 * balancer's.
 */
type Api = Pick<TestGateway, 'api'>;

const TZ = 'Asia/Shanghai';
/** The calendar day of `t` at the scenario's sites (both in Asia/Shanghai). */
export const localDay = (t: number | string) => new Intl.DateTimeFormat('en-CA', { timeZone: TZ, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date(t));

// ---- stored once (scenario.e2e) ----

/** Every reading and check-in the replay sent is in the ledger once (`counts`: ledger countByKind). */
export function expectStoredOnce(replay: ReplayResult, counts: Record<string, number>) {
  expect(replay.readingsSent).toBe(50_400);
  expect(counts.reading).toBe(replay.readingsSent);
  expect(counts.checkin).toBe(replay.checkinsSent);
}

/** The two payroll CSVs were accepted row by row, and every row is a wage payment in the ledger. */
export function expectPayrollAccepted(s: Scenario, replay: ReplayResult, counts: Record<string, number>) {
  expect(replay.http).toHaveLength(2);
  for (const h of replay.http) {
    expect(h.status).toBe(200);
    expect(h.json.rejected).toBe(0);
  }
  const rows = s.events.filter((e) => e.via === 'http').reduce((n, e) => n + e.body!.trim().split('\n').length - 1, 0);
  expect(counts.wage_payment).toBe(rows);
}

// ---- hazard alerts (hazard.e2e) ----

export const HAZARD_KINDS = new Set(['hazard.threshold', 'hazard.rate']);

/** The hazard alerts among `alerts`, scored as shared/tools/replay.mjs `score()` does for the hazard kinds. */
export function hazardFindings(s: Scenario, alerts: ListedAlert[]) {
  const hazards = alerts.filter((a) => HAZARD_KINDS.has(a.kind));
  const { matches, loose } = alertScorer(s);
  const wanted = (s.expected.alerts as ExpectedAlert[]).filter((a) => HAZARD_KINDS.has(a.kind));
  const forbidden = (s.expected.noAlerts as ExpectedAlert[]).filter((a) => HAZARD_KINDS.has(a.kind));
  return {
    alerts: hazards,
    wanted,
    missed: wanted.filter((exp) => !hazards.some((a) => matches(exp, a))),
    violated: forbidden.filter((exp) => hazards.some((a) => matches(exp, a))),
    falsePositives: hazards.filter((a) => !(s.expected.alerts as ExpectedAlert[]).some((exp) => loose(exp, a))),
  };
}

/** Every expected hazard alert on its day and severity, none of the noAlerts, nothing else. */
export function expectHazardFindings(f: ReturnType<typeof hazardFindings>) {
  expect(f.wanted.length).toBeGreaterThan(0);
  expect(f.missed).toEqual([]);
  expect(f.violated).toEqual([]);
  expect(f.falsePositives.map((a) => ({ kind: a.kind, subject: a.subject, openedAt: a.openedAt, severity: a.severity }))).toEqual([]);
}

// ---- attendance, key staff and check-ins (keystaff.scenario.e2e) ----

/** The kinds of the key-staff and check-in checks. */
export const isKeyStaffKind = (kind: string) => kind.startsWith('keystaff.') || kind.startsWith('checkin.');

/** GET /sites/:id/attendance for the scenario's month, per site. */
export async function attendance(g: Api, s: Scenario) {
  const out: Record<string, any> = {};
  for (const siteId of Object.keys(s.expected.attendance)) {
    const r = await g.api('GET', `/sites/${siteId}/attendance?month=${s.expected.month}`);
    expect(r.status, r.text).toBe(200);
    out[siteId] = r.json;
  }
  return out;
}

/**
 * keystaff.absent is not in expected.json: derived here from the scenario itself. A key-staff
 * member is absent on a working day with no check-in stamped by 10:00, not counting proxy
 * check-ins (a face photo of someone else than the enrolled person, told apart by the fixture's
 * file name: person id = name minus `_N.jpg`).
 */
export function expectedAbsences(s: Scenario): Set<string> {
  const person = (file: string) => file.replace(/_\d+\.jpg$/, '');
  const enrolled = new Map(s.registry.faces.map((f) => [`${f.siteId}/${f.workerId}`, person(f.photo)]));
  const onTime = new Set<string>();
  for (const e of s.events) {
    if (e.via !== 'mqtt' || !e.topic!.endsWith('/checkin')) continue;
    const siteId = e.topic!.split('/')[1]!;
    const p = e.payload as { workerId: string; ts: string | number; method: string };
    const ts = typeof p.ts === 'number' ? p.ts : Date.parse(p.ts);
    const day = localDay(ts);
    if (ts > Date.parse(`${day}T10:00:00+08:00`)) continue;
    const who = enrolled.get(`${siteId}/${p.workerId}`);
    if (p.method === 'face' && e.photo && who && person(e.photo) !== who) continue; // proxy
    onTime.add(`${siteId}/${p.workerId}/${day}`);
  }
  const out = new Set<string>();
  for (const site of s.registry.sites) {
    const workdays = (site.workdays as number[] | undefined) ?? [1, 2, 3, 4, 5, 6];
    const holidays = new Set((site.holidays as string[] | undefined) ?? []);
    for (let d = 1; d <= 30; d++) {
      const day = `${s.expected.month}-${String(d).padStart(2, '0')}`;
      const wd = new Date(`${day}T00:00:00Z`).getUTCDay() || 7;
      if (!workdays.includes(wd) || holidays.has(day)) continue;
      for (const w of s.registry.workers.filter((x) => x.siteId === site.siteId && x.keyRole)) {
        if (!onTime.has(`${site.siteId}/${w.workerId}/${day}`)) out.add(`${site.siteId}/${w.workerId}/${day}`);
      }
    }
  }
  return out;
}

/**
 * Everything the acceptance scorer looks at for attendance, key staff and check-ins, checked
 * against expected.json (`att`: from `attendance`, `alerts`: every alert GET /alerts lists).
 */
export function expectKeyStaffFindings(s: Scenario, att: Record<string, any>, alerts: ListedAlert[]) {
  const { matches, loose } = alertScorer(s);
  // Attendance: exactly the expected days for every worker, and the key-staff rates.
  const wrongDays: string[] = [];
  for (const [siteId, workers] of Object.entries(s.expected.attendance as Record<string, Record<string, { days: number }>>)) {
    expect(att[siteId].workingDays).toBe(s.expected.workingDays);
    const got = new Map<string, any>(att[siteId].workers.map((w: any) => [w.workerId, w]));
    for (const [workerId, want] of Object.entries(workers)) {
      const g = got.get(workerId);
      if (g?.daysPresent !== want.days || g?.days.length !== want.days) wrongDays.push(`${siteId}/${workerId}: ${g?.daysPresent} != ${want.days}`);
    }
    for (const [workerId, want] of Object.entries(s.expected.keyStaff[siteId] as Record<string, { rate: number; role: string }>)) {
      const g = got.get(workerId);
      if (!(typeof g?.rate === 'number' && Math.abs(g.rate - want.rate) < 0.005 && g.keyRole === want.role)) wrongDays.push(`${siteId}/${workerId}: rate ${g?.rate} != ${want.rate}`);
    }
  }
  expect(wrongDays).toEqual([]);

  const expectedOurs = (s.expected.alerts as ExpectedAlert[]).filter((e) => isKeyStaffKind(e.kind));
  expect(expectedOurs.length).toBeGreaterThanOrEqual(12);
  expect(expectedOurs.filter((e) => !alerts.some((a) => matches(e, a)))).toEqual([]);
  expect((s.expected.noAlerts as ExpectedAlert[]).filter((e) => alerts.some((a) => matches(e, a)))).toEqual([]);
  // False positives, as the scorer counts them (its scored kinds), for the kinds of this issue.
  const scoredKinds = new Set([...s.expected.alerts, ...s.expected.noAlerts].map((a: ExpectedAlert) => a.kind));
  scoredKinds.add('keystaff.attendance_low');
  const falsePositives = alerts.filter((a) => scoredKinds.has(a.kind) && isKeyStaffKind(a.kind) && !(s.expected.alerts as ExpectedAlert[]).some((e) => loose(e, a)));
  expect(falsePositives.map((a) => `${a.kind} ${a.siteId} ${JSON.stringify(a.subject)} ${localDay(a.openedAt)}`)).toEqual([]);

  // keystaff.absent, which the scorer leaves out: exactly the absences the scenario implies.
  const absent = alerts.filter((a) => a.kind === 'keystaff.absent').map((a) => `${a.siteId}/${a.subject.workerId}/${localDay(a.openedAt)}`);
  expect(new Set(absent).size).toBe(absent.length);
  expect([...absent].sort()).toEqual([...expectedAbsences(s)].sort());

  // One alert per condition and subject (contract §5 keys): no duplicates.
  const keyOf = (a: ListedAlert) => `${a.kind}|${a.siteId}|${a.subject.workerId}|${a.kind === 'checkin.unknown_worker' ? '' : a.kind === 'keystaff.attendance_low' ? a.openedAt.slice(0, 7) : localDay(a.openedAt)}`;
  const ours = alerts.filter((a) => isKeyStaffKind(a.kind));
  expect(new Set(ours.map(keyOf)).size).toBe(ours.length);
}

/**
 * The site status (GET /sites/:id/status) after the month: key staff present "today" (the month's
 * last day in event time), people on site now, open alerts (`att`, `alerts` as for expectKeyStaffFindings).
 */
export async function expectSiteStatus(g: Api, s: Scenario, att: Record<string, any>, alerts: ListedAlert[]) {
  for (const siteId of Object.keys(s.expected.attendance)) {
    const st = await g.api('GET', `/sites/${siteId}/status`);
    expect(st.status).toBe(200);
    // "Today" of a replayed month is its last day in event time (the site is not live).
    const lastDay = localDay(st.json.watermark);
    const keyStaff = s.registry.workers.filter((w) => w.siteId === siteId && w.keyRole).map((w) => w.workerId);
    const presentLastDay = att[siteId].workers.filter((w: any) => keyStaff.includes(w.workerId) && w.days.includes(lastDay)).map((w: any) => w.workerId);
    expect(st.json.keyStaffPresentToday.map((k: any) => k.workerId).sort()).toEqual(presentLastDay.sort());
    for (const k of st.json.keyStaffPresentToday) expect(localDay(k.firstCheckin)).toBe(lastDay);
    // On site now: the latest accepted check-in of the day (up to the site's latest event) is an `in`.
    const latest = Date.parse(st.json.watermark);
    const last = new Map<string, { direction: string; ts: number }>();
    for (const e of s.events) {
      if (e.via !== 'mqtt' || e.topic !== `sites/${siteId}/devices/${e.topic!.split('/')[3]}/checkin`) continue;
      const p = e.payload as { workerId: string; ts: string; direction: string; method: string };
      const ts = Date.parse(p.ts);
      if (localDay(ts) !== lastDay || ts > latest || !s.registry.workers.some((w) => w.siteId === siteId && w.workerId === p.workerId)) continue;
      if (alerts.some((a) => a.kind === 'checkin.face_mismatch' && a.siteId === siteId && a.subject.workerId === p.workerId && Date.parse(a.openedAt) === ts)) continue;
      if ((last.get(p.workerId)?.ts ?? -1) <= ts) last.set(p.workerId, { direction: p.direction, ts });
    }
    const inNow = [...last].filter(([, v]) => v.direction === 'in').map(([w]) => w).sort();
    expect(st.json.onSiteNow.map((w: any) => w.workerId).sort()).toEqual(inNow);
    expect(st.json.openAlerts).toBe(alerts.filter((a) => a.siteId === siteId && (a.state === 'open' || a.state === 'acked')).length);
  }
}

// ---- wage findings (wages.scenario.e2e) ----

export type WageFinding = { kind: string; workerId: string; with?: string };

/** Matching as shared/tools/replay.mjs score() does: kind + workerId; a shared card may name either worker of the pair. */
export const wageHit = (want: WageFinding, got: WageFinding) =>
  got.kind === want.kind && (got.workerId === want.workerId || (!!want.with && (got.workerId === want.with || got.with === want.workerId)));

/**
 * GET wage-check gives exactly the expected findings per site, and no others, with the numbers
 * behind them. The wall clock must be past the end of October (the wages of September due).
 */
export async function expectWageFindings(g: Api, s: Scenario) {
  for (const [siteId, expected] of Object.entries(s.expected.wageFindings as Record<string, WageFinding[]>)) {
    const r = await g.api('GET', `/sites/${siteId}/wage-check?month=${s.expected.month}`);
    expect(r.status, r.text).toBe(200);
    expect(r.json.due).toBe(true);
    const got: (WageFinding & Record<string, any>)[] = r.json.findings;
    for (const f of expected) expect(got.some((x) => wageHit(f, x)), `missing ${siteId} ${f.kind} ${f.workerId}`).toBe(true);
    for (const x of got) expect(expected.some((f) => wageHit(f, x)), `extra ${siteId} ${x.kind} ${x.workerId}`).toBe(true);
    expect(got).toHaveLength(expected.length);
    // The numbers behind each finding.
    const byKind = (k: string) => got.find((x) => x.kind === k)!;
    expect(byKind('wage.underpaid')).toMatchObject({ amount: 1500, minDailyWage: 120 });
    expect(byKind('wage.underpaid').minimum).toBe(byKind('wage.underpaid').daysPresent * 120);
    expect(byKind('wage.ghost')).toMatchObject({ daysPresent: 0, amount: 6200 });
    expect(byKind('wage.card_mismatch').registeredCardLast4).toMatch(/^\d{4}$/);
    expect(byKind('wage.card_mismatch').paidCardLast4[0]).not.toBe(byKind('wage.card_mismatch').registeredCardLast4);
    expect(byKind('wage.shared_card')).toMatchObject({ with: expect.any(String), cardLast4: expect.stringMatching(/^\d{4}$/) });
    const unpaid = got.filter((x) => x.kind === 'wage.unpaid');
    expect(unpaid.every((x) => x.daysPresent > 0)).toBe(true);
    expect(unpaid.some((x) => x.payments.some((p: { status: string }) => p.status === 'returned'))).toBe(true);
  }
}

/** The wage alerts GET /alerts lists. */
export async function wageAlerts(g: Api): Promise<ListedAlert[]> {
  return (await allAlerts(g)).filter((a) => a.kind.startsWith('wage.'));
}

/**
 * Time moves on at the sites: a reading stamped just after September's wages fell due (end of
 * October, site time) at each site, so the sites' watermarks pass the due date.
 */
export async function passWageDueDate(g: Api, s: Scenario) {
  for (const site of s.registry.sites) {
    const dev = s.registry.devices.find((d) => d.siteId === site.siteId && String(d.kind) === 'sensor')!;
    const r = await g.api('POST', `/sites/${site.siteId}/devices/${dev.deviceId}/readings`, { id: 'after-due', ts: '2026-11-01T00:30:00+08:00', metrics: { temperature_c: 12 } });
    expect(r.json.accepted, r.text).toBe(1);
  }
}

/** One wage alert per expected finding (site + worker + period), opened at the due date. */
export function expectWageAlerts(s: Scenario, alerts: ListedAlert[]) {
  const expected = Object.entries(s.expected.wageFindings as Record<string, WageFinding[]>).flatMap(([siteId, fs]) => fs.map((f) => ({ siteId, ...f })));
  for (const f of expected) {
    expect(alerts.some((a) => a.siteId === f.siteId && wageHit(f, { kind: a.kind, workerId: a.subject.workerId!, with: a.subject.with })), `no alert for ${f.siteId} ${f.kind} ${f.workerId}`).toBe(true);
  }
  expect(alerts).toHaveLength(expected.length);
  for (const a of alerts as (ListedAlert & { evidence: unknown })[]) {
    expect(a.openedAt).toBe('2026-10-31T16:00:00.000Z'); // the due date: end of October in Asia/Shanghai
    expect(a.evidence).toMatchObject({ period: '2026-09', daysPresent: expect.any(Number) });
  }
}
