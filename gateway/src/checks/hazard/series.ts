/**
 * The samples of one (device, metric), sorted by event time, kept for as long as a late reading may
 * still re-open the windows they belong to (domain.md "Event times": 24 h, plus each rule's
 * look-back). Two parallel Float64Arrays in a deque: appends in time order are O(1), a late
 * reading is inserted where its timestamp belongs.
 *
 * Indexes are physical (`first` … `end - 1`); they stay valid until the next insert or eviction.
 */
export type InsertOutcome = 'inserted' | 'replaced' | 'unchanged';

const INITIAL_CAPACITY = 32;

export class Series {
  ts: Float64Array;
  v: Float64Array;
  first = 0;
  end = 0;

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
   * Returns the outcome and the physical index of the sample.
   */
  insert(t: number, value: number): { outcome: InsertOutcome; index: number } {
    if (this.end === this.first || t > this.ts[this.end - 1]) {
      this.reserve();
      this.ts[this.end] = t;
      this.v[this.end] = value;
      return { outcome: 'inserted', index: this.end++ };
    }
    let index = this.lowerBound(t);
    if (index < this.end && this.ts[index] === t) {
      if (Object.is(this.v[index], value)) return { outcome: 'unchanged', index };
      this.v[index] = value;
      return { outcome: 'replaced', index };
    }
    index -= this.reserve();
    this.ts.copyWithin(index + 1, index, this.end);
    this.v.copyWithin(index + 1, index, this.end);
    this.ts[index] = t;
    this.v[index] = value;
    this.end++;
    return { outcome: 'inserted', index };
  }

  /**
   * Drops samples older than `cutoff`, keeping `keep` older samples still (the previous sample of
   * an instant rule, the bracket of an interpolation, the gaps the interval is learnt from).
   */
  evictBefore(cutoff: number, keep: number): void {
    const index = this.lowerBound(cutoff) - keep;
    if (index > this.first) this.first = index;
  }

  /** Makes room for one more sample at the end; returns how far existing samples moved left. */
  private reserve(): number {
    if (this.end < this.ts.length) return 0;
    const shift = this.first;
    const length = this.end - this.first;
    if (shift > 0 && length < this.ts.length * 0.9) {
      this.ts.copyWithin(0, shift, this.end);
      this.v.copyWithin(0, shift, this.end);
    } else {
      const capacity = Math.ceil(this.ts.length * 1.25) + 8;
      const ts = new Float64Array(capacity);
      const v = new Float64Array(capacity);
      ts.set(this.ts.subarray(shift, this.end));
      v.set(this.v.subarray(shift, this.end));
      this.ts = ts;
      this.v = v;
    }
    this.first = 0;
    this.end = length;
    return shift;
  }

  toJSON(): { ts: number[]; v: number[] } {
    return {
      ts: Array.from(this.ts.subarray(this.first, this.end)),
      v: Array.from(this.v.subarray(this.first, this.end)),
    };
  }

  static fromJSON(data: { ts: readonly number[]; v: readonly number[] }): Series {
    const series = new Series(Math.max(INITIAL_CAPACITY, data.ts.length + 1));
    series.ts.set(data.ts);
    series.v.set(data.v);
    series.end = data.ts.length;
    return series;
  }
}
