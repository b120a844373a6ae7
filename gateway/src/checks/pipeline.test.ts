/**
 * A check's steps while commits keep coming (issue 11): the commits that arrive while a step is
 * spaced join the next step, and the first records after a quiet spell are taken at once. Real
 * SQLite ledger and state database; the check only records the steps it is given.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Ledger } from '../ledger/ledger.ts';
import type { LedgerRecord, StoredRecord } from '../ledger/types.ts';
import { openStateDb } from '../state/stateDb.ts';
import type { Check } from './check.ts';
import { CheckPipeline } from './pipeline.ts';
import { CheckProgress } from './progress.ts';
import { shardOf, siteShard } from '../region/shards.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const reading = (id: string): LedgerRecord => ({
  siteId: 'S1', deviceId: 'D1', kind: 'reading', msgId: id, dedupeKey: `D1/${id}`, ts: 1_000, receivedAt: 1_000, body: { metrics: { pm10: 1 } },
});

/** A check that keeps what it was handed, and when each step began; `next()` resolves at its next step. */
function countingCheck() {
  const steps: { seqs: number[]; at: number }[] = [];
  let waiter: (() => void) | undefined;
  const check: Check = {
    name: 'counting',
    kinds: ['reading'],
    onRecords(records: StoredRecord[]) {
      steps.push({ seqs: records.map((r) => r.seq), at: performance.now() });
      waiter?.();
      waiter = undefined;
    },
  };
  return { check, steps, next: () => new Promise<void>((resolve) => { waiter = resolve; }) };
}

async function setUp(stepEveryMs: number, stepRecords = 100) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pipeline-test-'));
  dirs.push(dir);
  const ledger = await Ledger.open(dir);
  const db = openStateDb(':memory:');
  const c = countingCheck();
  const pipeline = new CheckPipeline(c.check, ledger, new CheckProgress(db, 'counting'), {
    maxQueued: 1000, readBack: 1000, retryMs: 100, maxAttempts: 2, saveEveryMs: 1000, stepEveryMs, stepRecords,
    failed: (phase, err) => { throw new Error(`${phase}: ${String(err)}`); },
    log: pino({ level: 'silent' }),
  });
  ledger.onCommitted((records) => pipeline.take(records));
  await pipeline.start();
  return { ledger, pipeline, ...c };
}

describe('check pipeline: steps spaced while commits keep coming', () => {
  it('takes the first commit at once, joins the commits of the spacing into one step, and takes it when the spacing ends', async () => {
    const SPACING = 1500;
    const { ledger, pipeline, steps, next } = await setUp(SPACING);
    const first = next();
    await ledger.append(reading('r0'));
    await first; // the leading edge: no wait after a quiet spell
    expect(steps.map((s) => s.seqs)).toEqual([[1]]);

    // Four commits, one group each, inside the spacing: none is a step of its own.
    const joined = next();
    for (const id of ['r1', 'r2', 'r3', 'r4']) await ledger.append(reading(id));
    await joined;
    expect(steps.map((s) => s.seqs)).toEqual([[1], [2, 3, 4, 5]]);
    // Not before the spacing ended (a lower bound: a loaded box only makes it later; the spacing
    // counts from the start of the first step, a little before its onRecords).
    expect(steps[1]!.at - steps[0]!.at).toBeGreaterThanOrEqual(SPACING - 100);

    await pipeline.stop();
    await ledger.close();
  });

  it('takes a step at once when a step\'s worth of records waits, spacing or not (large commits at high rates)', async () => {
    const { ledger, pipeline, steps, next } = await setUp(60_000, 3);
    const first = next();
    await ledger.append(reading('a'));
    await first;
    const second = next();
    await ledger.appendMany([reading('b'), reading('c'), reading('d')]);
    await second; // within the minute of spacing: the test's timeout says otherwise
    expect(steps.map((s) => s.seqs)).toEqual([[1], [2, 3, 4]]);
    await pipeline.stop();
    await ledger.close();
  });

  it('does not make a waiter in idle() wait for the spacing', async () => {
    const { ledger, pipeline, steps, next } = await setUp(60_000);
    const first = next();
    await ledger.append(reading('a'));
    await first;
    await ledger.append(reading('b'));
    await ledger.append(reading('c'));
    const asked = performance.now();
    await pipeline.idle();
    expect(steps.map((s) => s.seqs)).toEqual([[1], [2, 3]]);
    expect(performance.now() - asked).toBeLessThan(30_000); // not the minute of spacing
    expect(pipeline.cursor).toBe(3);
    await pipeline.stop();
    await ledger.close();
  });
});

describe('check pipeline of one shard (region mode)', () => {
  it('reads back only its shard\'s sites from the ledger, and gets every record of them', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pipeline-test-'));
    dirs.push(dir);
    const ledger = await Ledger.open(dir);
    const sites = Array.from({ length: 12 }, (_, i) => `S-${i}`);
    // Committed before the check starts: it reads them back, 10 a read.
    await ledger.appendMany(Array.from({ length: 120 }, (_, i) => ({ ...reading(`r${i}`), siteId: sites[i % 12]!, dedupeKey: `D1/r${i}` })));
    const shard = siteShard({ index: 1, of: 3 });
    const owns = (siteId: string) => shardOf(siteId, 3) === 1;
    const mine = ledger.readAfter(0, 1000).filter((r) => owns(r.siteId)).map((r) => r.seq);
    const readSites: string[] = [];
    const readAfter = ledger.readAfter.bind(ledger);
    ledger.readAfter = (...args: Parameters<Ledger['readAfter']>) => {
      const rows = readAfter(...args);
      readSites.push(...rows.map((r) => r.siteId));
      return rows;
    };
    const c = countingCheck();
    const db = openStateDb(':memory:');
    const pipeline = new CheckPipeline(c.check, ledger, new CheckProgress(db, 'counting#1'), {
      maxQueued: 1000, readBack: 10, retryMs: 100, maxAttempts: 2, saveEveryMs: 1000, stepEveryMs: 10, stepRecords: 100, shard,
      failed: (phase, err) => { throw new Error(`${phase}: ${String(err)}`); },
      log: pino({ level: 'silent' }),
    });
    await pipeline.start();
    await pipeline.idle();
    expect(mine.length).toBeGreaterThan(0);
    expect(c.steps.flatMap((st) => st.seqs)).toEqual(mine);
    // Without the shard in the read, every site's records would come back and be dropped here.
    expect(readSites.length).toBeGreaterThan(0);
    expect(readSites.filter((site) => !owns(site))).toEqual([]);
    await pipeline.stop();
    await ledger.close();
  });
});
