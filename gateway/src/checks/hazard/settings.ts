/**
 * The hazard part of a site's settings (domain.md "Site settings"): `thresholds` and `devices`.
 * The site settings schema composes these two keys; unknown keys are an error (style.md §8).
 *
 * A threshold key is a metric (`pm10`), which sets the limits of that metric's one
 * hazard.threshold rule, or `metric:ruleId` (`noise_dba:noise-night-leq`, `pit_settlement_mm:
 * pit-rate`) for one rule of a metric that has several, or for its hazard.rate rule. Device
 * thresholds override site thresholds field by field; both override domain.md's defaults.
 */
import { z } from 'zod';
import { Threshold } from '../../../../schemas/src/api.ts';
import { DEFAULT_CLEAR_RATIO, type HazardRule, type Limits } from './rule.ts';
import { hazardRules } from './rules/registry.ts';

/** contract.md "Identifiers". */
const IDENTIFIER = /^[A-Za-z0-9_-]{1,64}$/;

/** The limits a threshold key sets: the one schema the API and the rules share (schemas/src/api.ts). */
export const ThresholdOverride = Threshold;
export type ThresholdOverride = Threshold;

/** Metric → its rules, from the registry. */
export const RULES_BY_METRIC: ReadonlyMap<string, readonly HazardRule[]> = (() => {
  const map = new Map<string, HazardRule[]>();
  for (const rule of hazardRules) {
    for (const metric of Object.keys(rule.defaults)) {
      const list = map.get(metric) ?? [];
      list.push(rule);
      map.set(metric, list);
    }
  }
  return map;
})();

function thresholdRulesOf(metric: string): HazardRule[] {
  return (RULES_BY_METRIC.get(metric) ?? []).filter((r) => r.kind === 'hazard.threshold');
}

/** Why a threshold key names nothing, or undefined when it names a rule. */
function thresholdKeyProblem(key: string): string | undefined {
  const [metric, ruleId, ...rest] = key.split(':');
  const rules = RULES_BY_METRIC.get(metric);
  if (rest.length > 0 || rules === undefined) return `unknown metric or rule "${key}" in thresholds`;
  if (ruleId !== undefined) {
    return rules.some((r) => r.id === ruleId)
      ? undefined
      : `unknown rule "${ruleId}" for ${metric}; its rules: ${rules.map((r) => r.id).join(', ')}`;
  }
  const single = thresholdRulesOf(metric);
  if (single.length === 1) return undefined;
  return `"${metric}" has ${single.length === 0 ? 'no threshold rule' : 'several rules'}: name one as ${rules
    .map((r) => `${metric}:${r.id}`)
    .join(', ')}`;
}

export const Thresholds = z.record(z.string(), ThresholdOverride).superRefine((map, ctx) => {
  for (const key of Object.keys(map)) {
    const problem = thresholdKeyProblem(key);
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem, path: [key] });
  }
});
export type Thresholds = z.infer<typeof Thresholds>;

export const DeviceHazardSettings = z.strictObject({
  thresholds: Thresholds.optional(),
  /** Overrides the registered or learnt sampling interval. */
  intervalS: z.number().positive().optional(),
});
export type DeviceHazardSettings = z.infer<typeof DeviceHazardSettings>;

export const HazardSettings = z.strictObject({
  thresholds: Thresholds.optional(),
  devices: z.record(z.string().regex(IDENTIFIER), DeviceHazardSettings).optional(),
});
export type HazardSettings = z.infer<typeof HazardSettings>;

function overridesFor(thresholds: Thresholds | undefined, rule: HazardRule, metric: string): ThresholdOverride[] {
  if (thresholds === undefined) return [];
  const out: ThresholdOverride[] = [];
  const bare = thresholds[metric];
  if (bare !== undefined && rule.kind === 'hazard.threshold') out.push(bare);
  const qualified = thresholds[`${metric}:${rule.id}`];
  if (qualified !== undefined) out.push(qualified);
  return out;
}

/** The limits in force for a device's metric under a rule: defaults < site < device. */
export function resolveLimits(
  rule: HazardRule,
  metric: string,
  settings: HazardSettings | undefined,
  deviceId: string,
): Limits {
  const defaults = rule.defaults[metric];
  const limits: Limits = {
    warning: defaults.warning,
    critical: defaults.critical,
    clearRatio: defaults.clearRatio ?? DEFAULT_CLEAR_RATIO,
    source: defaults.source,
  };
  const layers = [
    ...overridesFor(settings?.thresholds, rule, metric),
    ...overridesFor(settings?.devices?.[deviceId]?.thresholds, rule, metric),
  ];
  for (const layer of layers) {
    if (layer.warning !== undefined) limits.warning = layer.warning;
    if (layer.critical !== undefined) limits.critical = layer.critical;
    if (layer.clearRatio !== undefined) limits.clearRatio = layer.clearRatio;
  }
  if (layers.length > 0) limits.source = `site settings (defaults: ${defaults.source})`;
  return limits;
}
