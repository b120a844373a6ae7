import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testCard } from './support/cards.ts';
import { startGateway, tempDir, type TestGateway } from './support/gateway.ts';

const SITE = 'S-PAY';
// A forced GC tells retained memory from garbage not yet collected (vitest workers run without --expose-gc).
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
const WORKERS = 500;
const worker = (i: number) => `W${String(i % WORKERS).padStart(4, '0')}`;

/** A payroll file: `rows` payments; every 1000th row has a bad amount, every 1500th an unknown worker, every 2500th a card failing Luhn. */
function writeCsv(file: string, rows: number, prefix: string): { bad: number } {
  const fd = fs.openSync(file, 'w');
  let bad = 0;
  let buf = '\uFEFFid,workerId,period,amount,paidAt,card,status\r\n';
  for (let i = 1; i <= rows; i++) {
    const w = i % 1500 === 0 ? 'W-UNKNOWN' : worker(i);
    const amount = i % 1000 === 0 ? '-5' : `${(2000 + (i % 997)).toFixed(2)}`;
    const card = i % 2500 === 0 ? '6217000000000000001' : testCard(i % WORKERS);
    if (i % 1000 === 0 || i % 1500 === 0 || i % 2500 === 0) bad++;
    buf += `${prefix}-${i},${w},2026-${String(1 + (i % 9)).padStart(2, '0')},"${amount}",2026-10-10T10:00:00+08:00,${card},${i % 7 === 0 ? 'failed' : 'paid'}\r\n`;
    if (buf.length > 1 << 20) { fs.writeSync(fd, buf); buf = ''; }
  }
  fs.writeSync(fd, buf);
  fs.closeSync(fd);
  return { bad };
}

interface Upload { seconds: number; status: number; lines: number; outcomes: Record<string, number>; summary: any; rowsSeen: number; peakRssMb: number; baseRssMb: number; peakHeapMb: number; baseHeapMb: number; retainedHeapMb: number }

/**
 * Streams a CSV file to the gateway and reads the NDJSON answer line by line, keeping neither in
 * memory, while sampling this process's RSS and heap (the gateway runs in it too).
 */
async function upload(g: TestGateway, file: string): Promise<Upload> {
  gc();
  const base = process.memoryUsage();
  let peakRss = base.rss, peakHeap = base.heapUsed;
  const sampler = setInterval(() => {
    const m = process.memoryUsage();
    peakRss = Math.max(peakRss, m.rss);
    peakHeap = Math.max(peakHeap, m.heapUsed);
  }, 20);
  const t0 = performance.now();
  const res = await fetch(`${g.httpUrl}/api/v1/sites/${SITE}/wage-payments`, {
    method: 'POST', headers: { authorization: `Bearer test-admin-token-0123456789abcdef`, 'content-type': 'text/csv', accept: 'application/x-ndjson' },
    body: Readable.toWeb(fs.createReadStream(file)) as ReadableStream, duplex: 'half',
  } as RequestInit);
  const outcomes: Record<string, number> = {};
  let lines = 0, rest = '', summary: any, lastRow = 1, ordered = true;
  const decoder = new TextDecoder();
  const take = (line: string) => {
    if (!line) return;
    lines++;
    const v = JSON.parse(line);
    if (v.summary) { summary = v.summary; return; }
    outcomes[v.outcome] = (outcomes[v.outcome] ?? 0) + 1;
    if (v.row !== lastRow + 1) ordered = false;
    lastRow = v.row;
  };
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    const parts = (rest + decoder.decode(chunk, { stream: true })).split('\n');
    rest = parts.pop()!;
    for (const l of parts) take(l);
  }
  take(rest);
  const seconds = (performance.now() - t0) / 1000;
  clearInterval(sampler);
  expect(ordered, 'one verdict per row, in row order').toBe(true);
  await g.gw.checks.idle();
  gc();
  const mb = (n: number) => Math.round(n / 1048576);
  return {
    seconds, status: res.status, lines, outcomes, summary, rowsSeen: lastRow - 1, peakRssMb: mb(peakRss), baseRssMb: mb(base.rss),
    peakHeapMb: mb(peakHeap), baseHeapMb: mb(base.heapUsed), retainedHeapMb: mb(process.memoryUsage().heapUsed),
  };
}

describe('wage payments: a 100,000-row CSV', () => {
  let g: TestGateway;
  const dir = tempDir('sitegate-csv-');
  const figures: Record<string, unknown> = {};

  beforeAll(async () => {
    g = await startGateway();
    await g.api('PUT', `/sites/${SITE}`, { name: SITE, regionCode: '330106' });
    for (let i = 0; i < WORKERS; i++) g.gw.registry.putWorker(SITE, worker(i), { name: worker(i), wageCard: testCard(i) });
  }, 60_000);
  afterAll(async () => {
    console.log(`wage-payment CSV figures: ${JSON.stringify(figures)}`);
    await g?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('ingests every row with a verdict per row, memory bounded (nothing retained per row)', async () => {
    const small = path.join(dir, 'small.csv');
    writeCsv(small, 10_000, 'S');
    const s = await upload(g, small);
    expect(s.status).toBe(200);
    const big = path.join(dir, 'big.csv');
    const { bad } = writeCsv(big, 100_000, 'B');
    const b = await upload(g, big);
    expect(b.status).toBe(200);
    expect(b.rowsSeen).toBe(100_000);
    expect(b.lines).toBe(100_001);
    expect(b.summary).toEqual({ accepted: 100_000 - bad, duplicate: 0, rejected: bad });
    expect(b.outcomes).toEqual({ accepted: 100_000 - bad, rejected: bad });
    expect((await g.gw.ledger.countByKind()).wage_payment).toBe(110_000 - bad - writeCsvBad(10_000));
    const fig = (u: Upload) => ({ seconds: +u.seconds.toFixed(2), rowsPerS: Math.round(u.rowsSeen / u.seconds), rssMb: `${u.baseRssMb}→${u.peakRssMb}`, heapMb: `${u.baseHeapMb}→peak ${u.peakHeapMb}→retained ${u.retainedHeapMb}` });
    figures.rows10k = fig(s);
    figures.rows100k = { ...fig(b), csvMb: +(fs.statSync(big).size / 1048576).toFixed(1) };
    // Bounded: nothing per row is kept (chunks of 1000 rows, verdicts spooled to disk), and the
    // peak is a chunk's worth plus garbage not yet collected, not the file.
    expect(b.retainedHeapMb - b.baseHeapMb).toBeLessThan(20);
    expect(b.peakRssMb - b.baseRssMb).toBeLessThan(250);
    // A resent file changes nothing: every row a duplicate or the same rejection.
    const again = await upload(g, big);
    expect(again.summary).toEqual({ accepted: 0, duplicate: 100_000 - bad, rejected: bad });
    figures.resend100k = { seconds: +again.seconds.toFixed(2) };
  }, 240_000);
});

function writeCsvBad(rows: number): number {
  let bad = 0;
  for (let i = 1; i <= rows; i++) if (i % 1000 === 0 || i % 1500 === 0 || i % 2500 === 0) bad++;
  return bad;
}
