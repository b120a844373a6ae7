import { z } from 'zod';
import { Id, Lang, Month } from './common.ts';

/** Contract §2 "Read" for auditors: wage checks and attendance evidence. */

export const WageKind = z.enum(['wage.unpaid', 'wage.ghost', 'wage.card_mismatch', 'wage.shared_card', 'wage.underpaid']);

export const WagePaymentRef = z.object({
  id: z.string(),
  status: z.enum(['paid', 'failed', 'returned']),
  amount: z.number(),
  paidAt: z.string(),
  cardLast4: z.string(),
});

export const WageFinding = z.object({
  kind: WageKind,
  workerId: Id,
  message: z.string(),
  with: Id.optional().describe('wage.shared_card: the other worker (the card\'s first holder)'),
  withSiteId: Id.optional().describe('wage.shared_card: set when that worker is registered at another site'),
  daysPresent: z.number().int(),
  amount: z.number().optional().describe('sum of the paid amounts the finding is about (CNY)'),
  minimum: z.number().optional().describe('wage.underpaid: daysPresent × minDailyWage'),
  minDailyWage: z.number().optional(),
  shortfall: z.number().optional(),
  cardLast4: z.string().optional(),
  registeredCardLast4: z.string().optional(),
  paidCardLast4: z.array(z.string()).optional(),
  workers: z.array(Id).optional().describe('wage.shared_card: every worker on the card'),
  dueAt: z.string().optional(),
  payments: z.array(WagePaymentRef),
});

export const WageCheck = z.object({
  siteId: Id,
  month: Month,
  timezone: z.string(),
  asOf: z.string().describe('the later of the wall clock and the site\'s watermark'),
  periodEnd: z.string(),
  dueAt: z.string(),
  due: z.boolean().describe('the due date has passed by the wall clock or the watermark: every kind is decided'),
  settings: z.object({ minDailyWage: z.number(), wageDueMonths: z.number().int() }),
  decided: z.array(WageKind),
  pending: z.array(WageKind).describe('kinds not decided yet: wage.ghost until the month ends, wage.unpaid and wage.underpaid until the due date'),
  findings: z.array(WageFinding),
});

/**
 * `GET …/attendance` and `GET …/wage-check` (contract §6 "CSV for spreadsheets"): JSON, or a CSV
 * (UTF-8 with BOM) with Chinese headers and labels by default, English with `lang=en`.
 */
export const ReportQuery = z.object({ month: Month, format: z.enum(['json', 'csv']).default('json'), lang: Lang });

export const EvidenceQuery = z.object({ month: Month, format: z.enum(['json', 'csv']).default('json') });

export const EvidenceCheckin = z.object({
  checkinId: z.string(),
  time: z.string().describe('event time in the site\'s zone, RFC 3339 with its offset'),
  date: z.string(),
  deviceId: Id,
  direction: z.enum(['in', 'out']),
  method: z.string(),
  terminalScore: z.number().optional(),
  verdict: z.enum(['verified', 'face_mismatch', 'no_face', 'unverified']),
  similarity: z.number().optional(),
  photoSha256: z.string().optional(),
  countsAsPresence: z.boolean(),
});

export const EvidenceDigest = z.object({
  format: z.string(),
  algorithm: z.string(),
  genesis: z.string(),
  rows: z.number().int().describe('canonical rows hashed: the CSV header and every CSV record'),
  root: z.string(),
  closed: z.boolean().describe('the site\'s watermark has passed the end of the month'),
  recorded: z.object({
    root: z.string(), rows: z.number().int(), revision: z.number().int(), closedAt: z.string(), recordedAt: z.string(),
    auditSeq: z.number().int(), auditHash: z.string(),
  }).optional().describe('the root recorded in the tamper-evident history when the month closed (latest revision)'),
  matchesRecorded: z.boolean().optional(),
});

export const WorkerEvidence = z.object({
  siteId: Id,
  workerId: Id,
  month: Month,
  timezone: z.string(),
  checkins: z.array(EvidenceCheckin),
  days: z.array(z.string()),
  daysPresent: z.number().int(),
  hours: z.number(),
  hoursByDay: z.record(z.string(), z.number()),
  columns: z.array(z.string()),
  digest: EvidenceDigest,
});
