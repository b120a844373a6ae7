/**
 * The samples of one (device, metric), sorted by event time, kept for as long as a late reading may
 * still re-open the windows they belong to (domain.md "Event times": 24 h, plus each rule's
 * look-back). Parallel Float64Arrays in a deque: appends in time order are O(1), a late reading is
 * inserted where its timestamp belongs.
 *
 * Resolution: one entry per device, metric and second of event time (`RESOLUTION_MS`), so memory
 * does not grow with sample density: a device sending every millisecond holds as many entries as
 * one sending every second. An entry holding one sample is that sample, exactly (every real sensor
 * and every scenario month: their readings are seconds apart or more). A second sample in the same
 * second makes the entry a bucket: it keeps the count, the sum, the energy sum (10^(L/10), for Leq)
 * and the maximum of its samples, and as `ts`/`v` its earliest sample. A bucket is evaluated at
 * its earliest sample's time (so an alert opened there keeps its `openedAt` while the second
 * fills), over its samples: windowed rules weigh each bucket by its count (means and Leq over the
 * window are those of the samples), instant rules read the bucket's maximum, cumulative and rate
 * rules its earliest value; a window includes a bucket when its earliest sample is inside it. So
 * a fast device's windows are exact to the second. Inside a bucket, the earliest sample again with
 * the same value is a replay; any other reading counts as one more sample (a bucket does not keep
 * its samples' timestamps, so it cannot tell a correction of one).
 *
 * Indexes are physical (`first` … `end - 1`); they stay valid until the next insert or eviction.
 * `version` changes whenever an entry other than the newest changes or entries move, so that a
 * rule's running window sums (aggregates.ts `SlidingWindow`) know when to start over.
 */
import { LN10_BY_10, type Samples } from './aggregates.ts';

export type InsertOutcome = 'inserted' | 'replaced' | 'unchanged';

/** One entry per second of event time (see the file comment). */
export const RESOLUTION_MS = 1000;

const INITIAL_CAPACITY = 32;

export interface SeriesJSON {
  ts: number[];
  v: number[];
  /** Present once an entry holds more than one sample: count, sum, energy sum, maximum. */
  n?: number[];
  sum?: number[];
  energy?: number[];
  max?: number[];
}

export class Series implements Samples {
  ts: Float64Array;
  v: Float64Array;
  n: Float64Array | null = null;
  sum: Float64Array | null = null;
  energy: Float64Array | null = null;
  max: Float64Array | null = null;
  first = 0;
  end = 0;
  version = 0;

  constructor(capacity = INITIAL_CAPACITY) {
    this.ts = new Float64Array(capacity);
    this.v = new Float64Array(capacity);
  }

  get length(): number {
    return this.end - this.first;
  }

  get latest(): number {
    return this.end > this.first ? this.ts[this.end - 1] : -Infinity;
  }

  /** First physical index whose timestamp is ≥ t (end if none). */
  lowerBound(t: number, from = this.first, to = this.end): number {
    let lo = from;
    let hi = to;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.ts[mid] < t) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /**
   * Places a sample by its own timestamp. A second value for a timestamp already held replaces
   * the first (a device's correction); the same value again is a replay and changes nothing.
   * Returns the outcome, the physical index of the entry, and `from`: the earliest event time at
   * which evaluations may change (the entry's time before this sample, or the sample's own).
   */
  insert(t: number, value: number): { outcome: InsertOutcome; index: number; from: number } {
    const bucketStart = Math.floor(t / RESOLUTION_MS) * RESOLUTION_MS;
    const last = this.end - 1;
    if (this.end === this.first || (t > this.ts[last] && this.ts[last] < bucketStart)) {
      this.reserve();
      this.put(this.end, t, value);
      return { outcome: 'inserted', index: this.end++, from: t };
    }
    let index = this.lowerBound(bucketStart);
    if (index < this.end && this.ts[index] < bucketStart + RESOLUTION_MS) {
      const at = this.ts[index];
      if (this.countAt(index) === 1 && at === t) {
        if (Object.is(this.v[index], value)) return { outcome: 'unchanged', index, from: t };
        this.put(index, t, value);
        if (index !== last) this.version++;
        return { outcome: 'replaced', index, from: t };
      }
      if (at === t && Object.is(this.v[index], value)) return { outcome: 'unchanged', index, from: t };
      this.addToBucket(index, t, value);
      if (index !== last) this.version++;
      return { outcome: 'inserted', index, from: Math.min(at, t) };
    }
    index -= this.reserve();
    this.shiftRight(index);
    this.put(index, t, value);
    this.end++;
    this.version++;
    return { outcome: 'inserted', index, from: t };
  }

  /** Samples held by entry i. */
  countAt(i: number): number {
    return this.n === null ? 1 : this.n[i];
  }

  /**
   * Drops samples older than `cutoff`, keeping `keep` older samples still (the previous sample of
   * an instant rule, the bracket of an interpolation, the gaps the interval is learnt from).
   */
  evictBefore(cutoff: number, keep: number): void {
    const index = this.lowerBound(cutoff) - keep;
    if (index > this.first) this.first = index;
  }

  private put(i: number, t: number, value: number): void {
    this.ts[i] = t;
    this.v[i] = value;
    if (this.n !== null) {
      this.n[i] = 1;
      this.sum![i] = value;
      this.energy![i] = Math.exp(value * LN10_BY_10);
      this.max![i] = value;
    }
  }

  private addToBucket(i: number, t: number, value: number): void {
    this.densify();
    this.n![i]++;
    this.sum![i] += value;
    this.energy![i] += Math.exp(value * LN10_BY_10);
    if (value > this.max![i]) this.max![i] = value;
    if (t < this.ts[i]) {
      this.ts[i] = t;
      this.v[i] = value;
    }
  }

  /** The first bucket with two samples: from now on every entry keeps count, sums and maximum. */
  private densify(): void {
    if (this.n !== null) return;
    const cap = this.ts.length;
    this.n = new Float64Array(cap);
    this.sum = new Float64Array(cap);
    this.energy = new Float64Array(cap);
    this.max = new Float64Array(cap);
    for (let i = this.first; i < this.end; i++) this.put(i, this.ts[i], this.v[i]);
  }

  private columns(): Float64Array[] {
    return this.n === null ? [this.ts, this.v] : [this.ts, this.v, this.n, this.sum!, this.energy!, this.max!];
  }

  private shiftRight(index: number): void {
    for (const c of this.columns()) c.copyWithin(index + 1, index, this.end);
  }

  /** Makes room for one more sample at the end; returns how far existing samples moved left. */
  private reserve(): number {
    if (this.end < this.ts.length) return 0;
    this.version++;
    const shift = this.first;
    const length = this.end - this.first;
    if (shift > 0 && length < this.ts.length * 0.9) {
      for (const c of this.columns()) c.copyWithin(0, shift, this.end);
    } else {
      const capacity = Math.ceil(this.ts.length * 1.25) + 8;
      const grow = (c: Float64Array) => {
        const next = new Float64Array(capacity);
        next.set(c.subarray(shift, this.end));
        return next;
      };
      this.ts = grow(this.ts);
      this.v = grow(this.v);
      if (this.n !== null) {
        this.n = grow(this.n);
        this.sum = grow(this.sum!);
        this.energy = grow(this.energy!);
        this.max = grow(this.max!);
      }
    }
    this.first = 0;
    this.end = length;
    return shift;
  }

  toJSON(): SeriesJSON {
    const slice = (c: Float64Array) => Array.from(c.subarray(this.first, this.end));
    const out: SeriesJSON = { ts: slice(this.ts), v: slice(this.v) };
    if (this.n !== null) {
      out.n = slice(this.n);
      out.sum = slice(this.sum!);
      out.energy = slice(this.energy!);
      out.max = slice(this.max!);
    }
    return out;
  }

  static fromJSON(data: Readonly<SeriesJSON>): Series {
    const capacity = Math.max(INITIAL_CAPACITY, data.ts.length + 1);
    const series = new Series(capacity);
    series.ts.set(data.ts);
    series.v.set(data.v);
    if (data.n !== undefined && data.sum !== undefined && data.energy !== undefined && data.max !== undefined) {
      series.n = Float64Array.from({ length: capacity }, (_, i) => data.n![i] ?? 0);
      series.sum = new Float64Array(capacity);
      series.sum.set(data.sum);
      series.energy = new Float64Array(capacity);
      series.energy.set(data.energy);
      series.max = new Float64Array(capacity);
      series.max.set(data.max);
    }
    series.end = data.ts.length;
    return series;
  }
}
