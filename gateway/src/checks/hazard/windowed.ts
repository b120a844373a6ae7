/**
 * Windowed rules (noise Leq, noise maximum, dust means): the aggregate over the window that ends
 * at each sample (domain.md "Windows slide"), fired only once the window holds at least `minFill`
 * of its expected samples (window ÷ interval; domain.md: half).
 */
import { leq, maximum, mean, windowStart, type Samples } from './aggregates.ts';
import type { NoisePeriod } from './calendar.ts';
import { clearLevel, levelOf, round, type HazardRule, type LimitDefaults, type ObserveContext, type Observation } from './rule.ts';

export type WindowAggregate = 'mean' | 'leq' | 'max';

const AGGREGATES: Record<WindowAggregate, (s: Samples, lo: number, j: number) => number> = {
  mean,
  leq,
  max: maximum,
};

export interface WindowedRuleSpec {
  id: string;
  label: string;
  aggregate: WindowAggregate;
  windowMs: number;
  /** Evaluated only on samples of this noise period, over samples of the same period. */
  period?: NoisePeriod;
  /** Fraction of the expected samples the window needs before the rule decides. */
  minFill: number;
  defaults: Record<string, LimitDefaults>;
}

export function windowedRule(spec: WindowedRuleSpec): HazardRule {
  const aggregate = AGGREGATES[spec.aggregate];
  return {
    id: spec.id,
    kind: 'hazard.threshold',
    label: spec.label,
    defaults: spec.defaults,
    lookbackMs: spec.windowMs,
    reachMs: spec.windowMs,
    observe(ctx: ObserveContext): Observation | undefined {
      const t = ctx.ts[ctx.j];
      let notBefore = -Infinity;
      if (spec.period !== undefined) {
        const at = ctx.calendar.noisePeriod(t);
        if (at.period !== spec.period) {
          // The period this rule measures has ended: its alert ends with it (GB 12523-2011 judges
          // each period on its own samples), and the rule waits for the next one.
          return {
            level: 0,
            below: true,
            value: NaN,
            evidence: () => ({ rule: spec.id, reason: 'period_end', period: spec.period }),
          };
        }
        notBefore = at.start;
      }
      const lo = windowStart(ctx, ctx.j, spec.windowMs, notBefore);
      const samples = ctx.j - lo + 1;
      let expected: number | undefined;
      if (spec.minFill > 0) {
        const interval = ctx.intervalMs();
        if (interval === undefined || interval <= 0) return undefined;
        expected = spec.windowMs / interval;
        if (samples < spec.minFill * expected) return undefined;
      }
      const value = aggregate(ctx, lo, ctx.j);
      const clear = clearLevel(ctx.limits);
      return {
        level: levelOf(value, ctx.limits),
        below: value < clear,
        value,
        evidence: () => ({
          rule: spec.id,
          aggregate: spec.aggregate,
          value: round(value),
          warning: ctx.limits.warning,
          critical: ctx.limits.critical,
          clearLevel: round(clear),
          windowS: spec.windowMs / 1000,
          ...(spec.period !== undefined ? { period: spec.period } : {}),
          windowFrom: ctx.ts[lo],
          samples,
          ...(expected !== undefined ? { expectedSamples: round(expected, 2) } : {}),
          source: ctx.limits.source,
        }),
      };
    },
  };
}
