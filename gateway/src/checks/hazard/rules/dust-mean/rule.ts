/**
 * Dust: 1-hour mean concentration (µg/m³), per domain.md "Hazards":
 * - pm10 warning 150, critical 200: Wuhan construction-site dust rule [Loc].
 * - pm2_5 warning 75, critical 115: GB 3095-2012 grade II (75 is its 24-hour limit; 115 is the
 *   top of the "lightly polluted" PM2.5 band of HJ 633-2012) [Nat].
 * - tsp warning 700, critical 800: Shaanxi DB61/1078 site-boundary dust limits [Loc].
 * The mean fires once the hour holds at least half of its expected samples (domain.md).
 */
import { windowedRule } from '../../windowed.ts';

export const dustMean = windowedRule({
  id: 'dust-mean',
  label: '1-hour mean',
  aggregate: 'mean',
  windowMs: 60 * 60_000,
  minFill: 0.5,
  defaults: {
    pm10: { warning: 150, critical: 200, source: 'Wuhan site-dust rule [Loc]' },
    pm2_5: { warning: 75, critical: 115, source: 'GB 3095-2012 grade II [Nat]' },
    tsp: { warning: 700, critical: 800, source: 'Shaanxi DB61/1078 [Loc]' },
  },
});
