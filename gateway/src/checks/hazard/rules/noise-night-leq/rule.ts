/**
 * Night noise: equivalent continuous level over 20 minutes, 22:00–06:00 site time.
 * domain.md "Hazards": warning 50, critical 55 dB(A). Source: GB 12523-2011, night limit 55 dB(A)
 * on the equivalent level of a 20-minute measurement. At 22:00 the window starts from the night's own samples
 * and needs its own half-filled window (domain.md).
 */
import { windowedRule } from '../../windowed.ts';

const SOURCE = 'GB 12523-2011 [Nat]';

export const noiseNightLeq = windowedRule({
  id: 'noise-night-leq',
  label: 'night Leq over 20 min',
  aggregate: 'leq',
  windowMs: 20 * 60_000,
  period: 'night',
  minFill: 0.5,
  defaults: {
    noise_dba: { warning: 50, critical: 55, source: SOURCE },
  },
});
