/**
 * Instant limits: each sample on its own (domain.md "Hazards"). Fires on the first sample beyond
 * the critical limit, and on two consecutive samples beyond the warning limit (one stray sample
 * above warning is noise, not a hazard); clears on two consecutive samples below the clear level.
 * "Consecutive" is in event-time order of the device's samples of that metric. A fast device's
 * second of samples (series.ts, one bucket a second) counts as one sample at its maximum, so a
 * spike is never averaged away: two consecutive seconds beyond the warning limit open a warning.
 */
import { maxAt } from '../../aggregates.ts';
import { clearLevel, levelOf, round, type HazardRule, type Level, type LimitDefaults } from '../../rule.ts';

const CRANE = 'monitoring practice; the limiter cuts at 110 % [Prac]';

export const INSTANT_DEFAULTS: Record<string, LimitDefaults> = {
  // Beaufort force 6 is 10.8–13.8 m/s: crane work stops from its start; beyond it is force 7 [Prac].
  wind_speed_ms: { warning: 10.8, critical: 13.8, source: 'site practice (Beaufort 6 / 7) [Prac]' },
  crane_moment_pct: { warning: 90, critical: 100, source: CRANE },
  crane_load_pct: { warning: 90, critical: 100, source: CRANE },
  // Tower verticality: 4/1000 of height is JGJ 196-2010's limit; warning at 3/1000 (in degrees).
  crane_tilt_deg: { warning: 0.17, critical: 0.23, source: 'JGJ 196-2010 [Nat]' },
  hoist_load_pct: { warning: 90, critical: 100, source: 'monitoring practice [Prac]' },
  // Combustible gas: detectors' low and high alarm points as domain.md sets them [Prac].
  gas_lel_pct: { warning: 10, critical: 25, source: 'detector practice [Prac]' },
};

export const instant: HazardRule = {
  id: 'instant',
  kind: 'hazard.threshold',
  label: 'reading',
  defaults: INSTANT_DEFAULTS,
  lookbackMs: 0,
  reachMs: 0,
  observe(ctx) {
    const value = maxAt(ctx, ctx.j);
    const { warning, critical } = ctx.limits;
    const clear = clearLevel(ctx.limits);
    if (ctx.j === ctx.first) return { level: critical !== undefined && value > critical ? 2 : 0, below: false, value, samples: 1 };
    const previous = maxAt(ctx, ctx.j - 1);
    let level: Level = 0;
    if (critical !== undefined && value > critical) level = 2;
    else if (levelOf(value, ctx.limits) === 1 && previous > (warning as number)) level = 1;
    return { level, below: value < clear && previous < clear, value, samples: 2, previous, previousAt: ctx.ts[ctx.j - 1] };
  },
  evidence(obs, limits) {
    return {
      rule: 'instant',
      aggregate: 'instant',
      value: obs.value,
      ...(obs.previous !== undefined ? { previous: obs.previous, previousAt: obs.previousAt } : {}),
      warning: limits.warning,
      critical: limits.critical,
      clearLevel: round(clearLevel(limits)),
      samples: obs.samples,
      source: limits.source,
    };
  },
};
