import type { Severity } from '../checks/types.ts';
import { hasTimers, type AlertRecord } from './alertRecord.ts';

/** Escalation limits (三级督办, domain.md "Escalation"): seconds unacknowledged at level 1, then 2. */
export const DEFAULT_ESCALATION_S: Record<Severity, number[]> = { critical: [1800, 7200], warning: [86_400, 259_200], info: [] };
/** Rectification deadlines after recordedAt (contract §6 `rectifyS`); info alerts have none. */
export const DEFAULT_RECTIFY_S: Partial<Record<Severity, number>> = { critical: 86_400, warning: 604_800 };
/**
 * Reminder policy (domain.md leaves it to the product): one `reminder` per deadline, when 80 % of
 * the time allowed for it has passed: a critical alert's 30-minute acknowledgement limit is
 * reminded at minute 24, a 7-day rectification deadline on day 5.6 (4.8 h before a 24-hour one).
 * It goes to the current level's recipients (webhooks filtered by level).
 */
export const REMINDER_AT = 0.8;
export const MAX_LEVEL = 3;

/** What the site's settings allow an alert of one severity. */
export interface Limits {
  /** Seconds unacknowledged at level 1, 2 before moving up. */
  escalationS: number[];
  /** Seconds to rectify, from recordedAt and again from each move up. */
  rectifyS?: number;
}

type Deadline = { what: 'ack' | 'rectify'; at: number; start: number; limitS: number };

export type TimerStep =
  /** Move up one level; `deadline` is the instant that passed (the new level's timers start there). */
  | { type: 'escalate'; why: 'unacknowledged' | 'overdue'; deadline: number; limitS: number }
  | { type: 'remind'; what: 'ack' | 'rectify'; deadline: number };

function deadlines(a: AlertRecord, l: Limits): Deadline[] {
  if (!hasTimers(a.state) || a.withdrawn) return [];
  const out: Deadline[] = [];
  const ackS = l.escalationS[a.level - 1];
  if (a.state === 'open' && a.level < MAX_LEVEL && ackS !== undefined) {
    out.push({ what: 'ack', at: a.levelSince + ackS * 1000, start: a.levelSince, limitS: ackS });
  }
  if (a.dueAt !== undefined) {
    const len = l.rectifyS ?? (a.dueAt - a.levelSince) / 1000;
    out.push({ what: 'rectify', at: a.dueAt, start: a.dueAt - len * 1000, limitS: len });
  }
  return out.sort((x, y) => x.at - y.at);
}

/**
 * The one timer decision, from the alert's own columns and the clock: the deadline that passed
 * first moves the alert up (below level 3), else a reminder is due for the next deadline. Pure, so
 * a restart or a late tick decides exactly what an on-time tick would have.
 */
export function nextStep(a: AlertRecord, l: Limits, now: number): TimerStep | undefined {
  const ds = deadlines(a, l);
  const passed = ds.find((d) => d.at <= now);
  if (passed) {
    if (a.level >= MAX_LEVEL) return undefined; // level 3 is the last: the alert stays overdue
    return { type: 'escalate', why: passed.what === 'ack' ? 'unacknowledged' : 'overdue', deadline: passed.at, limitS: passed.limitS };
  }
  const next = ds[0];
  if (!next || a.remindedFor === next.at) return undefined;
  return now >= next.start + REMINDER_AT * (next.at - next.start) ? { type: 'remind', what: next.what, deadline: next.at } : undefined;
}

const iso = (t: number) => new Date(t).toISOString();

/** History notes, Chinese first (the people who read them), then English. */
export function stepNote(step: TimerStep, level: number): string {
  if (step.type === 'escalate') {
    return step.why === 'unacknowledged'
      ? `处理不及时：${level} 级 ${step.limitS} 秒内未确认，升至 ${level + 1} 级 (not acknowledged within ${step.limitS} s at level ${level}, by ${iso(step.deadline)})`
      : `超期未整改：整改期限 ${iso(step.deadline)} 已过，升至 ${level + 1} 级 (not rectified by ${iso(step.deadline)})`;
  }
  return step.what === 'ack'
    ? `提醒：请于 ${iso(step.deadline)} 前确认，否则升级 (reminder: acknowledge by ${iso(step.deadline)} or it moves up)`
    : `提醒：整改期限 ${iso(step.deadline)} (reminder: rectify by ${iso(step.deadline)} or it moves up)`;
}
