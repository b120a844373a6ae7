/**
 * Aggregates over event time (domain.md "Hazards — thresholds on event time"). Each works on the
 * sorted entries of one series (`ts`, `v`, physical indexes from series.ts) and is evaluated at an
 * entry `j` over the window that ends at it. An entry is one sample, or the bucket of one second's
 * samples of a fast device (series.ts: count, sum, energy sum, maximum), weighted by its count.
 *
 * Sums are exact (exactSum.ts), so a value depends only on the samples in its window, not on the
 * order in which they arrived. `SlidingWindow` keeps them running as the window moves forward
 * (O(1) amortised per reading, whatever the window holds); `mean`, `leq` and `maximum` compute the
 * same numbers from scratch.
 */
import { ExactSum } from './exactSum.ts';

export const DAY_MS = 24 * 60 * 60 * 1000;

export interface Samples {
  readonly ts: Float64Array;
  readonly v: Float64Array;
  /** Per entry, once some entry holds more than one sample (series.ts); null while none does. */
  readonly n?: Float64Array | null;
  readonly sum?: Float64Array | null;
  readonly energy?: Float64Array | null;
  readonly max?: Float64Array | null;
  /** Physical index of the oldest sample held. */
  readonly first: number;
  /** One past the newest sample held. */
  readonly end: number;
}

/** 10^(L/10) = e^(L·ln10/10); exp is cheaper than pow. */
export const LN10_BY_10 = Math.LN10 / 10;

export function countAt(s: Samples, i: number): number {
  return s.n ? s.n[i] : 1;
}

export function sumAt(s: Samples, i: number): number {
  return s.sum ? s.sum[i] : s.v[i];
}

export function energyAt(s: Samples, i: number): number {
  return s.energy ? s.energy[i] : Math.exp(s.v[i] * LN10_BY_10);
}

export function maxAt(s: Samples, i: number): number {
  return s.max ? s.max[i] : s.v[i];
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

/** The sample itself (a bucket's latest sample). */
export function instant(s: Samples, j: number): number {
  return s.v[j];
}

/** Samples in entries lo…j. */
export function count(s: Samples, lo: number, j: number): number {
  if (!s.n) return j - lo + 1;
  let c = 0;
  for (let i = lo; i <= j; i++) c += s.n[i];
  return c;
}

/** Arithmetic mean of the samples in entries lo…j (dust: 1-hour mean). */
export function mean(s: Samples, lo: number, j: number): number {
  const sum = new ExactSum();
  for (let i = lo; i <= j; i++) sum.add(sumAt(s, i));
  return sum.value() / count(s, lo, j);
}

/** Equivalent continuous level, energy average: 10·log10(mean(10^(L/10))) (GB 12523-2011 §3.4). */
export function leq(s: Samples, lo: number, j: number): number {
  const sum = new ExactSum();
  for (let i = lo; i <= j; i++) sum.add(energyAt(s, i));
  return 10 * Math.log10(sum.value() / count(s, lo, j));
}

/** Maximum of the samples in entries lo…j (night maximum level, GB 12523-2011 §4.2). */
export function maximum(s: Samples, lo: number, j: number): number {
  let max = -Infinity;
  for (let i = lo; i <= j; i++) if (maxAt(s, i) > max) max = maxAt(s, i);
  return max;
}

export type WindowAggregate = 'mean' | 'leq' | 'max';

/**
 * The aggregate over entries lo…j, kept running for one rule of one series as its windows move
 * forward: the entries before j are summed once (exact sums, a monotonic deque for the maximum)
 * and only the entries that enter or leave the window are touched; entry j, the newest (its
 * bucket may still be filling), is added at each evaluation. Gives exactly `mean`/`leq`/`maximum`.
 * It starts over when the series says entries before the newest changed (`version`), or when the
 * window moves back (re-evaluation after a late reading).
 */
export class SlidingWindow {
  private version = -1;
  /** Entries [lo, hi) are in the sums. */
  private lo = 0;
  private hi = 0;
  private samples = 0;
  private readonly sum = new ExactSum();
  /** Indexes of entries in [lo, hi) whose maximum no later entry reaches, oldest first. */
  private deque: number[] = [];
  private head = 0;

  constructor(readonly aggregate: WindowAggregate) {}

  /** The aggregate and the sample count over entries lo…j of series `s` at `version`. */
  at(s: Samples, lo: number, j: number, version: number): { value: number; samples: number } {
    if (version !== this.version || lo < this.lo || j < this.hi || lo >= this.hi) this.reset(lo, version);
    while (this.hi < j) this.enter(s, this.hi++);
    while (this.lo < lo) this.leave(s, this.lo++);
    const samples = this.samples + countAt(s, j);
    let value: number;
    if (this.aggregate === 'max') {
      const held = this.head < this.deque.length ? maxAt(s, this.deque[this.head]) : -Infinity;
      value = Math.max(held, maxAt(s, j));
    } else if (this.aggregate === 'mean') {
      value = this.sum.value(sumAt(s, j)) / samples;
    } else {
      value = 10 * Math.log10(this.sum.value(energyAt(s, j)) / samples);
    }
    return { value, samples };
  }

  private reset(lo: number, version: number): void {
    this.version = version;
    this.lo = this.hi = lo;
    this.samples = 0;
    this.sum.clear();
    this.deque.length = 0;
    this.head = 0;
  }

  private enter(s: Samples, i: number): void {
    this.samples += countAt(s, i);
    if (this.aggregate === 'max') {
      const m = maxAt(s, i);
      while (this.deque.length > this.head && maxAt(s, this.deque[this.deque.length - 1]) <= m) this.deque.pop();
      this.deque.push(i);
    } else {
      this.sum.add(this.aggregate === 'mean' ? sumAt(s, i) : energyAt(s, i));
    }
  }

  private leave(s: Samples, i: number): void {
    this.samples -= countAt(s, i);
    if (this.aggregate === 'max') {
      if (this.head < this.deque.length && this.deque[this.head] === i) this.head++;
      if (this.head > 64 && this.head * 2 > this.deque.length) {
        this.deque = this.deque.slice(this.head);
        this.head = 0;
      }
    } else {
      this.sum.remove(this.aggregate === 'mean' ? sumAt(s, i) : energyAt(s, i));
    }
  }
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
 * `gaps` gaps ending at j (a bucket's gap shared by its samples). Only samples up to j count, so the answer is the same whatever order
 * the samples arrived in. Undefined before the second sample.
 */
export function learntInterval(s: Samples, j: number, gaps = 16): number | undefined {
  const lo = Math.max(s.first, j - gaps);
  const n = j - lo;
  if (n <= 0) return undefined;
  const scratch = SCRATCH.length >= n ? SCRATCH : new Float64Array(n);
  for (let k = 0; k < n; k++) {
    // A bucket of c samples (series.ts) spans the gap to the entry before it in c steps.
    const gap = (s.ts[lo + k + 1] - s.ts[lo + k]) / countAt(s, lo + k + 1);
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
