import { DEFAULT_LATENESS_S } from '../../state/liveState.ts';
import type { Site } from '../../registry/registry.ts';

/**
 * Defaults of domain.md ("Calendar", "Key staff", "Site settings"); a site overrides each in its
 * `settings` (`cutoffHour`, `keyStaffMinRate`, `lateness`).
 */
export const KEY_STAFF_DEFAULTS = {
  /** Key staff on site by 10:00 local on a working day (建市〔2019〕18号 practice, domain.md). */
  cutoffHour: 10,
  /** Hunan platform [Loc]: warn and order rectification below 80 % monthly attendance. */
  keyStaffMinRate: 0.8,
  /** Allowed lateness behind the site's latest event for messages still in flight (s). */
} as const;

export interface KeyStaffSettings {
  cutoffHour: number;
  minRate: number;
  latenessMs: number;
}

export function keyStaffSettings(site: Site): KeyStaffSettings {
  return {
    cutoffHour: site.settings.cutoffHour ?? KEY_STAFF_DEFAULTS.cutoffHour,
    minRate: site.settings.keyStaffMinRate ?? KEY_STAFF_DEFAULTS.keyStaffMinRate,
    latenessMs: (site.settings.lateness ?? DEFAULT_LATENESS_S) * 1000,
  };
}

/** Contract §5 "Keys": one alert per key while not resolved or cleared. */
export const alertKeys = {
  absent: (siteId: string, workerId: string, day: string) => `keystaff.absent:${siteId}:${workerId}:${day}`,
  attendanceLow: (siteId: string, workerId: string, month: string) => `keystaff.attendance_low:${siteId}:${workerId}:${month}`,
  multiSite: (siteId: string, workerId: string, day: string) => `keystaff.multi_site:${siteId}:${workerId}:${day}`,
  unknownWorker: (siteId: string, workerId: string) => `checkin.unknown_worker:${siteId}:${workerId}`,
};
