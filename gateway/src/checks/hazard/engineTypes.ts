import type { AlertKind, Severity } from '../types.ts';
import type { HazardSettings } from './settings.ts';

export interface HazardReading {
  siteId: string;
  deviceId: string;
  /** Event time, epoch ms. */
  ts: number;
  metrics: Record<string, number>;
}

export interface HazardDevice {
  /** Registered sampling interval; learnt from the spacing when absent. */
  intervalS?: number;
}

export interface HazardEngineOptions {
  /** The site's IANA time zone (domain.md "Calendar": default Asia/Shanghai). */
  timezone: string;
  settings?: HazardSettings;
  /** Registered interval of a device, for callers that do not pass it to `ingest`. */
  intervalOf?: (deviceId: string) => number | undefined;
}

/** An alert as the readings held imply it (the alert store's view, once signals are applied). */
export interface HazardAlert {
  kind: Extract<AlertKind, `hazard.${string}`>;
  siteId: string;
  key: string;
  subject: { deviceId: string; metric: string };
  severity: Exclude<Severity, 'info'>;
  openedAt: number;
  clearedAt: number | null;
  evidence: Record<string, unknown>;
}

export interface HazardStats {
  /** Readings evaluated. */
  readings: number;
  /** Metric values placed in a series (metrics without a rule are not kept). */
  samples: number;
  /** Readings more than 24 h older than their device's latest: not evaluated. */
  late: number;
  /** Values already held (a replay): nothing to do. */
  unchanged: number;
  /** Samples placed before the newest of their series (late or out of order). */
  outOfOrder: number;
  /** Samples at which a rule was evaluated, re-evaluations included. */
  evaluations: number;
  signals: number;
  /** Alerts withdrawn because late data disproved them. */
  retracted: number;
}

