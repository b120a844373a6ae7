import { z } from 'zod';

/** Identifiers (`siteId`, `deviceId`, `workerId`): 1–64 chars of `A-Z a-z 0-9 _ -` (contract, top). */
export const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
export const Id = z.string().regex(ID_PATTERN, 'must be 1–64 characters of A-Z a-z 0-9 _ -');

/** RFC 3339 date-time with a mandatory offset (`Z` or `±hh:mm`). */
export const RFC3339_WITH_OFFSET =
  /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

/**
 * An event time: RFC 3339 with an offset, or Unix epoch milliseconds. A timestamp without an
 * offset is ambiguous (whose local time?) and is rejected (contract, top).
 */
export const Timestamp = z.union([
  z.number().int().min(0).max(8.64e15),
  z.string().regex(RFC3339_WITH_OFFSET, 'RFC 3339 with an offset, e.g. 2026-11-02T07:58:12+08:00'),
]).describe('RFC 3339 with an offset, or Unix epoch milliseconds');

export const Month = z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/, 'YYYY-MM');
export const LocalDate = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'YYYY-MM-DD');

/** Region codes are the 6-digit administrative division codes (GB/T 2260); prefixes scope regulators. */
export const RegionCode = z.string().regex(/^\d{2,12}$/, 'digits of an administrative division code');

/** The language of text rendered for people (CSV headers and labels, pages): Chinese unless `en` is asked for. */
export const Lang = z.enum(['zh', 'en']).default('zh').describe('language of CSV headers and labels: zh (default) or en');

export const ErrorBody = z.object({
  error: z.string(),
  message: z.string(),
  details: z.unknown().optional(),
});
