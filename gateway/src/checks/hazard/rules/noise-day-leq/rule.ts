/**
 * Day noise: equivalent continuous level over 20 minutes, 06:00–22:00 site time.
 * domain.md "Hazards": warning 65, critical 70 dB(A). Source: GB 12523-2011 (建筑施工场界环境噪声
 * 排放标准), day limit 70 dB(A) on the equivalent level of a 20-minute measurement; the warning
 * 5 dB below it is domain.md's.
 * The window never reaches back across 06:00 (domain.md: each period on its own samples).
 */
import { windowedRule } from '../../windowed.ts';

const SOURCE = 'GB 12523-2011 [Nat]';

export const noiseDayLeq = windowedRule({
  id: 'noise-day-leq',
  label: 'day Leq over 20 min',
  aggregate: 'leq',
  windowMs: 20 * 60_000,
  period: 'day',
  minFill: 0.5,
  defaults: {
    noise_dba: { warning: 65, critical: 70, source: SOURCE },
  },
});
