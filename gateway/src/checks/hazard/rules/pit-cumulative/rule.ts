/**
 * Foundation-pit cumulative values (mm since the baseline), per domain.md "Hazards":
 * - pit_displacement_mm warning 21, critical 30;
 * - pit_settlement_mm warning 14, critical 20.
 * Source: GB 50497-2019 (建筑基坑工程监测技术标准) alarm values (critical); the warning at 70 % of
 * the alarm value is common practice [Prac]. The reading is already cumulative, so one sample
 * beyond a limit is enough; the absolute value counts (settlement may be reported negative).
 */
import { cumulative } from '../../aggregates.ts';
import { clearLevel, levelOf, round, type HazardRule } from '../../rule.ts';

const SOURCE = 'GB 50497-2019 [Prac: warning = 70 % of alarm]';

export const pitCumulative: HazardRule = {
  id: 'pit-cumulative',
  kind: 'hazard.threshold',
  label: 'cumulative value',
  defaults: {
    pit_displacement_mm: { warning: 21, critical: 30, source: SOURCE },
    pit_settlement_mm: { warning: 14, critical: 20, source: SOURCE },
  },
  lookbackMs: 0,
  reachMs: 0,
  observe(ctx) {
    const value = cumulative(ctx, ctx.j);
    return { level: levelOf(value, ctx.limits), below: value < clearLevel(ctx.limits), value, samples: 1 };
  },
  evidence(obs, limits) {
    return {
      rule: 'pit-cumulative',
      aggregate: 'cumulative',
      value: obs.value,
      warning: limits.warning,
      critical: limits.critical,
      clearLevel: round(clearLevel(limits)),
      samples: 1,
      source: limits.source,
    };
  },
};
