import { RFC3339_WITH_OFFSET } from '../../../schemas/src/common.ts';
import type { Reason } from '../errors.ts';
import { SiteCalendar } from '../calendar/siteCalendar.ts';

/** A date-time that looks like RFC 3339 but lacks the offset: `2026-11-02T07:58:12`. */
const LOCAL_DATETIME = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?$/;

/** The largest time a JavaScript Date can hold (ECMA-262 §21.4.1.1): ±8.64e15 ms. */
const MAX_DATE_MS = 8.64e15;

/** Maximum lead of an event time over the gateway clock (domain.md "Event times"). */
export const MAX_FUTURE_MS = 5 * 60_000;

export type TsResult = { ok: true; ms: number } | { ok: false; reason: Reason; message: string };

const FIELDS = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|[+-](\d{2}):(\d{2}))$/;


/**
 * The ranges of RFC 3339 §5.7 that the pattern cannot say: a day that exists in its month
 * (30 February does not; Date.parse would roll it into March), hour 00–23, minute 00–59,
 * second 00–59 (a leap second 60 cannot be told from a typo without a leap-second table, and a
 * JavaScript Date cannot hold it), offset hour 00–23 and minute 00–59. Undefined when valid.
 */
function calendarError(ts: string): string | undefined {
  const m = FIELDS.exec(ts);
  if (!m) return 'unreadable fields';
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (mo < 1 || mo > 12) return `month ${m[2]} does not exist`;
  if (d < 1 || d > SiteCalendar.daysIn(y, mo)) return `day ${m[3]} does not exist in ${m[1]}-${m[2]}`;
  if (h > 23) return `hour ${m[4]} is beyond 23`;
  if (mi > 59) return `minute ${m[5]} is beyond 59`;
  if (s > 59) return `second ${m[6]} is beyond 59`;
  if (m[7] !== undefined && (Number(m[7]) > 23 || Number(m[8]) > 59)) return `offset ${m[7]}:${m[8]} is out of range`;
  return undefined;
}

/** Parses an event time (contract: RFC 3339 with an offset, or epoch ms) and checks its horizon. */
export function parseTimestamp(ts: unknown, now: number): TsResult {
  let ms: number;
  if (typeof ts === 'number') {
    if (!Number.isInteger(ts) || ts < 0 || ts > MAX_DATE_MS) return { ok: false, reason: 'ts_invalid', message: `ts ${ts} is not a non-negative integer of epoch milliseconds` };
    ms = ts;
  } else if (typeof ts === 'string') {
    if (LOCAL_DATETIME.test(ts)) return { ok: false, reason: 'ts_no_offset', message: `ts "${ts}" has no UTC offset (add Z or +08:00)` };
    if (!RFC3339_WITH_OFFSET.test(ts)) return { ok: false, reason: 'ts_invalid', message: `ts "${ts}" is not RFC 3339` };
    const impossible = calendarError(ts);
    if (impossible) return { ok: false, reason: 'ts_invalid', message: `ts "${ts}" is not a valid date-time: ${impossible}` };
    ms = Date.parse(ts);
    if (Number.isNaN(ms) || Math.abs(ms) > MAX_DATE_MS) return { ok: false, reason: 'ts_invalid', message: `ts "${ts}" is not a valid date-time` };
  } else {
    return { ok: false, reason: 'ts_invalid', message: 'ts is missing or not a string or number' };
  }
  if (ms > now + MAX_FUTURE_MS) {
    return { ok: false, reason: 'ts_in_future', message: `ts ${new Date(ms).toISOString()} is more than 5 min ahead of the gateway clock` };
  }
  return { ok: true, ms };
}
