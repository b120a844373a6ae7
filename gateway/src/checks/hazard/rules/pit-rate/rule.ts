/**
 * hazard.rate: how fast a cumulative value changes (domain.md "hazard.rate"; GB 50497-2019 [Nat]:
 * alarm on either the cumulative value or its rate).
 *
 * The rate at a sample is the change of the value over the trailing 24 h, its start interpolated
 * between the samples around it ("day" means 24 h here, not a calendar day). Limits per day:
 * - pit_displacement_mm 3 mm, pit_settlement_mm 2 mm, each also alarmed when the rate stays above
 *   50 % of the limit on 3 consecutive days;
 * - water_level_m 0.5 m, rate only.
 *
 * Severity: the rate limit is GB 50497's alarm value, as the cumulative alarm value is critical
 * (pit-cumulative), so rate > limit is `critical`; the 3-consecutive-days condition is the earlier
 * sign and opens the same alert as `warning` (severity rises in place if the rate then passes the
 * limit). In settings, `critical` is the rate limit and `warning` the 3-day level.
 *
 * "3 consecutive days": the changes over the three consecutive 24-h spans ending at the sample
 * (t-24h…t, t-48h…t-24h, t-72h…t-48h) are each above the 3-day level.
 *
 * Clearing: when the rate falls below 90 % (clearRatio) of the limit. Once the 3-day condition
 * has held during the alert, it clears below 90 % of the 3-day level instead: the condition holds
 * at rates below 90 % of the limit, so the literal rule would clear and reopen at every sample.
 */
import { DAY_MS, rate, windowStart } from '../../aggregates.ts';
import { round, type HazardRule, type Level } from '../../rule.ts';

const GB50497 = 'GB 50497-2019 [Nat]';
const SUSTAINED_DAYS = 3;
/** The 3-day level when settings give only a limit: 50 % of it (domain.md). */
export const SUSTAINED_FRACTION = 0.5;

export const pitRate: HazardRule = {
  id: 'pit-rate',
  kind: 'hazard.rate',
  label: 'change over 24 h',
  defaults: {
    pit_displacement_mm: { warning: 3 * SUSTAINED_FRACTION, critical: 3, source: GB50497 },
    pit_settlement_mm: { warning: 2 * SUSTAINED_FRACTION, critical: 2, source: GB50497 },
    water_level_m: { critical: 0.5, source: GB50497 },
  },
  lookbackMs: SUSTAINED_DAYS * DAY_MS,
  reachMs: SUSTAINED_DAYS * DAY_MS,
  observe(ctx) {
    const perDay = rate(ctx, ctx.j);
    if (perDay === undefined) return undefined;
    const { warning, critical, clearRatio } = ctx.limits;
    let level: Level = critical !== undefined && perDay > critical ? 2 : 0;
    let sustained = false;
    let perDays: number[] | undefined;
    if (warning !== undefined && perDay > warning) {
      perDays = [perDay];
      for (let back = 1; back < SUSTAINED_DAYS; back++) {
        const earlier = rate(ctx, ctx.j, DAY_MS, back);
        if (earlier === undefined) break;
        perDays.push(earlier);
      }
      sustained = perDays.length === SUSTAINED_DAYS && perDays.every((d) => d > warning);
      if (sustained && level === 0) level = 1;
    }
    return {
      level,
      below: perDay < clearRatio * (critical ?? Infinity),
      belowHeld: perDay < clearRatio * (warning ?? critical ?? Infinity),
      sustained,
      value: perDay,
      samples: ctx.j - windowStart(ctx, ctx.j, DAY_MS) + 1,
      perDays,
    };
  },
  evidence(obs, limits) {
    return {
      rule: 'pit-rate',
      aggregate: 'rate',
      value: round(obs.value),
      ...(obs.perDays !== undefined ? { perDays: obs.perDays.map((d) => round(d)) } : {}),
      limit: limits.critical,
      sustainedLevel: limits.warning,
      sustained: obs.sustained,
      clearLevel: round(limits.clearRatio * (obs.sustained ? (limits.warning ?? Infinity) : (limits.critical ?? Infinity))),
      windowS: DAY_MS / 1000,
      samples: obs.samples,
      source: limits.source,
    };
  },
};
