import { describe, expect, it } from 'vitest';
import { HazardSettings, resolveLimits } from './settings.ts';
import { dustMean } from './rules/dust-mean/rule.ts';
import { noiseNightLeq } from './rules/noise-night-leq/rule.ts';
import { pitCumulative } from './rules/pit-cumulative/rule.ts';
import { pitRate } from './rules/pit-rate/rule.ts';

function problems(input: unknown): string[] {
  const result = HazardSettings.safeParse(input);
  return result.success ? [] : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

describe('HazardSettings', () => {
  it('accepts domain.md thresholds and devices', () => {
    expect(
      problems({
        thresholds: { pm10: { warning: 120, critical: 180, clearRatio: 0.8 }, 'noise_dba:noise-night-leq': { critical: 50 } },
        devices: { 'ENV-1': { intervalS: 60, thresholds: { 'pit_settlement_mm:pit-rate': { critical: 1 } } } },
      }),
    ).toEqual([]);
  });

  it('rejects unknown keys and names them', () => {
    expect(problems({ thresholds: {}, cutoffHour: 10 }).join()).toMatch(/cutoffHour/);
    expect(problems({ thresholds: { pm10: { warn: 1 } } }).join()).toMatch(/warn/);
    expect(problems({ devices: { D: { interval: 5 } } }).join()).toMatch(/interval/);
    expect(problems({ thresholds: { pm25: { warning: 1 } } }).join()).toMatch(/pm25/);
    expect(problems({ thresholds: { 'pm10:instant': { warning: 1 } } }).join()).toMatch(/instant/);
  });

  it('asks which rule when a metric has several (noise_dba) or only a rate rule', () => {
    expect(problems({ thresholds: { noise_dba: { warning: 60 } } }).join()).toMatch(/noise_dba:noise-day-leq/);
    expect(problems({ thresholds: { water_level_m: { critical: 1 } } }).join()).toMatch(/water_level_m:pit-rate/);
  });

  it('rejects nonsense numbers', () => {
    expect(problems({ thresholds: { pm10: { warning: 200, critical: 100 } } })).toHaveLength(1);
    expect(problems({ thresholds: { pm10: { clearRatio: 1.5 } } })).toHaveLength(1);
    expect(problems({ devices: { D: { intervalS: 0 } } })).toHaveLength(1);
    expect(problems({ devices: { 'bad id!': {} } })).toHaveLength(1);
  });
});

describe('resolveLimits', () => {
  const settings = HazardSettings.parse({
    thresholds: { pm10: { warning: 100, critical: 150 }, pit_displacement_mm: { warning: 18 } },
    devices: { D2: { thresholds: { pm10: { critical: 300, clearRatio: 0.5 } } } },
  });

  it('domain.md defaults with no settings', () => {
    expect(resolveLimits(dustMean, 'pm2_5', undefined, 'D1')).toMatchObject({ warning: 75, critical: 115, clearRatio: 0.9 });
    expect(resolveLimits(noiseNightLeq, 'noise_dba', undefined, 'D1')).toMatchObject({ warning: 50, critical: 55 });
    expect(resolveLimits(pitRate, 'pit_settlement_mm', undefined, 'D1')).toMatchObject({ warning: 1, critical: 2 });
  });

  it('device over site over defaults, field by field', () => {
    expect(resolveLimits(dustMean, 'pm10', settings, 'D1')).toMatchObject({ warning: 100, critical: 150, clearRatio: 0.9 });
    expect(resolveLimits(dustMean, 'pm10', settings, 'D2')).toMatchObject({ warning: 100, critical: 300, clearRatio: 0.5 });
  });

  it('a bare metric key sets the threshold rule, not the rate rule', () => {
    expect(resolveLimits(pitCumulative, 'pit_displacement_mm', settings, 'D1')).toMatchObject({ warning: 18, critical: 30 });
    expect(resolveLimits(pitRate, 'pit_displacement_mm', settings, 'D1')).toMatchObject({ warning: 1.5, critical: 3 });
  });
});
