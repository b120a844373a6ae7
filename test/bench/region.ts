/**
 * Region mode throughput (contract §8, issue 14): 1, 2 and 3 gateway processes on one real
 * PostgreSQL (ledger and state; SITEGATE_DATABASE_URL), their brokers joined by one real Redis
 * when there are two or more (SITEGATE_REDIS_URL), beside the embedded single instance (SQLite)
 * as the baseline, in the same run, with the same load generator and load.
 *
 *   BENCH_ONLY=region npm run bench        (or npx tsx test/bench/region.ts)
 *
 * Knobs (all bounded): BENCH_REGION_INSTANCES (1,2,3), BENCH_REGION_DEVICES (24),
 * BENCH_REGION_WINDOW (50 QoS 1 publishes in flight per device), BENCH_REGION_MESSAGES (30000 per
 * measured run), BENCH_REGION_WARMUP (6000), BENCH_REGION_ROUNDS (2), BENCH_REGION_SQLITE (on),
 * BENCH_REGION_PROFILE (off; on: every gateway runs under --cpu-prof and the last measured run of
 * each configuration is split by category and gateway stage — CPU figures then include the
 * profiler's cost, so keep such runs apart from the measured ones; BENCH_KEEP_PROFILES keeps the files),
 * BENCH_REGION_WAITS (off; on: pg_stat_activity is sampled every 20 ms during each run and what the
 * sitegate connections were doing is tallied — active, waiting on a lock (advisory = the append or
 * state write lock), on WAL flush, idle in transaction — a sampler that costs PostgreSQL a little).
 *
 * Each configuration gets fresh gateways (own data dirs) and, on PostgreSQL, a database of its own
 * on the one server, so every configuration starts from an empty ledger. Devices are registered
 * once through the first instance's API (the registry is shared) and spread round-robin over the
 * instances' MQTT ports by one generator process (test/bench/loadgen.ts, raw sockets, QoS 1).
 *
 * Per run: delivered msg/s (PUBACKed ÷ the generator's wall time), PUBACK p50/p99, and CPU µs per
 * message from /proc (utime+stime, before/after) of each gateway process, of every PostgreSQL
 * process (the postmaster, its living children, and its cutime+cstime for children that exited),
 * of redis-server and of the generator. CPU is read once every instance has heard every commit of
 * the region (the follow mode's tail reads count) plus a 300 ms settle, the same for SQLite.
 * After every run the ledger is checked: PostgreSQL holds exactly the acknowledged messages
 * (count(*) of the run's message ids, and of the whole table against everything acknowledged);
 * for SQLite the ledger's lastSeq moved by exactly the acknowledged count. A mismatch fails the bench.
 *
 * No InfluxDB sink in either configuration: what is measured is ingest to the durable ledger with
 * the checks running (on one instance by lease in region mode). Not run by `npm run bench` by
 * default (it starts PostgreSQL, Redis and up to four gateways): name it in BENCH_ONLY.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';
import { startPostgres } from '../support/postgres.ts';
import { startRedis, type RedisServer } from '../support/redis.ts';
import { registerDevices, softNofile, spawnTs, splitProfiles, startTarget, stopTarget, type CpuSplit, type LoadGen, type Target } from './ingest.ts';
import type { Command as LoadCommand, DeviceCreds, Reply as LoadReply } from './loadgen.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CLK_TCK = 100; // USER_HZ on Linux
const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;
const envInt = (k: string, d: number) => (process.env[k] ? Number(process.env[k]) : d);
const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[xs.length >> 1]!;

// — /proc —

interface ProcStat { comm: string; ppid: number; ticks: number; childTicks: number }

function procStat(pid: number): ProcStat | undefined {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // After the comm: state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14)
    return { comm: s.slice(s.indexOf('(') + 1, s.lastIndexOf(')')), ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]), childTicks: Number(f[13]) + Number(f[14]) };
  } catch {
    return undefined;
  }
}

function allProcs(): Map<number, ProcStat> {
  const out = new Map<number, ProcStat>();
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    const s = procStat(Number(p));
    if (s) out.set(Number(p), s);
  }
  return out;
}

/** Our own child named `comm` (the postmaster and redis-server are spawned by this process). */
function ourChild(comm: string): number | undefined {
  for (const [pid, s] of allProcs()) if (s.comm === comm && s.ppid === process.pid) return pid;
  return undefined;
}

/** CPU ticks of PostgreSQL as a whole: the postmaster, its living children, and the children it has reaped. */
function postgresTicks(postmaster: number): { ticks: number; processes: number } {
  const procs = allProcs();
  const pm = procs.get(postmaster);
  if (!pm) return { ticks: NaN, processes: 0 };
  let ticks = pm.ticks + pm.childTicks, n = 1;
  for (const s of procs.values()) if (s.ppid === postmaster) { ticks += s.ticks; n++; }
  return { ticks, processes: n };
}

const ticksOf = (pid: number) => procStat(pid)?.ticks ?? NaN;

// — the runs —

const waitsOn = !!process.env.BENCH_REGION_WAITS && process.env.BENCH_REGION_WAITS !== 'off';

/** Tallies what each kind of sitegate connection is doing, every 20 ms, until stopped. */
function sampleWaits(db: pg.Client): { stop(): Promise<Record<string, Record<string, number>>> } {
  const tally: Record<string, Record<string, number>> = {};
  let running = true;
  const loop = (async () => {
    while (running) {
      const r = await db.query<{ app: string; what: string }>(
        `SELECT regexp_replace(application_name, '[ :]bench-[0-9]+$', '') AS app,
                state || COALESCE(':' || wait_event_type || '/' || wait_event, '') AS what
         FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name LIKE 'sitegate%'`);
      for (const { app, what } of r.rows) (tally[app] ??= {})[what] = (tally[app]![what] ?? 0) + 1;
      await new Promise((res) => setTimeout(res, 20));
    }
  })();
  return { async stop() { running = false; await loop; return tally; } };
}

export interface RegionRun {
  config: string; instances: number; store: 'sqlite' | 'postgres'; round: number;
  messages: number; seconds: number; msgPerS: number; ackP50Ms: number; ackP99Ms: number;
  /** CPU µs per message: each gateway, their sum, postgres, redis, the generator; total = gateways + postgres + redis. */
  cpuUsPerMsg: { gateways: number[]; gateway: number; postgres: number; redis: number; total: number; loadgen: number };
  /** Cores busy over the run's wall time (same processes). */
  cores: { gateway: number; postgres: number; redis: number; loadgen: number };
  postgresProcesses?: number;
  /** Each instance's ledger group commits during the run: records per group, commit round trip p50/p99 (ms). */
  commits: { groups: number; groupMean: number; commitMsP50: number; commitMsP99: number }[];
  loadavg: number;
  /** WAL written per message over the run (ledger + state, all instances); ledger_records size per row (heap + indexes, and heap alone). */
  pgBytes?: { xactsPerGroup: number; walPerMsg: number; tableAndIndexesPerRow: number; heapPerRow: number };
  /** CLOCK_MONOTONIC µs of the load (to cut a CPU profile to it). */
  window: { fromUs: number; toUs: number };
  /** BENCH_REGION_WAITS: samples of pg_stat_activity per connection kind (application_name without the instance) and state/wait. */
  waits?: Record<string, Record<string, number>>;
  /** The ledger check: acknowledged = stored. */
  stored: number;
}

interface Phase { config: string; instances: number; store: 'sqlite' | 'postgres'; gateways: Target[]; db?: pg.Client; redis?: RedisServer }

/** Event time of the readings: in the past, every 10 s per device, runs following one another. */
const TS_STEP_MS = 10_000;
let tsCursor = Date.now() - 40 * 86_400_000;

async function runOnce(load: LoadGen, ph: Phase, devices: DeviceCreds[], perDevice: number, window: number, tag: string, procs: { postmaster?: number; redis?: number }, ackedBefore: number, measured: boolean, roundNo: number): Promise<RegionRun> {
  const tsBase = tsCursor;
  tsCursor += (perDevice + 1) * TS_STEP_MS;
  if (tsCursor > Date.now()) throw new Error('bench event time ran into the present: fewer messages per run');
  const ports = ph.gateways.map((g) => g.mqttPort);
  const prep = await load.request({ type: 'prepare', port: ports[0]!, ports, devices, perDevice, tag, tsBase, tsStepMs: TS_STEP_MS, qos: 1 });
  if (prep.type !== 'prepared') throw new Error(`loadgen: ${prep.type}`);
  const sqliteBefore = ph.store === 'sqlite' ? await ph.gateways[0]!.request({ type: 'stats' }) : undefined;
  await Promise.all(ph.gateways.map((g) => g.request({ type: 'resetStats' })));
  const la = os.loadavg()[0]!;
  const g0 = ph.gateways.map((g) => ticksOf(g.pid));
  const l0 = ticksOf(load.pid);
  const p0 = procs.postmaster ? postgresTicks(procs.postmaster).ticks : 0;
  const r0 = procs.redis ? ticksOf(procs.redis) : 0;
  const XACTS = 'SELECT pg_current_wal_lsn()::text AS l, xact_commit + xact_rollback AS x FROM pg_stat_database WHERE datname = current_database()';
  const at0 = ph.db ? (await ph.db.query<{ l: string; x: string }>(XACTS)).rows[0]! : undefined;
  const lsn0 = at0?.l;
  const sampler = waitsOn && ph.db ? sampleWaits(ph.db) : undefined;
  const done = await load.request({ type: 'run', window }, 660_000);
  const waits = await sampler?.stop();
  if (done.type !== 'done') throw new Error(`loadgen: ${done.type}`);
  const total = devices.length * perDevice;
  if (done.acked !== total) throw new Error(`${ph.config} ${tag}: ${done.acked} of ${total} acknowledged`);
  // Every instance hears every commit of the region (follow mode): wait for that, then let the checks settle.
  const head = ph.store === 'sqlite' ? (sqliteBefore as { count: number }).count + total : ackedBefore + total;
  const heard = await Promise.all(ph.gateways.map((g) => g.request({ type: 'waitCount', target: head, timeoutMs: 60_000 }, 70_000)));
  for (const h of heard) if (h.type !== 'reached' || h.timedOut) throw new Error(`${ph.config} ${tag}: an instance did not hear seq ${head} within 60 s`);
  await new Promise((r) => setTimeout(r, 300));
  const g1 = ph.gateways.map((g) => ticksOf(g.pid));
  const l1 = ticksOf(load.pid);
  const pgAfter = procs.postmaster ? postgresTicks(procs.postmaster) : { ticks: 0, processes: 0 };
  const r1 = procs.redis ? ticksOf(procs.redis) : 0;
  const commits = (await Promise.all(ph.gateways.map((g) => g.request({ type: 'stats' })))).map((st) => {
    const c = st.type === 'stats' ? st.commit : undefined;
    return { groups: c?.commits ?? 0, groupMean: round(c?.groupMean ?? NaN), commitMsP50: round(c?.commitMsP50 ?? NaN, 2), commitMsP99: round(c?.commitMsP99 ?? NaN, 2) };
  });

  // PostgreSQL's write volume: WAL bytes over the run (every instance, ledger and state), table + indexes per row.
  let pgBytes: RegionRun['pgBytes'];
  if (ph.db) {
    const v = (await ph.db.query<{ wal: string; rel: string; heap: string; n: string }>(
      `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn) AS wal, pg_total_relation_size('ledger_records') AS rel,
              pg_relation_size('ledger_records') AS heap, (SELECT count(*) FROM ledger_records) AS n`, [lsn0])).rows[0]!;
    // Backends report their transaction counts at most once a second: wait for that.
    await new Promise((r) => setTimeout(r, 1100));
    const at1 = (await ph.db.query<{ x: string }>(XACTS)).rows[0]!;
    pgBytes = { xactsPerGroup: round((Number(at1.x) - Number(at0!.x)) / Math.max(1, commits.reduce((a, k) => a + k.groups, 0)), 1), walPerMsg: Math.round(Number(v.wal) / total), tableAndIndexesPerRow: Math.round(Number(v.rel) / Number(v.n)), heapPerRow: Math.round(Number(v.heap) / Number(v.n)) };
  }
  // The ledger holds exactly what was acknowledged.
  let stored: number;
  if (ph.store === 'postgres') {
    const run = await ph.db!.query<{ n: string }>(`SELECT count(*) AS n FROM ledger_records WHERE kind = 'reading' AND msg_id LIKE $1`, [`%-${tag}-%`]);
    const all = await ph.db!.query<{ n: string; m: string }>('SELECT count(*) AS n, COALESCE(max(seq), 0) AS m FROM ledger_records');
    stored = Number(run.rows[0]!.n);
    if (stored !== total) throw new Error(`${ph.config} ${tag}: PostgreSQL holds ${stored} of the run's ${total} acknowledged messages`);
    if (Number(all.rows[0]!.n) !== ackedBefore + total || Number(all.rows[0]!.m) !== ackedBefore + total) {
      throw new Error(`${ph.config} ${tag}: ledger_records has ${all.rows[0]!.n} rows (max seq ${all.rows[0]!.m}), ${ackedBefore + total} acknowledged in this configuration`);
    }
  } else {
    const after = await ph.gateways[0]!.request({ type: 'stats' });
    stored = (after as { count: number }).count - (sqliteBefore as { count: number }).count;
    if (stored !== total) throw new Error(`${ph.config} ${tag}: the SQLite ledger's lastSeq moved by ${stored}, ${total} acknowledged`);
  }

  const seconds = (done.endedAt - done.startedAt) / 1000;
  const us = (ticks: number) => round((ticks / CLK_TCK / total) * 1e6);
  const cores = (ticks: number) => round(ticks / CLK_TCK / seconds, 2);
  const gw = g1.map((t, i) => t - g0[i]!);
  const gwSum = gw.reduce((a, b) => a + b, 0);
  const pgT = pgAfter.ticks - p0, rT = r1 - r0, lT = l1 - l0;
  return {
    config: ph.config, instances: ph.instances, store: ph.store, round: measured ? roundNo : 0,
    messages: total, seconds: round(seconds, 3), msgPerS: Math.round(total / seconds),
    ackP50Ms: round(done.ackLatencyMs!.p50, 1), ackP99Ms: round(done.ackLatencyMs!.p99, 1),
    cpuUsPerMsg: { gateways: gw.map(us), gateway: us(gwSum), postgres: us(pgT), redis: us(rT), total: us(gwSum + pgT + rT), loadgen: us(lT) },
    cores: { gateway: cores(gwSum), postgres: cores(pgT), redis: cores(rT), loadgen: cores(lT) },
    ...(procs.postmaster ? { postgresProcesses: pgAfter.processes } : {}),
    commits, ...(pgBytes ? { pgBytes } : {}), ...(waits ? { waits } : {}), window: { fromUs: done.startedMonoUs, toUs: done.endedMonoUs },
    loadavg: round(la, 1), stored,
  };
}

export interface RegionResults {
  params: { devices: number; window: number; messages: number; warmup: number; rounds: number; cpus: number };
  loadavg: { start: number[]; end: number[] };
  runs: RegionRun[];
  /** Median run (by msg/s) of each configuration. */
  /** Cores used at rest (3 s, no device connected), per configuration: the fixed cost beside the per-message one. */
  idle?: Record<string, { gateways: number[]; postgres: number; redis: number }>;
  /** BENCH_REGION_PROFILE: per configuration, per instance, the profiled split of its threads over the last measured run. */
  profiles?: Record<string, CpuSplit[][]>;
  summary: Record<string, { msgPerS: number; ackP50Ms: number; ackP99Ms: number; gwUs: number; pgUs: number; redisUs: number; totalUs: number; vsSqlite?: number }>;
}

export async function runRegionBenchFull(o: { log: (s: string) => void } = { log: console.log }): Promise<RegionResults> {
  const log = o.log;
  const counts = (process.env.BENCH_REGION_INSTANCES ?? '1,2,3').split(',').map(Number).filter((n) => n >= 1);
  const nDevices = envInt('BENCH_REGION_DEVICES', 24);
  const window = envInt('BENCH_REGION_WINDOW', 50);
  const perDevice = Math.ceil(envInt('BENCH_REGION_MESSAGES', 30_000) / nDevices);
  const warmPer = Math.ceil(envInt('BENCH_REGION_WARMUP', 6_000) / nDevices);
  const rounds = envInt('BENCH_REGION_ROUNDS', 2);
  const withSqlite = process.env.BENCH_REGION_SQLITE !== 'off';
  const profile = !!process.env.BENCH_REGION_PROFILE && process.env.BENCH_REGION_PROFILE !== 'off';
  const nofile = Math.max(softNofile(), 4096);
  const results: RegionResults = {
    params: { devices: nDevices, window, messages: perDevice * nDevices, warmup: warmPer * nDevices, rounds, cpus: os.availableParallelism() },
    loadavg: { start: os.loadavg().map((x) => round(x)), end: [] }, runs: [], summary: {},
  };
  log(`region: ${nDevices} devices × ${window} QoS 1 in flight, ${perDevice * nDevices} messages per run, ${rounds} rounds per configuration after ${warmPer * nDevices} warm-up; instances ${counts.join(', ')}${withSqlite ? ' + SQLite baseline' : ''}; ${os.availableParallelism()} CPUs, load average ${results.loadavg.start.join(' ')}`);
  const ids = Array.from({ length: nDevices }, (_, i) => `rdev-${String(i).padStart(2, '0')}`);
  const server = await startPostgres();
  const postmaster = ourChild('postgres');
  if (!postmaster) throw new Error('cannot find the postmaster among this process\'s children (its CPU would not be counted)');
  const load = spawnTs<LoadCommand, LoadReply>(path.join(HERE, 'loadgen.ts'), { nofile });
  const configs: { config: string; instances: number; store: 'sqlite' | 'postgres' }[] = [
    ...(withSqlite ? [{ config: 'sqlite ×1', instances: 1, store: 'sqlite' as const }] : []),
    ...counts.map((n) => ({ config: `postgres ×${n}`, instances: n, store: 'postgres' as const })),
  ];
  try {
    for (const c of configs) {
      const ph: Phase = { ...c, gateways: [] };
      const profileDirs: string[] = [];
      let lastWindow: RegionRun['window'] | undefined;
      try {
        let env: Record<string, string> = {};
        if (c.store === 'postgres') {
          const url = await server.createDatabase(`region_bench_${c.instances}_${Date.now() % 1e6}`);
          ph.db = new pg.Client({ connectionString: url });
          await ph.db.connect();
          if (c.instances >= 2) ph.redis = await startRedis();
          env = { SITEGATE_DATABASE_URL: url, ...(ph.redis ? { SITEGATE_REDIS_URL: ph.redis.url } : {}) };
        }
        // One after the other: the first applies the migrations.
        for (let i = 0; i < c.instances; i++) {
          if (profile) profileDirs.push(fs.mkdtempSync(path.join(os.tmpdir(), `sitegate-prof-region-${c.instances}-${i}-`)));
          ph.gateways.push(await startTarget('gateway', { nofile, ...(profile ? { profileDir: profileDirs[i]! } : {}), env: { ...env, ...(c.store === 'postgres' ? { SITEGATE_INSTANCE_ID: `bench-${i + 1}` } : {}) } }));
        }
        const procs = { postmaster: c.store === 'postgres' ? postmaster : undefined, redis: ph.redis ? ourChild('redis-server') : undefined } as { postmaster?: number; redis?: number };
        if (ph.redis && !procs.redis) throw new Error('cannot find redis-server among this process\'s children');
        const devices = await registerDevices(ph.gateways[0]!, 'S-REGION', ids);
        // At rest (devices registered, nobody connected): what the configuration costs per second without load.
        {
          const IDLE_MS = 3000;
          const gi = ph.gateways.map((g) => ticksOf(g.pid));
          const pi = procs.postmaster ? postgresTicks(procs.postmaster).ticks : 0;
          const ri = procs.redis ? ticksOf(procs.redis) : 0;
          await new Promise((r) => setTimeout(r, IDLE_MS));
          const cores = (t: number) => round(t / CLK_TCK / (IDLE_MS / 1000), 3);
          const idle = { gateways: ph.gateways.map((g, i) => cores(ticksOf(g.pid) - gi[i]!)), postgres: cores((procs.postmaster ? postgresTicks(procs.postmaster).ticks : 0) - pi), redis: cores((procs.redis ? ticksOf(procs.redis) : 0) - ri) };
          (results.idle ??= {})[c.config] = idle;
          log(`  ${c.config}: at rest ${IDLE_MS / 1000} s, cores: gateways ${idle.gateways.join(' + ')}, postgres ${idle.postgres}, redis ${idle.redis} (10 ms ticks: ±0.003)`);
        }
        let acked = 0;
        const warm = await runOnce(load, ph, devices, warmPer, window, `${c.store[0]}${c.instances}w`, procs, acked, false, 0);
        acked += warm.messages;
        log(`  ${c.config}: warm-up ${warm.msgPerS} msg/s, ${warm.stored} stored ✓`);
        for (let r = 1; r <= rounds; r++) {
          const run = await runOnce(load, ph, devices, perDevice, window, `${c.store[0]}${c.instances}r${r}`, procs, acked, true, r);
          acked += run.messages;
          results.runs.push(run);
          lastWindow = run.window;
          const u = run.cpuUsPerMsg;
          log(`  ${c.config} round ${r}/${rounds}: ${run.msgPerS} msg/s, PUBACK p50 ${run.ackP50Ms} ms p99 ${run.ackP99Ms} ms; CPU µs/msg gateways ${u.gateway} (${u.gateways.join(' + ')}), postgres ${u.postgres}${run.postgresProcesses ? ` (${run.postgresProcesses} processes)` : ''}, redis ${u.redis}, total ${u.total} (loadgen ${u.loadgen}); cores gw ${run.cores.gateway} pg ${run.cores.postgres} redis ${run.cores.redis} loadgen ${run.cores.loadgen}; ${run.stored}/${run.messages} stored ✓; load average ${run.loadavg}`);
          if (run.waits) for (const [app, w] of Object.entries(run.waits)) log(`    pg_stat_activity ${app}: ${Object.entries(w).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ')}`);
          if (run.pgBytes) log(`    PostgreSQL: ${run.pgBytes.walPerMsg} B of WAL per message, ledger_records ${run.pgBytes.tableAndIndexesPerRow} B per row with its indexes (heap ${run.pgBytes.heapPerRow}); ${run.pgBytes.xactsPerGroup} transactions (every connection) per ledger group`);
          log(`    ledger groups per instance: ${run.commits.map((k) => `${k.groups} × ${k.groupMean} records, commit p50 ${k.commitMsP50} ms p99 ${k.commitMsP99} ms`).join(' | ')}`);
        }
      } finally {
        await Promise.all(ph.gateways.map((g) => stopTarget(g)));
        if (profile && lastWindow) {
          const w = lastWindow;
          (results.profiles ??= {})[c.config] = profileDirs.map((d) => splitProfiles(d, w.fromUs, w.toUs));
          results.profiles[c.config]!.forEach((threads, i) => {
            for (const t of threads) {
              log(`    profile ${c.config} instance ${i + 1}, ${t.thread}: ${t.activeMs} ms busy; stages ${t.stages.slice(0, 8).map(([k, v]) => `${k} ${v}`).join(', ')}`);
              log(`      categories ${t.categories.slice(0, 10).map(([k, v]) => `${k} ${v}`).join(', ')}`);
              log(`      functions ${t.functions.slice(0, 10).map(([k, v]) => `${k} ${v}`).join(' · ')}`);
            }
          });
        }
        if (process.env.BENCH_KEEP_PROFILES) log(`    profiles kept in ${profileDirs.join(' ')}`);
        else for (const d of profileDirs) fs.rmSync(d, { recursive: true, force: true });
        await ph.db?.end().catch(() => {});
        await ph.redis?.stop();
      }
    }
  } finally {
    load.kill();
    await server.dispose().catch(() => {});
  }
  results.loadavg.end = os.loadavg().map((x) => round(x));
  for (const c of configs) {
    const runs = results.runs.filter((r) => r.config === c.config);
    if (!runs.length) continue;
    const m = runs.find((r) => r.msgPerS === median(runs.map((x) => x.msgPerS)))!;
    results.summary[c.config] = { msgPerS: m.msgPerS, ackP50Ms: m.ackP50Ms, ackP99Ms: m.ackP99Ms, gwUs: m.cpuUsPerMsg.gateway, pgUs: m.cpuUsPerMsg.postgres, redisUs: m.cpuUsPerMsg.redis, totalUs: m.cpuUsPerMsg.total };
  }
  const base = results.summary['sqlite ×1'];
  if (base) for (const s of Object.values(results.summary)) s.vsSqlite = round(s.msgPerS / base.msgPerS, 3);
  return results;
}

/** For run.ts: a flat record of figures (the median run of each configuration). */
export async function runRegionBench(o: { log: (s: string) => void } = { log: console.log }): Promise<Record<string, number | string>> {
  const r = await runRegionBenchFull(o);
  const out: Record<string, number | string> = { setup: `${r.params.devices} devices × ${r.params.window} in flight, ${r.params.messages} msgs/run, ${r.params.rounds} rounds; load average ${r.loadavg.start[0]} → ${r.loadavg.end[0]}` };
  for (const [k, s] of Object.entries(r.summary)) {
    out[k] = `${s.msgPerS} msg/s${s.vsSqlite !== undefined ? ` (÷ sqlite ${s.vsSqlite})` : ''}, PUBACK p50 ${s.ackP50Ms} ms p99 ${s.ackP99Ms} ms; CPU µs/msg gateways ${s.gwUs}, postgres ${s.pgUs}, redis ${s.redisUs}, total ${s.totalUs}`;
  }
  return out;
}

if (process.argv[1] && pathToFileURL(path.resolve(process.argv[1])).href === import.meta.url) {
  const r = await runRegionBenchFull();
  const file = process.env.BENCH_REGION_OUT;
  if (file) fs.writeFileSync(file, JSON.stringify(r, null, 2) + '\n');
  console.log(JSON.stringify(r.summary, null, 2));
}
