import type { DeviceKind } from '../../../../schemas/src/api.ts';

/**
 * domain.md `device.offline`: silence longer than the larger of the kind's default and
 * 3 × the device's interval. Face terminals send a `status` heartbeat at least every 15 min.
 * A site's `settings.offlineAfterS[kind]` replaces the kind's default (seconds).
 */
export const DEFAULT_OFFLINE_AFTER_S: Readonly<Record<DeviceKind, number>> = {
  sensor: 15 * 60,
  camera: 30 * 60,
  face_terminal: 15 * 60,
};

/** Silence beyond this many sampling intervals is offline (domain.md: 3 × intervalS). */
export const INTERVALS_OF_SILENCE = 3;

/** Forward gaps of event time the interval is learnt from (median), when none is registered. */
export const LEARN_GAPS = 16;
/** Fewer gaps than this say nothing about a device's cadence (a sporadic sender): not learnt. */
export const LEARN_MIN_GAPS = 4;
