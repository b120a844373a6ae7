import { describe, expect, it } from 'vitest';
import { learntInterval, leq, maximum, mean, rate, valueAt, windowStart } from './aggregates.ts';
import { SiteCalendar } from '../../calendar/siteCalendar.ts';
import { Series } from './series.ts';

const MIN = 60_000;

function series(points: [number, number][]): Series {
  const s = new Series(2);
  for (const [t, v] of points) s.insert(t, v);
  return s;
}

describe('aggregates', () => {
  it('Leq is the energy average, not the arithmetic mean', () => {
    const s = series([[0, 60], [MIN, 70]]);
    expect(leq(s, 0, 1)).toBeCloseTo(10 * Math.log10((1e6 + 1e7) / 2), 10);
    expect(leq(s, 0, 1)).toBeCloseTo(67.4036, 3);
    expect(mean(s, 0, 1)).toBe(65);
    expect(maximum(s, 0, 1)).toBe(70);
  });

  it('windows are (t − window, t] and never reach before notBefore', () => {
    const s = series([0, 5, 10, 15, 20].map((m) => [m * MIN, m] as [number, number]));
    expect(windowStart(s, 4, 20 * MIN)).toBe(1);
    expect(windowStart(s, 4, 20 * MIN, 12 * MIN)).toBe(3);
  });

  it('interpolates the value at the start of a rate span', () => {
    const s = series([[0, 10], [12 * 60 * MIN, 11], [36 * 60 * MIN, 14]]);
    expect(valueAt(s, 6 * 60 * MIN)).toBeCloseTo(10.5);
    expect(valueAt(s, -1)).toBeUndefined();
    expect(rate(s, 2)).toBeCloseTo(14 - 11);
    expect(rate(s, 1)).toBeUndefined();
  });

  it('learns the interval as the median gap up to the sample', () => {
    const s = series([0, 5, 10, 60, 65, 70].map((m) => [m * MIN, 1] as [number, number]));
    expect(learntInterval(s, 0)).toBeUndefined();
    expect(learntInterval(s, 5)).toBe(5 * MIN);
    expect(learntInterval(s, 3)).toBe(5 * MIN);
  });
});

describe('Series', () => {
  it('keeps samples sorted whatever the insert order, through growth and eviction', () => {
    const s = new Series(2);
    const order = [5, 1, 9, 3, 7, 2, 8, 4, 6, 0];
    for (const m of order) s.insert(m * MIN, m);
    expect(Array.from(s.ts.subarray(s.first, s.end))).toEqual(order.map((m) => m * MIN).sort((a, b) => a - b));
    s.evictBefore(5 * MIN, 1);
    expect(s.toJSON().v).toEqual([4, 5, 6, 7, 8, 9]);
    for (let m = 10; m < 40; m++) s.insert(m * MIN, m);
    expect(s.toJSON().v).toEqual(Array.from({ length: 36 }, (_, i) => i + 4));
    expect(s.insert(20 * MIN, 20).outcome).toBe('unchanged');
    expect(s.insert(20 * MIN, 21).outcome).toBe('replaced');
  });
});

describe('SiteCalendar', () => {
  it('Asia/Shanghai: 06:00 starts the day, 22:00 the night, 05:59 is still last night', () => {
    const c = new SiteCalendar('Asia/Shanghai');
    expect(c.noisePeriod(Date.parse('2026-09-19T06:00:00+08:00'))).toEqual({ period: 'day', start: Date.parse('2026-09-19T06:00:00+08:00') });
    expect(c.noisePeriod(Date.parse('2026-09-19T21:59:59+08:00')).period).toBe('day');
    expect(c.noisePeriod(Date.parse('2026-09-19T22:00:00+08:00'))).toEqual({ period: 'night', start: Date.parse('2026-09-19T22:00:00+08:00') });
    expect(c.noisePeriod(Date.parse('2026-09-20T05:59:00+08:00'))).toEqual({ period: 'night', start: Date.parse('2026-09-19T22:00:00+08:00') });
    expect(c.localDay(Date.parse('2026-09-19T23:30:00+08:00'))).toBe('2026-09-19');
  });

  it('uses the site zone, DST included (America/New_York, spring forward 2026-03-08)', () => {
    const c = new SiteCalendar('America/New_York');
    // 05:30 EDT on the morning after the change: the night began at 22:00 EST the evening before.
    expect(c.noisePeriod(Date.parse('2026-03-08T05:30:00-04:00'))).toEqual({ period: 'night', start: Date.parse('2026-03-07T22:00:00-05:00') });
    expect(c.noisePeriod(Date.parse('2026-03-08T06:00:00-04:00')).period).toBe('day');
  });
});
