import { describe, expect, it } from 'vitest';
import { attendanceBody, ReportBodyError } from './reportBodies.ts';

describe('report bodies', () => {
  it('refuses a report that breaks its response schema instead of sending it', () => {
    const ok = { siteId: 'S1', month: '2026-09', timezone: 'Asia/Shanghai', workingDays: 22, workers: [{ workerId: 'W1', days: ['2026-09-01'], daysPresent: 1, hours: 9 }] };
    expect(JSON.parse(attendanceBody(ok))).toEqual(ok);
    expect(() => attendanceBody({ ...ok, workingDays: 21.5 })).toThrow(ReportBodyError);
    expect(() => attendanceBody({ ...ok, workers: [{ ...ok.workers[0]!, days: ['1 September'] }] })).toThrow(/attendance report does not match its response schema/);
  });
});
