import type { AlertEventType, AlertKind, AlertState, AlertSubject, Severity } from '../checks/types.ts';
import { SitegateError } from '../errors.ts';

export interface AlertRecord {
  id: string;
  siteId: string;
  kind: AlertKind;
  key: string;
  severity: Severity;
  level: number;
  state: AlertState;
  subject: AlertSubject;
  openedAt: number;
  recordedAt: number;
  message: string;
  evidence: Record<string, unknown>;
  /** Late data showed the condition never held: kept in the trail, hidden from lists by default. */
  withdrawn: boolean;
  /** Wall-clock start of the current level (the acknowledgement clock, domain.md "Escalation"). */
  levelSince: number;
  /** Rectification deadline (contract §6), warning and critical only. */
  dueAt?: number;
  /** The deadline a reminder was sent for (one reminder per deadline). */
  remindedFor?: number;
  /** A rectification deadline passed while the alert was open or acknowledged. */
  missedDue: boolean;
  ackedAt?: number;
  rectifiedAt?: number;
  closedAt?: number;
}

export interface AlertEvent {
  type: AlertEventType;
  alert: AlertRecord;
  at: number;
  /** This event's entry in the audit trail: its identity (two events of one alert committed together stay two). */
  auditSeq: number;
  by?: string;
  note?: string;
  photos?: string[];
}

export interface AlertView {
  id: string; siteId: string; kind: AlertKind; severity: Severity; level: number; state: AlertState;
  subject: AlertSubject; openedAt: string; recordedAt: string; message: string; evidence: Record<string, unknown>;
  history: { at: string; event: AlertEventType; by?: string; note?: string; photos?: string[] }[];
  withdrawn?: boolean;
  dueAt?: string;
  overdue?: boolean;
}

const opt = (v: unknown): number | undefined => (v === null || v === undefined ? undefined : (v as number));

export const fromRow = (r: Record<string, unknown>): AlertRecord => {
  const a: AlertRecord = {
    id: r.id as string, siteId: r.site_id as string, kind: r.kind as AlertKind, key: r.key as string,
    severity: r.severity as Severity, level: r.level as number, state: r.state as AlertState,
    subject: JSON.parse(r.subject as string), openedAt: r.opened_at as number, recordedAt: r.recorded_at as number,
    message: r.message as string, evidence: JSON.parse(r.evidence as string), withdrawn: r.withdrawn === 1,
    levelSince: r.level_since as number, missedDue: r.missed_due === 1,
  };
  const times = { dueAt: opt(r.due_at), remindedFor: opt(r.reminded_for), ackedAt: opt(r.acked_at), rectifiedAt: opt(r.rectified_at), closedAt: opt(r.closed_at) };
  for (const [k, v] of Object.entries(times)) if (v !== undefined) (a as unknown as Record<string, number>)[k] = v;
  return a;
};

/** Timers run while a person still has to act: open (acknowledge, rectify) and acked (rectify). */
export const hasTimers = (s: AlertState): boolean => s === 'open' || s === 'acked';

/** Missed a rectification deadline: before (escalated for it) or now. */
export const isOverdue = (a: AlertRecord, now: number): boolean =>
  a.missedDue || (hasTimers(a.state) && a.dueAt !== undefined && now >= a.dueAt);

export const encodeCursor = (a: { openedAt: number; id: string }) => Buffer.from(`${a.openedAt}:${a.id}`).toString('base64url');

export function decodeCursor(c: string): { openedAt: number; id: string } {
  const [t, ...rest] = Buffer.from(c, 'base64url').toString('utf8').split(':');
  const openedAt = Number(t);
  if (!Number.isFinite(openedAt) || rest.length === 0) throw new SitegateError('bad_request', 'invalid cursor');
  return { openedAt, id: rest.join(':') };
}
