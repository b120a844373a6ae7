/**
 * Windowed rules (noise Leq, noise maximum, dust means): the aggregate over the window that ends
 * at each sample (domain.md "Windows slide"), fired only once the window holds at least `minFill`
 * of its expected samples (window ÷ interval; domain.md: half).
 */
import { SlidingWindow, windowStart, type WindowAggregate } from './aggregates.ts';
import type { NoisePeriod } from '../../calendar/siteCalendar.ts';
import {
  clearLevel,
  levelOf,
  round,
  type HazardRule,
  type LimitDefaults,
  type Limits,
  type ObserveContext,
  type Observation,
} from './rule.ts';

export type { WindowAggregate };

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
        // The period this rule measures has ended: its alert ends with it (GB 12523-2011 judges
        // each period on its own samples), and the rule waits for the next one.
        if (at.period !== spec.period) return { level: 0, below: true, value: NaN, reason: 'period_end' };
        notBefore = at.start;
      }
      const lo = windowStart(ctx, ctx.j, spec.windowMs, notBefore);
      const window = (ctx.memo.window ??= new SlidingWindow(spec.aggregate));
      const { value, samples } = window.at(ctx, lo, ctx.j, ctx.version);
      let expectedSamples: number | undefined;
      if (spec.minFill > 0) {
        const interval = ctx.intervalMs();
        if (interval === undefined || interval <= 0) return undefined;
        expectedSamples = spec.windowMs / interval;
        if (samples < spec.minFill * expectedSamples) return undefined;
      }
      return {
        level: levelOf(value, ctx.limits),
        below: value < clearLevel(ctx.limits),
        value,
        samples,
        expectedSamples,
        windowFrom: ctx.ts[lo],
      };
    },
    evidence(obs: Observation, limits: Limits): Record<string, unknown> {
      if (obs.reason !== undefined) return { rule: spec.id, reason: obs.reason, period: spec.period };
      return {
        rule: spec.id,
        aggregate: spec.aggregate,
        value: round(obs.value),
        warning: limits.warning,
        critical: limits.critical,
        clearLevel: round(clearLevel(limits)),
        windowS: spec.windowMs / 1000,
        ...(spec.period !== undefined ? { period: spec.period } : {}),
        windowFrom: obs.windowFrom,
        samples: obs.samples,
        ...(obs.expectedSamples !== undefined ? { expectedSamples: round(obs.expectedSamples, 2) } : {}),
        source: limits.source,
      };
    },
  };
}
