/**
 * The ledger's appendMany throughput on PostgreSQL (gateway/src/ledger/pg) beside the SQLite
 * ledger, in the same run, on the same records and load: `window` callers, each appending a
 * call of `callSize` readings and waiting for its commit before the next (as devices waiting for
 * their PUBACK). Group commit forms the groups; the figures say how large they got.
 *
 *   BENCH_ONLY=pgLedger npm run bench        (BENCH_PG_RECORDS=100000 BENCH_PG_CALL=10 BENCH_PG_WINDOW=500)
 *
 * PostgreSQL is a real local server (test/support/postgres.ts, fsync on, synchronous_commit on),
 * so both ledgers fsync every group. CPU is this process's only (the gateway side): the
 * server's own CPU is not in it — on a 2-core box the two compete, so read records/s with that.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Ledger } from '../../gateway/src/ledger/ledger.ts';
import { PgLedger } from '../../gateway/src/ledger/pg/pgLedger.ts';
import type { AppendResult, LedgerRecord } from '../../gateway/src/ledger/types.ts';
import { startPostgres } from '../support/postgres.ts';

interface Run { recordsPerSec: number; commits: number; recordsPerCommit: number; commitMsMean: number; cpuUsPerRecord: number }

function records(total: number, runId: string): LedgerRecord[] {
  const T0 = Date.parse('2026-09-01T00:00:00Z');
  return Array.from({ length: total }, (_, i) => {
    const deviceId = `D${i % 500}`, msgId = `${runId}-${i}`;
    return { siteId: `S${i % 20}`, deviceId, kind: 'reading', msgId, dedupeKey: `${deviceId}/${msgId}`, ts: T0 + i, receivedAt: T0 + i, body: { metrics: { pm10: i % 300, pm25: i % 150, noise: 40 + (i % 50) } } };
  });
}

async function drive(appendMany: (rs: LedgerRecord[]) => Promise<AppendResult[]>, rs: LedgerRecord[], callSize: number, window: number, commits: { n: number; ms: number }): Promise<Run> {
  let next = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: window }, async () => {
    while (next < rs.length) {
      const start = next;
      next += callSize;
      const res = await appendMany(rs.slice(start, start + callSize));
      if (res.some((r) => r.seq === null)) throw new Error('a fresh record came back as a duplicate');
    }
  }));
  const s = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return {
    recordsPerSec: Math.round(rs.length / s),
    commits: commits.n,
    recordsPerCommit: Math.round((rs.length / commits.n) * 10) / 10,
    commitMsMean: Math.round((commits.ms / commits.n) * 100) / 100,
    cpuUsPerRecord: Math.round(((cpu.user + cpu.system) / rs.length) * 10) / 10,
  };
}

export async function runPgLedgerBench(o: { log: (s: string) => void } = { log: console.log }): Promise<Record<string, number>> {
  const total = Number(process.env.BENCH_PG_RECORDS ?? 100_000);
  const callSize = Number(process.env.BENCH_PG_CALL ?? 10);
  const window = Number(process.env.BENCH_PG_WINDOW ?? 500);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-pg-ledger-'));
  const server = await startPostgres();
  try {
    const out: Record<string, number> = { records: total, callSize, window };
    o.log(`${total} readings in calls of ${callSize}, ${window} callers each waiting for its commit`);

    const sqliteCommits = { n: 0, ms: 0 };
    const sqlite = await Ledger.open(path.join(dir, 'sqlite'), { onCommit: ({ commitMs }) => { sqliteCommits.n++; sqliteCommits.ms += commitMs; } });
    const s = await drive((rs) => sqlite.appendMany(rs), records(total, 'sqlite'), callSize, window, sqliteCommits);
    await sqlite.close();
    o.log(`sqlite:   ${s.recordsPerSec} records/s, ${s.recordsPerCommit} records/commit (${s.commits} commits, ${s.commitMsMean} ms each), ${s.cpuUsPerRecord} µs CPU/record in this process`);

    const pgCommits = { n: 0, ms: 0 };
    const url = await server.createDatabase('bench_ledger');
    const pgl = await PgLedger.open({ connectionString: url, evidenceDir: path.join(dir, 'pg-evidence'), onCommit: ({ commitMs }) => { pgCommits.n++; pgCommits.ms += commitMs; } });
    const p = await drive((rs) => pgl.appendMany(rs), records(total, 'pg'), callSize, window, pgCommits);
    await pgl.close();
    o.log(`postgres: ${p.recordsPerSec} records/s, ${p.recordsPerCommit} records/commit (${p.commits} commits, ${p.commitMsMean} ms round trip each), ${p.cpuUsPerRecord} µs CPU/record in this process (server CPU not counted)`);

    for (const [k, v] of Object.entries(s)) out[`sqlite ${k}`] = v;
    for (const [k, v] of Object.entries(p)) out[`postgres ${k}`] = v;
    out['postgres ÷ sqlite records/s'] = Math.round((p.recordsPerSec / s.recordsPerSec) * 1000) / 1000;
    return out;
  } finally {
    await server.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && pathToFileURL(path.resolve(process.argv[1])).href === import.meta.url) {
  const r = await runPgLedgerBench();
  console.log(JSON.stringify(r, null, 2));
}
