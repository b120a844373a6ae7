import { SiteCalendar } from '../../calendar/siteCalendar.ts';
import type { Site } from '../../registry/registry.ts';

/**
 * Minimum daily wage, domain.md "Wages": 120 CNY/day, about a monthly minimum of 2 600 CNY ÷ 21.75
 * days [Loc, configure per region]. Site setting `minDailyWage`.
 */
export const DEFAULT_MIN_DAILY_WAGE = 120;

/**
 * Payment due date, domain.md "Wages": the end of month M+1 for period M [Prac]; 保障农民工工资支付条例
 * 2020 requires payment at least monthly. Site setting `wageDueMonths` (0 = due at the end of M).
 */
export const DEFAULT_WAGE_DUE_MONTHS = 1;

export interface WageSettings {
  minDailyWage: number;
  wageDueMonths: number;
}

export function wageSettings(site: Site): WageSettings {
  return {
    minDailyWage: site.settings.minDailyWage ?? DEFAULT_MIN_DAILY_WAGE,
    wageDueMonths: site.settings.wageDueMonths ?? DEFAULT_WAGE_DUE_MONTHS,
  };
}

/** [start, end) of period `YYYY-MM` in site time, epoch ms. */
export function periodRange(cal: SiteCalendar, period: string): [number, number] {
  return [cal.startOfDay(`${period}-01`), cal.startOfDay(`${SiteCalendar.addMonths(period, 1)}-01`)];
}

/**
 * The due instant of period M: the end of month M + `wageDueMonths` in site time (the first instant
 * of the month after). A payment counts when its `paidAt` is before it.
 */
export function wageDueAt(cal: SiteCalendar, period: string, wageDueMonths: number): number {
  return cal.startOfDay(`${SiteCalendar.addMonths(period, 1 + wageDueMonths)}-01`);
}

/** The latest period whose due date is at or before `t`. */
export function latestDuePeriod(cal: SiteCalendar, t: number, wageDueMonths: number): string {
  return SiteCalendar.addMonths(cal.localMonth(t), -(1 + wageDueMonths));
}
