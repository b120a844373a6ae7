/**
 * Site-local time for every check (hazard periods, attendance days, months, cut-offs). Calendar logic follows the site's IANA time zone, never
 * the server's (contract.md "Calendar logic"; domain.md "Calendar"). Intl only, no extra deps.
 */
import { boundedMemo } from '../util/boundedMemo.ts';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** GB 12523-2011 §3: day 06:00–22:00, night 22:00–06:00 local time. */
export const DAY_STARTS_AT = 6 * HOUR;
export const NIGHT_STARTS_AT = 22 * HOUR;

export type NoisePeriod = 'day' | 'night';

export interface PeriodAt {
  period: NoisePeriod;
  /** Event time (epoch ms) at which this period began. */
  start: number;
}

/** Offsets only change on whole quarter hours in every zone in use. */
const BUCKET = 15 * MINUTE;
const CACHE_LIMIT = 8192;

export class SiteCalendar {
  readonly timeZone: string;
  private readonly format: Intl.DateTimeFormat;

  private static readonly shared = new Map<string, SiteCalendar>();

  /** One calendar per zone for the whole process (its offset cache is worth sharing). */
  static of(timeZone: string): SiteCalendar {
    let c = SiteCalendar.shared.get(timeZone);
    if (!c) SiteCalendar.shared.set(timeZone, (c = new SiteCalendar(timeZone)));
    return c;
  }

  constructor(timeZone: string) {
    // Throws RangeError on an unknown zone: a misconfigured site fails loudly at construction.
    this.format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    this.timeZone = this.format.resolvedOptions().timeZone;
  }

  /** Local time minus UTC at `ts`, in ms. */
  offsetMs(ts: number): number {
    return this.offsetAt(Math.floor(ts / BUCKET));
  }

  /** The offset at the start of a quarter-hour bucket, from Intl once per bucket. */
  private readonly offsetAt = boundedMemo((bucket: number): number => {
    const at = bucket * BUCKET;
    const parts: Record<string, number> = {};
    for (const p of this.format.formatToParts(at)) {
      if (p.type !== 'literal') parts[p.type] = Number(p.value);
    }
    return Date.UTC(parts.year, parts.month - 1, parts.day, parts.hour, parts.minute, parts.second) - at;
  }, CACHE_LIMIT);

  /** `YYYY-MM-DD` of `ts` in site time. */
  localDay(ts: number): string {
    return new Date(ts + this.offsetMs(ts)).toISOString().slice(0, 10);
  }

  /** The noise period (GB 12523-2011) that `ts` falls in, and when it began. */
  noisePeriod(ts: number): PeriodAt {
    const offset = this.offsetMs(ts);
    const local = ts + offset;
    const ofDay = ((local % DAY) + DAY) % DAY;
    let period: NoisePeriod;
    let localStart: number;
    if (ofDay >= NIGHT_STARTS_AT) {
      period = 'night';
      localStart = local - (ofDay - NIGHT_STARTS_AT);
    } else if (ofDay >= DAY_STARTS_AT) {
      period = 'day';
      localStart = local - (ofDay - DAY_STARTS_AT);
    } else {
      period = 'night';
      localStart = local - ofDay - (DAY - NIGHT_STARTS_AT);
    }
    // Across a DST change inside the period the offset at its start differs from the offset now.
    const start = localStart - this.offsetMs(localStart - offset);
    return { period, start };
  }

  /** Epoch ms of local midnight starting `day` (YYYY-MM-DD) in site time. */
  startOfDay(day: string): number {
    const [y, m, d] = day.split('-').map(Number) as [number, number, number];
    const guess = Date.UTC(y, m - 1, d);
    // The offset at local midnight; try the offset found at the guess, then correct once for DST.
    let t = guess - this.offsetMs(guess);
    t = guess - this.offsetMs(t);
    return t;
  }

  /** Epoch ms of `hour`:00 local on `day`. */
  atHour(day: string, hour: number): number {
    const noonish = this.startOfDay(day) + hour * HOUR;
    return noonish + (this.offsetMs(this.startOfDay(day)) - this.offsetMs(noonish));
  }

  /** `YYYY-MM` of `ts` in site time. */
  localMonth(ts: number): string {
    return this.localDay(ts).slice(0, 7);
  }

  /** How many days month `m` (1–12) of year `y` has. */
  static daysIn(y: number, m: number): number {
    return new Date(Date.UTC(y, m, 0)).getUTCDate();
  }

  /** Every date of a month `YYYY-MM`, in order. */
  static daysOfMonth(month: string): string[] {
    const [y, m] = month.split('-').map(Number) as [number, number];
    const n = SiteCalendar.daysIn(y, m);
    return Array.from({ length: n }, (_, i) => `${month}-${String(i + 1).padStart(2, '0')}`);
  }

  /** ISO weekday (1 = Monday … 7 = Sunday) of a date `YYYY-MM-DD`. */
  static isoWeekday(day: string): number {
    const wd = new Date(`${day}T00:00:00Z`).getUTCDay();
    return wd === 0 ? 7 : wd;
  }

  /** The calendar date `n` days after `YYYY-MM-DD` (before, for negative `n`): date arithmetic, no time zone involved. */
  static addDays(day: string, n: number): string {
    const [y, m, d] = day.split('-').map(Number) as [number, number, number];
    return new Date(Date.UTC(y, m - 1, d + n)).toISOString().slice(0, 10);
  }

  /** The month after `YYYY-MM`, `n` months on. */
  static addMonths(month: string, n: number): string {
    const [y, m] = month.split('-').map(Number) as [number, number];
    const d = new Date(Date.UTC(y, m - 1 + n, 1));
    return d.toISOString().slice(0, 7);
  }
}
