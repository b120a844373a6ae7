import type { CheckFactory } from './check.ts';
import { evidenceMonthClose } from './evidence-month-close/monthClose.ts';
import { wageCheck } from './wages/wageCheck.ts';
import { deviceOfflineCheck } from './device-offline/deviceOffline.ts';
import { hazardCheck } from './hazard/hazardCheck.ts';
import { faceVerificationCheck } from './face-verification/faceVerification.ts';
import { keyStaffCheck } from './keystaff/keyStaffCheck.ts';

/** Every check the gateway runs, one line each (style.md §3: a new rule touches its folder and this list). */
export const CHECKS: CheckFactory[] = [
  wageCheck,
  evidenceMonthClose,
  hazardCheck(),
  deviceOfflineCheck(),
  faceVerificationCheck,
  keyStaffCheck,
];
