/**
 * SinkRunner against a real ledger and registry (SQLite in a temp dir) and a scripted sink, for
 * the timing and failure paths a real database cannot be made to hit on cue: retry back-off
 * while records keep arriving, stop() during a failing write, and a 5xx in the middle of
 * splitting a bad batch. The real-database paths are in influx.test.ts and test/influx.e2e.test.ts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Ledger } from '../ledger/ledger.ts';
import type { LedgerRecord, StoredRecord } from '../ledger/types.ts';
import { createMetrics } from '../observability/metrics.ts';
import { Registry } from '../registry/registry.ts';
import { toLines } from './influxLineProtocol.ts';
import { SinkError, type Sink } from './sink.ts';
import { SinkRunner, type SinkRunnerOptions } from './sinkRunner.ts';
import { SinkStateStore } from './sinkState.ts';

/** A sink whose answer to each write is decided by the test. */
class ScriptedSink implements Sink {
  readonly name = 'scripted';
  readonly calls: string[][] = [];
  readonly stored: string[] = [];
  answer: (lines: string[], call: number) => Promise<void> | void = () => {};
  /** The runner hands it records; the test scripts its answers by the records' line protocol. */
  async write(records: StoredRecord[]): Promise<void> {
    const lines = toLines(records, () => 'sensor');
    this.calls.push(lines);
    await this.answer(lines, this.calls.length);
    this.stored.push(...lines);
  }
  render(record: StoredRecord): string { return toLines([record], () => 'sensor').join('\n'); }
  async ping(): Promise<boolean> { return true; }
  async close(): Promise<void> {}
}

const down = () => { throw new SinkError('retryable', 'connect ECONNREFUSED'); };

let dir: string;
let ledger: Ledger;
let registry: Registry;
let runner: SinkRunner | undefined;
const ts0 = Date.UTC(2026, 10, 2, 0, 0, 0);

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sitegate-sinkrunner-'));
  registry = new Registry(dir, { scryptN: 1024, now: () => ts0 });
  ledger = await Ledger.open(dir);
});

afterEach(async () => {
  await runner?.stop(0);
  runner = undefined;
  await ledger.close();
  registry.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function reading(i: number, metrics: Record<string, number> = { pm10: i + 0.5 }): LedgerRecord {
  return { siteId: 'S1', deviceId: 'D1', kind: 'reading', msgId: `r-${i}`, dedupeKey: `D1/r-${i}`, ts: ts0 + i, receivedAt: ts0 + i, body: { metrics } };
}

function start(sink: Sink, opts: Partial<SinkRunnerOptions> = {}): SinkRunner {
  runner = new SinkRunner({ sink, ledger, state: new SinkStateStore(registry.db), metrics: createMetrics(), logger: pino({ level: 'silent' }), now: () => ts0, flushMs: 1, ...opts });
  runner.start();
  return runner;
}

async function until(what: string, ok: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const deadLetterRows = () => registry.db.prepare('SELECT seq, line FROM dead_letters ORDER BY id').all() as { seq: number; line: string }[];

describe('SinkRunner', () => {
  it('backs off while the database is down, even though records keep arriving', async () => {
    const sink = new ScriptedSink();
    sink.answer = down;
    // Back-off fixed at 10 s after the first failure (random = 1, min = max).
    const r = start(sink, { batchSize: 5, minBackoffMs: 10_000, maxBackoffMs: 10_000, random: () => 1 });
    await ledger.append(reading(0));
    await until('the first attempt', () => sink.calls.length === 1 && r.state().lastError !== undefined);
    // 40 more commits, each one a wake-up chance, far more than a batch: none may cut the back-off short.
    for (let i = 1; i <= 40; i++) await ledger.append(reading(i));
    expect(sink.calls).toHaveLength(1);
    expect(r.state()).toMatchObject({ lagRecords: 41, healthy: false, cursor: 0 });
    // stop() ends the back-off at once instead of waiting it out.
    const t = performance.now();
    await r.stop(0);
    expect(performance.now() - t).toBeLessThan(1000);
  });

  it('stop() during a failing write does not sit out the back-off that follows', async () => {
    const sink = new ScriptedSink();
    let fail!: () => void;
    sink.answer = () => new Promise<void>((_, reject) => { fail = () => reject(new SinkError('retryable', 'HTTP 503')); });
    const r = start(sink, { minBackoffMs: 30_000, maxBackoffMs: 30_000, random: () => 1 });
    await ledger.append(reading(0));
    await until('the write in flight', () => sink.calls.length === 1);
    const t = performance.now();
    const stopped = r.stop(0);
    fail();
    await stopped;
    expect(performance.now() - t).toBeLessThan(1000);
    expect(r.state().cursor).toBe(0); // unconfirmed: the next start sends it again
  });

  it('a 5xx in the middle of splitting a bad batch keeps the settled part: no point dead-lettered twice, none rewritten', async () => {
    const sink = new ScriptedSink();
    const bad = (l: string) => l.includes('noise_dba');
    let outage = true;
    sink.answer = (lines) => {
      if (lines.some(bad)) throw new SinkError('bad_data', 'partial write: field type conflict', 400);
      // The database goes away right after the bad point was isolated (the first write past it).
      if (outage && lines[0]!.endsWith(` ${ts0 + 3}`)) { outage = false; down(); }
    };
    const records = Array.from({ length: 8 }, (_, i) => reading(i, i === 2 ? { noise_dba: 70.5 } : { pm10: i + 0.5 }));
    await ledger.appendMany(records);
    const r = start(sink, { minBackoffMs: 1, maxBackoffMs: 1 });
    await until('the batch settled', () => r.state().lagRecords === 0);
    expect(deadLetterRows()).toEqual([{ seq: 3, line: `reading,device=D1,site=S1 noise_dba=70.5 ${ts0 + 2}` }]);
    expect(r.state()).toMatchObject({ deadLetters: 1, cursor: 8, healthy: true });
    // Each good point confirmed once: 0 and 1 before the outage, 3..7 after it.
    expect(sink.stored.map((l) => Number(l.slice(l.lastIndexOf(' ') + 1)) - ts0)).toEqual([0, 1, 3, 4, 5, 6, 7]);
  });

  it('resumes from the saved cursor after a restart, and keeps counting its dead letters', async () => {
    const sink = new ScriptedSink();
    sink.answer = (lines) => { if (lines.some((l) => l.includes('noise_dba'))) throw new SinkError('bad_data', 'field type conflict', 400); };
    await ledger.appendMany([reading(0), reading(1, { noise_dba: 1 }), reading(2)]);
    const r1 = start(sink);
    await until('caught up', () => r1.state().lagRecords === 0);
    await r1.stop();
    await ledger.appendMany([reading(3), reading(4)]);
    const again = new ScriptedSink();
    const r2 = start(again);
    expect(r2.state()).toMatchObject({ cursor: 3, lagRecords: 2, deadLetters: 1 });
    await until('caught up again', () => r2.state().lagRecords === 0);
    expect(again.stored.map((l) => Number(l.slice(l.lastIndexOf(' ') + 1)) - ts0)).toEqual([3, 4]);
  });
});
