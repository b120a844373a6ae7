/**
 * Aggregates over event time (domain.md "Hazards — thresholds on event time"). Each works on the
 * sorted samples of one series (`ts`, `v`, physical indexes from series.ts) and is evaluated at a
 * sample `j` over the window that ends at it. Sums are taken in index order over the window every
 * time, never from running totals, so a value depends only on the samples in its window, not on
 * the order in which they arrived.
 */

export const DAY_MS = 24 * 60 * 60 * 1000;

export interface Samples {
  readonly ts: Float64Array;
  readonly v: Float64Array;
  /** Physical index of the oldest sample held. */
  readonly first: number;
  /** One past the newest sample held. */
  readonly end: number;
}

/** First index in [first, end) whose timestamp is ≥ t. */
export function lowerBound(s: Samples, t: number, from = s.first, to = s.end): number {
  let lo = from;
  let hi = to;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (s.ts[mid] < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Index of the oldest sample of the window (j's time − windowMs, j's time], not earlier than
 * `notBefore` (the start of a noise period: GB 12523-2011 measures within one period).
 */
export function windowStart(s: Samples, j: number, windowMs: number, notBefore = -Infinity): number {
  const from = Math.max(s.ts[j] - windowMs + 1, notBefore);
  return lowerBound(s, from, s.first, j + 1);
}

/** The sample itself. */
export function instant(s: Samples, j: number): number {
  return s.v[j];
}

/** Arithmetic mean of samples lo…j (dust: 1-hour mean). */
export function mean(s: Samples, lo: number, j: number): number {
  let sum = 0;
  for (let i = lo; i <= j; i++) sum += s.v[i];
  return sum / (j - lo + 1);
}

/** 10^(L/10) = e^(L·ln10/10); exp is cheaper than pow. */
const LN10_BY_10 = Math.LN10 / 10;

/** Equivalent continuous level, energy average: 10·log10(mean(10^(L/10))) (GB 12523-2011 §3.4). */
export function leq(s: Samples, lo: number, j: number): number {
  let sum = 0;
  for (let i = lo; i <= j; i++) sum += Math.exp(s.v[i] * LN10_BY_10);
  return 10 * Math.log10(sum / (j - lo + 1));
}

/** Maximum of samples lo…j (night maximum level, GB 12523-2011 §4.2). */
export function maximum(s: Samples, lo: number, j: number): number {
  let max = -Infinity;
  for (let i = lo; i <= j; i++) if (s.v[i] > max) max = s.v[i];
  return max;
}

/**
 * Cumulative value (pit displacement, settlement): the reading is already the total since the
 * baseline. GB 50497-2019 compares its absolute value (settlement may be reported negative).
 */
export function cumulative(s: Samples, j: number): number {
  return Math.abs(s.v[j]);
}

/**
 * The series' value at time t, interpolated linearly between the samples around it; undefined
 * before the first sample held or after the last.
 */
export function valueAt(s: Samples, t: number, to = s.end): number | undefined {
  const i = lowerBound(s, t, s.first, to);
  if (i < to && s.ts[i] === t) return s.v[i];
  if (i === s.first || i === to) return undefined;
  const t0 = s.ts[i - 1];
  const t1 = s.ts[i];
  return s.v[i - 1] + ((s.v[i] - s.v[i - 1]) * (t - t0)) / (t1 - t0);
}

/**
 * Rate at sample j: the change of the cumulative value over the trailing `spanMs` (24 h by
 * default: GB 50497-2019 gives rates per day), its start interpolated; `daysBack` shifts the span
 * back by whole spans (the 3-consecutive-days condition). Undefined while the data do not reach
 * back to the span's start. The magnitude counts: a pit moving back is moving too.
 */
export function rate(s: Samples, j: number, spanMs = DAY_MS, daysBack = 0): number | undefined {
  const end = s.ts[j] - daysBack * spanMs;
  const to = j + 1;
  const v1 = daysBack === 0 ? s.v[j] : valueAt(s, end, to);
  const v0 = valueAt(s, end - spanMs, to);
  if (v0 === undefined || v1 === undefined) return undefined;
  return Math.abs(v1 - v0);
}

/**
 * The device's sampling interval at sample j, learnt from its spacing: the median of the (up to)
 * `gaps` gaps ending at j. Only samples up to j count, so the answer is the same whatever order
 * the samples arrived in. Undefined before the second sample.
 */
export function learntInterval(s: Samples, j: number, gaps = 16): number | undefined {
  const lo = Math.max(s.first, j - gaps);
  const n = j - lo;
  if (n <= 0) return undefined;
  const scratch = SCRATCH.length >= n ? SCRATCH : new Float64Array(n);
  for (let k = 0; k < n; k++) {
    const gap = s.ts[lo + k + 1] - s.ts[lo + k];
    let m = k;
    while (m > 0 && scratch[m - 1] > gap) {
      scratch[m] = scratch[m - 1];
      m--;
    }
    scratch[m] = gap;
  }
  return n % 2 === 1 ? scratch[(n - 1) >> 1] : (scratch[n / 2 - 1] + scratch[n / 2]) / 2;
}

const SCRATCH = new Float64Array(64);
