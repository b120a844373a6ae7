import { z } from 'zod';
import { Id, Lang, RegionCode, Timestamp } from './common.ts';
import { AlertKind } from './alert.ts';

/**
 * `GET /stats/alerts` (contract §6): the closed loop in figures, over alerts opened in [from, to).
 * Every figure counts alerts, so each equals a count over what `GET /alerts` lists.
 */
export const AlertFigures = z.object({
  raised: z.number().int().describe('alerts opened in the period (withdrawn ones not included, as GET /alerts lists them)'),
  acked: z.number().int().describe('of those, acknowledged at some point'),
  rectified: z.number().int().describe('of those, reported rectified at some point'),
  resolved: z.number().int().describe('now resolved (closed by a person)'),
  cleared: z.number().int().describe('now cleared (closed by the gateway: the condition ended)'),
  withdrawn: z.number().int().describe('withdrawn by later data (not in raised)'),
  open: z.number().int().describe('still being handled: open, acked or rectified'),
  overdue: z.number().int().describe('missed a rectification deadline (dueAt), now or before'),
  escalated: z.object({ 2: z.number().int(), 3: z.number().int() }).describe('reached level 2 / level 3'),
  medianAckS: z.number().nullable().describe('median seconds from recordedAt to the first acknowledgement'),
  medianCloseS: z.number().nullable().describe('median seconds from recordedAt to resolved or cleared'),
});
export type AlertFigures = z.infer<typeof AlertFigures>;

export const AlertStatsQuery = z.object({
  regions: z.string().regex(/^\d{2,12}(,\d{2,12})*$/, 'region-code prefixes, comma-separated').optional(),
  siteId: Id.optional(),
  from: Timestamp.optional().describe('openedAt from (inclusive); default: the beginning'),
  to: Timestamp.optional().describe('openedAt to (exclusive); default: now'),
  format: z.enum(['json', 'csv']).default('json'),
  lang: Lang.describe('language of the CSV headers and labels: zh (default) or en; the JSON is the same in both'),
});

export const AlertStats = z.object({
  from: z.string().optional(),
  to: z.string(),
  total: AlertFigures,
  bySite: z.array(AlertFigures.extend({ siteId: Id, name: z.string(), regionCode: RegionCode })),
  byKind: z.array(AlertFigures.extend({ kind: AlertKind })),
});
export type AlertStats = z.infer<typeof AlertStats>;
