/**
 * `npm run bench`: the ingest benchmark (bare aedes vs the durable pipeline, QoS 0 telemetry,
 * RSS with idle devices), then the face and hazard benchmarks when their files exist. Prints a
 * table at the end and writes every figure to bench-results.json (gitignored).
 *
 * BENCH_ONLY=ingest,face,faceLoad,hazard,history,stop,commands,agent picks parts (pgLedger, the ledger on PostgreSQL
 * beside SQLite; region, 1–3 gateways in region mode on one PostgreSQL; and replay, the public month into the gateway and
 * into bare aedes, run only when named); the ingest knobs are listed in test/bench/ingest.ts, the region ones in test/bench/region.ts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ingestTable, profileDetail, runIngestBench, type IngestResults } from './ingest.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const RESULTS_FILE = path.resolve(HERE, '../../bench-results.json');
const only = new Set((process.env.BENCH_ONLY ?? 'ingest,face,faceLoad,hazard,history,stop,commands,agent').split(','));

const results: Record<string, unknown> = { startedAt: new Date().toISOString(), host: { cpus: os.availableParallelism(), node: process.version, loadavg: os.loadavg() } };
const table: [string, string][] = [];
const notes: string[] = [];

if (only.has('ingest')) {
  try {
    const r: IngestResults = await runIngestBench();
    results.ingest = r;
    table.push(...ingestTable(r));
    notes.push(...profileDetail(r));
  } catch (e) {
    console.error(`ingest bench failed: ${(e as Error).stack}`);
    results.ingest = { error: (e as Error).message };
    table.push(['ingest', `FAILED: ${(e as Error).message.split('\n')[0]}`]);
    process.exitCode = 1;
  }
}

/** Other engineers' benches: run when present, reported as they return (a flat record of figures). */
const others: { name: string; file: string; fn: string }[] = [
  { name: 'face', file: 'face.ts', fn: 'runFaceBench' },
  { name: 'faceLoad', file: 'faceLoad.ts', fn: 'runFaceLoadBench' },
  { name: 'hazard', file: 'hazard.ts', fn: 'runHazardBench' },
  { name: 'history', file: 'history.ts', fn: 'runHistoryBench' },
  { name: 'stop', file: 'stop.ts', fn: 'runStopBench' },
  { name: 'commands', file: 'commands.ts', fn: 'runCommandsBench' },
  { name: 'agent', file: 'agentBacklog.ts', fn: 'runAgentBacklogBench' },
  // Opt-in only (not in the default BENCH_ONLY): the public month through ../shared/tools/replay.mjs, gateway vs bare aedes.
  { name: 'replay', file: 'replay.ts', fn: 'runReplayBench' },
  // Opt-in only (not in the default BENCH_ONLY): starts its own PostgreSQL.
  { name: 'pgLedger', file: 'pgLedger.ts', fn: 'runPgLedgerBench' },
  // Opt-in only: PostgreSQL, Redis and 1–3 gateway processes in region mode beside the SQLite one (~3–5 min).
  { name: 'region', file: 'region.ts', fn: 'runRegionBench' },
];
for (const b of others) {
  if (!only.has(b.name)) continue;
  const file = path.join(HERE, b.file);
  if (!fs.existsSync(file)) {
    console.log(`note: test/bench/${b.file} is not there (yet); skipping the ${b.name} bench`);
    table.push([b.name, `skipped: test/bench/${b.file} absent`]);
    continue;
  }
  console.log(`\n${b.name}:`);
  try {
    const mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
    const run = mod[b.fn];
    if (typeof run !== 'function') throw new Error(`test/bench/${b.file} does not export ${b.fn}()`);
    const r = (await run({ log: (s: string) => console.log(`  ${s}`) })) as Record<string, unknown>;
    results[b.name] = r;
    for (const [k, v] of Object.entries(r ?? {})) table.push([`${b.name} ${k}`, typeof v === 'number' ? String(Math.round(v * 1000) / 1000) : JSON.stringify(v)]);
  } catch (e) {
    console.error(`${b.name} bench failed: ${(e as Error).stack}`);
    results[b.name] = { error: (e as Error).message };
    table.push([b.name, `FAILED: ${(e as Error).message.split('\n')[0]}`]);
    process.exitCode = 1;
  }
}

fs.writeFileSync(RESULTS_FILE, JSON.stringify(results, null, 2) + '\n');

const width = Math.min(44, Math.max(...table.map(([k]) => k.length)));
console.log(`\n${'─'.repeat(100)}\nsitegate bench (${os.availableParallelism()} CPUs, load average at start ${(results.host as { loadavg: number[] }).loadavg.map((x) => x.toFixed(1)).join(' ')})\n${'─'.repeat(100)}`);
for (const [k, v] of table) console.log(`${k.padEnd(width)}  ${v}`);
if (notes.length) console.log(`\nwhere the time goes (CPU profile, self time in the measured window):\n${notes.join('\n')}`);
console.log(`\nfigures written to ${path.relative(process.cwd(), RESULTS_FILE) || RESULTS_FILE}`);
