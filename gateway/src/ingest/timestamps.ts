import { RFC3339_WITH_OFFSET } from '../../../schemas/src/common.ts';
import type { Reason } from '../errors.ts';

/** A date-time that looks like RFC 3339 but lacks the offset: `2026-11-02T07:58:12`. */
const LOCAL_DATETIME = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?$/;

/** The largest time a JavaScript Date can hold (ECMA-262 §21.4.1.1): ±8.64e15 ms. */
const MAX_DATE_MS = 8.64e15;

/** Maximum lead of an event time over the gateway clock (domain.md "Event times"). */
export const MAX_FUTURE_MS = 5 * 60_000;

export type TsResult = { ok: true; ms: number } | { ok: false; reason: Reason; message: string };

/** Parses an event time (contract: RFC 3339 with an offset, or epoch ms) and checks its horizon. */
export function parseTimestamp(ts: unknown, now: number): TsResult {
  let ms: number;
  if (typeof ts === 'number') {
    if (!Number.isInteger(ts) || ts < 0 || ts > MAX_DATE_MS) return { ok: false, reason: 'ts_invalid', message: `ts ${ts} is not a non-negative integer of epoch milliseconds` };
    ms = ts;
  } else if (typeof ts === 'string') {
    if (LOCAL_DATETIME.test(ts)) return { ok: false, reason: 'ts_no_offset', message: `ts "${ts}" has no UTC offset (add Z or +08:00)` };
    if (!RFC3339_WITH_OFFSET.test(ts)) return { ok: false, reason: 'ts_invalid', message: `ts "${ts}" is not RFC 3339` };
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
