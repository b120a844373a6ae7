/**
 * Wage-payment CSV ingest: time and memory for 10,000, 100,000 and 300,000 rows posted as one
 * streamed `text/csv` body with per-row NDJSON verdicts (the answer read line by line, the file
 * streamed from disk, so the client holds neither). The gateway runs in this process (no checks,
 * no sinks): RSS and heap are sampled every 20 ms; "retained" is the heap after a forced GC once
 * the upload is answered — flat when memory is bounded.
 *
 *   node --expose-gc --import tsx test/bench/wageCsv.ts
 */
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { testCard } from '../support/cards.ts';
import { ADMIN_TOKEN, startGateway, tempDir } from '../support/gateway.ts';

const WORKERS = 500;

function writeCsv(file: string, rows: number, prefix: string): void {
  const fd = fs.openSync(file, 'w');
  let buf = '\uFEFFid,workerId,period,amount,paidAt,card,status\r\n';
  for (let i = 1; i <= rows; i++) {
    buf += `${prefix}-${i},W${i % WORKERS},2026-09,2000.00,2026-10-10T10:00:00+08:00,${testCard(i % WORKERS)},${i % 7 ? 'paid' : 'failed'}\r\n`;
    if (buf.length > 1 << 20) { fs.writeSync(fd, buf); buf = ''; }
  }
  fs.writeSync(fd, buf);
  fs.closeSync(fd);
}

export async function runWageCsvBench(o: { log?: (s: string) => void; sizes?: number[] } = {}): Promise<Record<string, number>> {
  const log = o.log ?? console.log;
  const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
  const g = await startGateway({}, { checks: [] });
  const dir = tempDir('sitegate-wagecsv-');
  const out: Record<string, number> = {};
  try {
    await g.api('PUT', '/sites/S', { name: 'S', regionCode: '330106' });
    for (let i = 0; i < WORKERS; i++) g.gw.registry.putWorker('S', `W${i}`, { name: `W${i}`, wageCard: testCard(i) });
    for (const rows of o.sizes ?? [10_000, 100_000, 300_000]) {
      const file = path.join(dir, `${rows}.csv`);
      writeCsv(file, rows, `P${rows}`);
      gc();
      const base = process.memoryUsage();
      let peakRss = base.rss, peakHeap = base.heapUsed;
      const sampler = setInterval(() => {
        const m = process.memoryUsage();
        peakRss = Math.max(peakRss, m.rss);
        peakHeap = Math.max(peakHeap, m.heapUsed);
      }, 20);
      const t0 = performance.now();
      const res = await fetch(`${g.httpUrl}/api/v1/sites/S/wage-payments`, {
        method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'text/csv', accept: 'application/x-ndjson' },
        body: Readable.toWeb(fs.createReadStream(file)) as ReadableStream, duplex: 'half',
      } as RequestInit);
      let lines = 0;
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) for (const b of chunk) if (b === 10) lines++;
      const seconds = (performance.now() - t0) / 1000;
      clearInterval(sampler);
      gc();
      const retained = process.memoryUsage().heapUsed;
      if (res.status !== 200 || lines !== rows + 1) throw new Error(`${rows} rows: status ${res.status}, ${lines} verdict lines`);
      const mb = (n: number) => Math.round(n / 1048576);
      const k = `${rows / 1000}k`;
      Object.assign(out, {
        [`${k} seconds`]: +seconds.toFixed(2), [`${k} rows/s`]: Math.round(rows / seconds),
        [`${k} RSS base MB`]: mb(base.rss), [`${k} RSS peak MB`]: mb(peakRss), [`${k} heap peak MB`]: mb(peakHeap), [`${k} heap retained MB`]: mb(retained),
      });
      log(`${rows} rows: ${seconds.toFixed(2)} s (${Math.round(rows / seconds)} rows/s), RSS ${mb(base.rss)} → peak ${mb(peakRss)} MB, heap ${mb(base.heapUsed)} → peak ${mb(peakHeap)} → retained ${mb(retained)} MB, CSV ${(fs.statSync(file).size / 1048576).toFixed(1)} MB`);
      fs.rmSync(file);
    }
  } finally {
    await g.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  await runWageCsvBench();
}
