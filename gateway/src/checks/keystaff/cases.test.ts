/**
 * Runs every folder of cases/ (style.md "Cases as data"): site.json (sites and workers),
 * records.json (check-ins, verdicts and readings in arrival order), expected.json (every alert the
 * store must hold at the end, withdrawn ones included). Each case runs three ways through a real
 * ledger, alert store and check runner: straight through; with a clean restart half-way; and with
 * a restart that lost the check's ledger cursor (as after a crash), which must neither repeat nor
 * miss an alert.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { LedgerRecord } from '../../ledger/types.ts';
import { alertSummary, caseEvents, harness, toRecord, type CaseRecords, type CaseSite } from './testing.ts';

const CASES = join(dirname(fileURLToPath(import.meta.url)), 'cases');
const read = <T>(p: string): T => JSON.parse(readFileSync(p, 'utf8')) as T;

type Summary = ReturnType<typeof alertSummary>;
const sorted = (a: Summary) => [...a].sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y)));

async function run(site: CaseSite, records: LedgerRecord[], restart?: { at: number; loseCursor: boolean }): Promise<Summary> {
  const h = await harness(site);
  try {
    const cut = restart ? restart.at : records.length;
    await h.feed(records.slice(0, cut));
    if (restart) {
      await h.restart({ loseCursor: restart.loseCursor });
      await h.feed(records.slice(cut));
    }
    return alertSummary(h.alerts);
  } finally {
    await h.close();
  }
}

describe('key-staff cases', () => {
  const names = readdirSync(CASES).filter((n) => existsSync(join(CASES, n, 'records.json'))).sort();
  it('has cases', () => expect(names.length).toBeGreaterThan(0));

  for (const name of names) {
    describe(name, () => {
      const dir = join(CASES, name);
      const site = read<CaseSite>(join(dir, 'site.json'));
      const expected = read<{ alerts: Summary }>(join(dir, 'expected.json')).alerts;
      const events = caseEvents(read<CaseRecords>(join(dir, 'records.json')));
      const records = (() => {
        const checkins = new Map<string, LedgerRecord>();
        return events.map((e) => toRecord(e, checkins));
      })();
      const half = Math.floor(records.length / 2);

      it('straight through', async () => {
        expect(sorted(await run(site, records))).toEqual(sorted(expected));
      });
      it('with a restart half-way', async () => {
        expect(sorted(await run(site, records, { at: half, loseCursor: false }))).toEqual(sorted(expected));
      });
      it('with a restart that lost the ledger cursor', async () => {
        expect(sorted(await run(site, records, { at: half, loseCursor: true }))).toEqual(sorted(expected));
      });
    });
  }
});
