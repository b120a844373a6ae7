/** Every hazard rule, one line each (style.md "Each check is a room"). */
import type { HazardRule } from '../rule.ts';
import { dustMean } from './dust-mean/rule.ts';
import { instant } from './instant/rule.ts';
import { noiseDayLeq } from './noise-day-leq/rule.ts';
import { noiseNightLeq } from './noise-night-leq/rule.ts';
import { noiseNightMax } from './noise-night-max/rule.ts';
import { pitCumulative } from './pit-cumulative/rule.ts';
import { pitRate } from './pit-rate/rule.ts';

export const hazardRules: readonly HazardRule[] = [
  noiseDayLeq,
  noiseNightLeq,
  noiseNightMax,
  dustMean,
  instant,
  pitCumulative,
  pitRate,
];
