import { SEVERITY, type EpisodeStep } from './history.ts';
import { round, type HazardRule } from './rule.ts';

/** contract.md §1 units, for messages. */
const UNITS: Record<string, string> = {
  noise_dba: 'dB(A)',
  pm10: 'µg/m³',
  pm2_5: 'µg/m³',
  tsp: 'µg/m³',
  wind_speed_ms: 'm/s',
  crane_moment_pct: '%',
  crane_load_pct: '%',
  hoist_load_pct: '%',
  crane_tilt_deg: '°',
  gas_lel_pct: '% LEL',
  pit_displacement_mm: 'mm',
  pit_settlement_mm: 'mm',
  water_level_m: 'm',
};

/** The alert message of one step of an episode (contract §5 `message`). */
export function messageFor(rule: HazardRule, metric: string, s: EpisodeStep): string {
  const unit = UNITS[metric] ?? '';
  const e = s.evidence;
  const value = `${round(s.value, 2)}${unit ? ` ${unit}` : ''}`;
  if (rule.kind === 'hazard.rate') {
    return s.severity === 2
      ? `${metric} changed ${value} in 24 h, beyond the rate limit ${String(e.limit)} per day (${String(e.source)})`
      : `${metric} changed more than ${String(e.sustainedLevel)}${unit ? ` ${unit}` : ''} per day on 3 consecutive days (${String(e.source)})`;
  }
  const limit = s.severity === 2 ? e.critical : e.warning;
  return `${metric} ${rule.label} ${value} beyond the ${SEVERITY[s.severity]} limit ${String(limit)} (${String(e.source)})`;
}
