import type { z } from 'zod';
import type { AlertHistoryEntry, AlertKind as AlertKindSchema, AlertState as AlertStateSchema, Severity as SeveritySchema } from '../../../schemas/src/alert.ts';

/**
 * What a check hands to the alert store. A check never keeps alert lifecycle state of its own:
 * it says "this condition is true since `openedAt`" (raise) or "this condition ended" (clear),
 * and the alert store (gateway/src/alerts/) decides whether that opens a new alert, raises the
 * severity of an open one in place, or clears it (contract §5).
 */
/** The catalogues are the zod enums of schemas/src/alert.ts (contract §5); these are their types. */
export type Severity = z.infer<typeof SeveritySchema>;
export type AlertKind = z.infer<typeof AlertKindSchema>;
export type AlertState = z.infer<typeof AlertStateSchema>;
/** What happened to an alert: one entry of its history. */
export type AlertEventType = z.infer<typeof AlertHistoryEntry>['event'];

export interface AlertSubject {
  workerId?: string;
  deviceId?: string;
  metric?: string;
  with?: string;
}

export interface RaiseSignal {
  type: 'raise';
  kind: AlertKind;
  siteId: string;
  subject: AlertSubject;
  /** Identity of the condition (contract §5 "Keys"); one alert per key while not resolved/cleared. */
  key: string;
  severity: Severity;
  /** Event time (epoch ms) at which the condition became true. */
  openedAt: number;
  message: string;
  /** The rule and the numbers that fired it. */
  evidence: Record<string, unknown>;
}

export interface ClearSignal {
  type: 'clear';
  kind: AlertKind;
  siteId: string;
  key: string;
  /** Event time (epoch ms) at which the condition ended. */
  at: number;
  /**
   * Set when late or out-of-order data shows that the alert of this key opened at this event time
   * (epoch ms) did not happen as raised: the store withdraws that alert (open or already cleared)
   * instead of clearing the open one. Checks that only ever see data in order never set it.
   */
  retracts?: number;
  evidence?: Record<string, unknown>;
}

export type AlertSignal = RaiseSignal | ClearSignal;
