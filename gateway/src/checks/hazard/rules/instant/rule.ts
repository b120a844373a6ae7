/**
 * Instant limits: each sample on its own (domain.md "Hazards"). Fires on the first sample beyond
 * the critical limit, and on two consecutive samples beyond the warning limit (one stray sample
 * above warning is noise, not a hazard); clears on two consecutive samples below the clear level.
 * "Consecutive" is in event-time order of the device's samples of that metric.
 */
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
    const value = ctx.v[ctx.j];
    const previous = ctx.j > ctx.first ? ctx.v[ctx.j - 1] : undefined;
    const { warning, critical } = ctx.limits;
    const clear = clearLevel(ctx.limits);
    let level: Level = 0;
    if (critical !== undefined && value > critical) level = 2;
    else if (levelOf(value, ctx.limits) === 1 && previous !== undefined && previous > (warning as number)) level = 1;
    return {
      level,
      below: previous !== undefined && value < clear && previous < clear,
      value,
      evidence: () => ({
        rule: 'instant',
        aggregate: 'instant',
        value,
        ...(previous !== undefined ? { previous, previousAt: ctx.ts[ctx.j - 1] } : {}),
        warning,
        critical,
        clearLevel: round(clear),
        samples: previous !== undefined ? 2 : 1,
        source: ctx.limits.source,
      }),
    };
  },
};
