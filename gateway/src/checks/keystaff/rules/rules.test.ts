/** The pure rules on their edges (the case folders drive them through the whole check). */
import { describe, expect, it } from 'vitest';
import { SiteCalendar } from '../../../calendar/siteCalendar.ts';
import type { CheckinFact } from '../../../attendance/attendance.ts';
import { absentSignal } from './absent.ts';
import { attendanceLowSignal } from './attendanceLow.ts';
import { multiSiteSignals } from './multiSite.ts';

const cal = new SiteCalendar('Asia/Shanghai');
const endOfDay = (d: string) => cal.startOfDay(d) + 86_400_000;
const days = (n: number) => Array.from({ length: n }, (_, i) => `2026-09-${String(i + 1).padStart(2, '0')}`);

describe('attendanceLowSignal', () => {
  const base = { siteId: 'S1', workerId: 'K1', keyRole: 'project_manager' as const, month: '2026-09', minRate: 0.8, endOfDay };

  it('reads 80 % of 25 as exactly 20 days: 20 present is not low, 19 is', () => {
    const workingDays = days(25);
    expect(attendanceLowSignal({ ...base, workingDays, decidedDays: workingDays, presentDays: new Set(days(20)) })).toBeUndefined();
    const low = attendanceLowSignal({ ...base, workingDays, decidedDays: workingDays, presentDays: new Set(days(19)) })!;
    expect(low).toBeDefined();
    // 19 present on days 1–19, then absent: after day 20 ends only 19 + 5 = 24 ≥ 20 … the first
    // day on which present + remaining < 20 is day 25 (19 + 0): decided at month end.
    expect(low.openedAt).toBe(endOfDay('2026-09-25'));
    expect(low.evidence).toMatchObject({ final: true, presentWorkingDays: 19, remainingWorkingDays: 0, workingDays: 25 });
  });

  it('opens as soon as the remaining working days cannot lift the rate', () => {
    const workingDays = days(25);
    // Absent on days 1–6: after day 6, 0 + 19 < 20.
    const low = attendanceLowSignal({ ...base, workingDays, decidedDays: days(10), presentDays: new Set(days(25).slice(6)) })!;
    expect(low.openedAt).toBe(endOfDay('2026-09-06'));
    expect(low.evidence).toMatchObject({ final: false, presentWorkingDays: 0, remainingWorkingDays: 19, bestReachableRate: 0.76 });
  });

  it('counts only working days, and decides nothing for a month without any', () => {
    const workingDays = days(10);
    const presentOffDays = new Set(days(30).slice(10)); // present only on non-working days
    expect(attendanceLowSignal({ ...base, workingDays, decidedDays: days(30), presentDays: presentOffDays })!.evidence).toMatchObject({ presentWorkingDays: 0 });
    expect(attendanceLowSignal({ ...base, workingDays: [], decidedDays: days(30), presentDays: new Set() })).toBeUndefined();
  });
});

describe('absentSignal', () => {
  const cutoff = cal.atHour('2026-09-07', 10);
  const fact = (ts: number, verdict: CheckinFact['verdict'] = 'unverified'): CheckinFact => ({
    seq: 1, id: 'c', siteId: 'S1', deviceId: 'D', workerId: 'K1', ts, receivedAt: ts, direction: 'in', method: 'face', verdict,
  });
  const input = { siteId: 'S1', workerId: 'K1', keyRole: 'safety_officer' as const, day: '2026-09-07', cutoffHour: 10, cutoff };

  it('is present with a check-in at or before the cut-off, also no_face or still unverified', () => {
    expect(absentSignal({ ...input, checkins: [fact(cutoff)] })).toBeUndefined();
    expect(absentSignal({ ...input, checkins: [fact(cutoff - 1, 'no_face')] })).toBeUndefined();
  });

  it('is absent with only proxy check-ins, naming them as evidence, opened at the cut-off', () => {
    const s = absentSignal({ ...input, checkins: [fact(cutoff - 60_000, 'face_mismatch')] })!;
    expect(s).toMatchObject({ kind: 'keystaff.absent', openedAt: cutoff, key: 'keystaff.absent:S1:K1:2026-09-07' });
    expect(s.evidence.rejectedCheckins).toHaveLength(1);
  });
});

describe('multiSiteSignals', () => {
  it('one alert per site involved, opened at the second site\'s first check-in', () => {
    const out = multiSiteSignals({
      workerId: 'K1', day: '2026-09-07',
      sites: [{ siteId: 'A', keyRole: 'project_manager' }, { siteId: 'B' }, { siteId: 'C' }, { siteId: 'D' }],
      firstCheckin: new Map([['A', 3000], ['B', 1000], ['C', 2000]]),
    });
    expect(out.map((s) => [s.siteId, s.openedAt])).toEqual([['A', 2000], ['B', 2000], ['C', 2000]]);
    expect(out[0]!.evidence.otherSites).toEqual(['B', 'C']);
  });

  it('nothing for one site, or when the person is key staff nowhere', () => {
    expect(multiSiteSignals({ workerId: 'K1', day: 'd', sites: [{ siteId: 'A', keyRole: 'supervisor' }, { siteId: 'B' }], firstCheckin: new Map([['A', 1]]) })).toEqual([]);
    expect(multiSiteSignals({ workerId: 'W1', day: 'd', sites: [{ siteId: 'A' }, { siteId: 'B' }], firstCheckin: new Map([['A', 1], ['B', 2]]) })).toEqual([]);
  });
});
