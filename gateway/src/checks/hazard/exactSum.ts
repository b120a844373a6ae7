/**
 * A running sum that is exact: the total is kept as non-overlapping partials (Shewchuk, "Adaptive
 * precision floating-point arithmetic", 1997; the algorithm of Python's math.fsum), and `value()`
 * rounds it correctly once. Adding and removing values in any order therefore gives the same
 * result as summing the values present from scratch: a sliding window's mean depends only on the
 * samples in the window, never on the order they arrived or were added and removed in — which the
 * hazard engine's order independence (property test) needs. Each add is O(partials), which stays
 * at one to three for real data.
 */
export class ExactSum {
  private partials: number[] = [];
  /** Infinities and NaNs do not take part in the exact sum; they are counted. */
  private posInf = 0;
  private negInf = 0;
  private nan = 0;

  add(x: number): void {
    if (!Number.isFinite(x)) {
      if (Number.isNaN(x)) this.nan++;
      else if (x > 0) this.posInf++;
      else this.negInf++;
      return;
    }
    const p = this.partials;
    let i = 0;
    for (let k = 0; k < p.length; k++) {
      let y = p[k];
      if (Math.abs(x) < Math.abs(y)) {
        const t = x;
        x = y;
        y = t;
      }
      const hi = x + y;
      const lo = y - (hi - x);
      if (lo !== 0) p[i++] = lo;
      x = hi;
    }
    p.length = i;
    if (x !== 0) p.push(x);
  }

  remove(x: number): void {
    if (!Number.isFinite(x)) {
      if (Number.isNaN(x)) this.nan--;
      else if (x > 0) this.posInf--;
      else this.negInf--;
      return;
    }
    this.add(-x);
  }

  clear(): void {
    this.partials.length = 0;
    this.posInf = this.negInf = this.nan = 0;
  }

  /** The exact sum (plus `extra`), correctly rounded to a double. */
  value(extra = 0): number {
    if (this.nan > 0 || (this.posInf > 0 && this.negInf > 0)) return NaN;
    if (this.posInf > 0) return Number.isNaN(extra) || extra === -Infinity ? NaN : Infinity;
    if (this.negInf > 0) return Number.isNaN(extra) || extra === Infinity ? NaN : -Infinity;
    if (!Number.isFinite(extra)) return extra;
    if (extra === 0) return roundPartials(this.partials);
    const saved = this.partials.slice();
    this.add(extra);
    const out = roundPartials(this.partials);
    this.partials = saved;
    return out;
  }
}

/** Correctly rounded sum of non-overlapping partials in increasing magnitude (CPython math_fsum). */
function roundPartials(p: readonly number[]): number {
  let n = p.length;
  if (n === 0) return 0;
  let hi = p[--n];
  let lo = 0;
  while (n > 0) {
    const x = hi;
    const y = p[--n];
    hi = x + y;
    lo = y - (hi - x);
    if (lo !== 0) break;
  }
  // Half-even rounding across several partials.
  if (n > 0 && ((lo < 0 && p[n - 1] < 0) || (lo > 0 && p[n - 1] > 0))) {
    const y = lo * 2;
    const x = hi + y;
    if (y === x - hi) hi = x;
  }
  return hi;
}
