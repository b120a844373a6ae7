/**
 * Night maximum level: the highest sample in the last 20 minutes of the night period.
 * domain.md "Hazards": critical only, 70 dB(A). Source: GB 12523-2011: at night the maximum
 * level may exceed the night limit (55) by at most 15 dB(A).
 *
 * No minimum fill: a maximum over part of a window can only understate the true maximum, so one
 * sample above 70 already proves the exceedance (the half-filled rule guards averages, which a
 * few samples can overstate). Clear level: 90 % of 70 (no warning limit), once the window's
 * maximum has fallen below it.
 */
import { windowedRule } from '../../windowed.ts';

export const noiseNightMax = windowedRule({
  id: 'noise-night-max',
  label: 'night maximum over 20 min',
  aggregate: 'max',
  windowMs: 20 * 60_000,
  period: 'night',
  minFill: 0,
  defaults: {
    noise_dba: { critical: 70, source: 'GB 12523-2011 [Nat]' },
  },
});
