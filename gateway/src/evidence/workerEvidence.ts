import { checkinFacts, countsAsPresence, workerCheckinFacts, hoursOnSite, WorkCalendar, type CheckinFact, type Verdict } from '../attendance/attendance.ts';
import type { SiteCalendar } from '../calendar/siteCalendar.ts';
import type { LedgerReads } from '../ledger/ledgerQueries.ts';
import type { Site } from '../registry/registry.ts';
import { DigestChain } from './digest.ts';

/**
 * The columns of an evidence export, in order. One table holds three kinds of record so the CSV
 * alone carries everything (and the digest covers everything):
 *   checkin — one per check-in: time in the site's zone, device, direction, method, terminal
 *             score, face verdict and similarity, photo SHA-256, whether it counts as presence;
 *   day     — after each day's check-ins: whether the day is present and its hours on site;
 *   total   — last: days present and hours in the month.
 */
export const EVIDENCE_COLUMNS = [
  'record', 'siteId', 'workerId', 'date', 'time', 'checkinId', 'deviceId', 'direction', 'method',
  'terminalScore', 'verdict', 'similarity', 'photoSha256', 'countsAsPresence', 'hours', 'daysPresent',
] as const;

export interface EvidenceCheckin {
  checkinId: string;
  time: string;
  date: string;
  deviceId: string;
  direction: 'in' | 'out';
  method: string;
  terminalScore?: number;
  verdict: Verdict;
  similarity?: number;
  photoSha256?: string;
  countsAsPresence: boolean;
}

export interface WorkerEvidence {
  siteId: string;
  workerId: string;
  month: string;
  timezone: string;
  checkins: EvidenceCheckin[];
  days: string[];
  daysPresent: number;
  hours: number;
  hoursByDay: Record<string, number>;
  /** The export's records as strings, header first: what the CSV holds and the digest hashes. */
  rows: string[][];
  digest: { root: string; rows: number };
}

const pad = (n: number) => String(n).padStart(2, '0');

/** RFC 3339 in the site's zone with its offset, milliseconds always: `2026-09-01T07:58:12.000+08:00`. */
export function siteTime(cal: SiteCalendar, ts: number): string {
  const off = cal.offsetMs(ts);
  const abs = Math.abs(off) / 60_000;
  return `${new Date(ts + off).toISOString().slice(0, 23)}${off < 0 ? '-' : '+'}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

const round2 = (h: number) => Math.round(h * 100) / 100;
const fixed4 = (n: number | undefined) => (n === undefined ? '' : n.toFixed(4));

/** Same order whatever order the check-ins arrived in: event time, then device, then id. */
const byEventTime = (a: CheckinFact, b: CheckinFact) => a.ts - b.ts || (a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** The evidence of one worker for a month, from that worker's check-ins of the month (any order). */
export function buildWorkerEvidence(site: Site, cal: SiteCalendar, workerId: string, month: string, facts: CheckinFact[]): WorkerEvidence {
  const sorted = facts.filter((f) => f.workerId === workerId).sort(byEventTime);
  const rows: string[][] = [[...EVIDENCE_COLUMNS]];
  const checkins: EvidenceCheckin[] = [];
  const hoursByDay: Record<string, number> = {};
  const days: string[] = [];
  let exactHours = 0;
  let i = 0;
  while (i < sorted.length) {
    const date = cal.localDay(sorted[i]!.ts);
    const ofDay: CheckinFact[] = [];
    for (; i < sorted.length && cal.localDay(sorted[i]!.ts) === date; i++) ofDay.push(sorted[i]!);
    for (const c of ofDay) {
      const e: EvidenceCheckin = {
        checkinId: c.id, time: siteTime(cal, c.ts), date, deviceId: c.deviceId, direction: c.direction, method: c.method,
        ...(c.terminalScore !== undefined ? { terminalScore: c.terminalScore } : {}), verdict: c.verdict,
        ...(c.similarity !== undefined ? { similarity: Number(c.similarity.toFixed(4)) } : {}),
        ...(c.photoSha256 ? { photoSha256: c.photoSha256 } : {}), countsAsPresence: countsAsPresence(c),
      };
      checkins.push(e);
      rows.push(['checkin', site.siteId, workerId, date, e.time, e.checkinId, e.deviceId, e.direction, e.method,
        e.terminalScore === undefined ? '' : String(e.terminalScore), e.verdict, fixed4(c.similarity), e.photoSha256 ?? '', e.countsAsPresence ? 'yes' : 'no', '', '']);
    }
    // domain.md "Calendar": present with at least one check-in that is not a face mismatch; hours = in→out intervals.
    const counting = ofDay.filter(countsAsPresence);
    const present = counting.length > 0;
    const exact = present ? hoursOnSite(counting) : 0;
    const hours = round2(exact);
    if (present) {
      days.push(date);
      hoursByDay[date] = hours;
      exactHours += exact;
    }
    rows.push(['day', site.siteId, workerId, date, '', '', '', '', '', '', '', '', '', present ? 'yes' : 'no', present ? hours.toFixed(2) : '', '']);
  }
  const hours = round2(exactHours); // as the attendance report rounds it
  rows.push(['total', site.siteId, workerId, month, '', '', '', '', '', '', '', '', '', '', hours.toFixed(2), String(days.length)]);
  const chain = new DigestChain();
  for (const r of rows) chain.push(r);
  return {
    siteId: site.siteId, workerId, month, timezone: site.timezone, checkins, days, daysPresent: days.length, hours, hoursByDay,
    rows, digest: { root: chain.root, rows: chain.rows },
  };
}

/** Every check-in of the site in the month (with verdicts), read once for one worker or many. */
export async function monthCheckins(ledger: LedgerReads, site: Site, month: string): Promise<{ cal: SiteCalendar; facts: CheckinFact[] }> {
  const wc = new WorkCalendar(site);
  const [from, to] = wc.monthRange(month);
  return { cal: wc.cal, facts: await checkinFacts(ledger, site.siteId, from, to) };
}

export async function workerEvidence(ledger: LedgerReads, site: Site, workerId: string, month: string): Promise<WorkerEvidence> {
  const wc = new WorkCalendar(site);
  const [from, to] = wc.monthRange(month);
  return buildWorkerEvidence(site, wc.cal, workerId, month, await workerCheckinFacts(ledger, site.siteId, workerId, from, to));
}
