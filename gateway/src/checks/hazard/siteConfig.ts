import type { Logger } from 'pino';
import type { Site } from '../../registry/registry.ts';
import { DEFAULT_TIMEZONE } from '../../registry/registry.ts';
import { DeviceHazardSettings, HazardSettings, Thresholds } from './settings.ts';

export interface SiteConfig {
  /** The registry's site object the settings were taken from (replaced on every PUT). */
  site: Site | undefined;
  settings: HazardSettings | undefined;
  settingsKey: string;
  timezone: string;
}

/**
 * The hazard part of a site's settings. The site schema accepts any threshold key; a key that
 * names no metric or rule is left out (and logged) rather than dropping the site's other limits.
 */
export function siteConfig(siteId: string, site: Site | undefined, log: Logger): SiteConfig {
  const timezone = site?.timezone ?? DEFAULT_TIMEZONE;
  const raw = site?.settings;
  if (raw?.thresholds === undefined && raw?.devices === undefined) return { site, settings: undefined, settingsKey: '', timezone };
  const problems: string[] = [];
  const thresholds = (map: Record<string, unknown> | undefined, where: string): Thresholds | undefined => {
    if (map === undefined) return undefined;
    const out: Thresholds = {};
    for (const [k, v] of Object.entries(map)) {
      const one = Thresholds.safeParse({ [k]: v });
      if (one.success) Object.assign(out, one.data);
      else problems.push(`${where}${k}: ${one.error.issues[0]?.message ?? 'invalid'}`);
    }
    return out;
  };
  const settings: HazardSettings = {};
  const siteThresholds = thresholds(raw.thresholds, 'thresholds.');
  if (siteThresholds !== undefined) settings.thresholds = siteThresholds;
  if (raw.devices !== undefined) {
    settings.devices = {};
    for (const [deviceId, d] of Object.entries(raw.devices)) {
      const t = thresholds(d.thresholds, `devices.${deviceId}.thresholds.`);
      const parsed = DeviceHazardSettings.safeParse({ ...(t !== undefined ? { thresholds: t } : {}), ...(d.intervalS !== undefined ? { intervalS: d.intervalS } : {}) });
      if (parsed.success) settings.devices[deviceId] = parsed.data;
      else problems.push(`devices.${deviceId}: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
    }
  }
  if (problems.length > 0) log.warn({ siteId, problems }, 'site hazard settings: keys ignored');
  const parsed = HazardSettings.parse(settings);
  return { site, settings: parsed, settingsKey: JSON.stringify(parsed), timezone };
}
