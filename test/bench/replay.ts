/**
 * The public month replayed (issue 11: ≥ 0.5× the same replay into bare aedes): the acceptance
 * tool `../shared/tools/replay.mjs` with its default window (200 QoS 1 publishes in flight,
 * mqtt.js clients, one per device) sends the month's 53,000 events into a fresh gateway
 * (buildApp, InfluxDB sink, face checks, hazard rules — everything `npm start` runs) and into bare
 * aedes, alternately, `rounds` times each. Each run gets a fresh target: the same month twice into
 * one gateway would be all duplicates.
 *
 * The gateway's sites, workers, devices and faces are registered first (`--only register`, not
 * timed); bare aedes has no auth, so its replay gets a secrets file of placeholders, and the
 * month's two HTTP events (wage payments) fail at once on its closed HTTP port. The figure is
 * replay.mjs's own: events ÷ seconds from the first publish to the last PUBACK.
 *
 *   BENCH_ONLY=replay npm run bench     (BENCH_REPLAY_ROUNDS, default 2; BENCH_REPLAY_WINDOW, default the tool's 200;
 *   BENCH_REPLAY_PROFILE=1 adds one gateway replay under --cpu-prof and prints where its time goes)
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startInfluxd } from '../support/influxd.ts';
import { CpuMeter, childrenNamed, softNofile, splitProfiles, startTarget, stopTarget, type Target } from './ingest.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const SHARED = process.env.BENCH_SHARED_DIR ?? path.resolve(ROOT, '../shared');
const TOOL = path.join(SHARED, 'tools/replay.mjs');
const SCENARIO = path.join(SHARED, 'scenarios/public-2026-09');
const FACES = path.join(SHARED, 'faces');
const ADMIN_TOKEN = 'bench-admin-token-0123456789abcdef';

interface ReplayRun { side: 'bare' | 'gateway'; events: number; acked: number; failed: number; seconds: number; eventsPerSecond: number; cpuUsPerEvent: Record<string, number>; loadavg: number; errors: number }

function tool(args: string[], log: (s: string) => void): Promise<{ report: any }> {
  const state = args[args.indexOf('--state') + 1]!;
  const reportFile = path.join(state, `report-${Date.now()}.json`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [TOOL, '--scenario', SCENARIO, '--faces', FACES, '--token', ADMIN_TOKEN, '--report', reportFile, ...args], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (c) => { err += c; });
    child.once('exit', (code) => {
      if (code !== 0) { reject(new Error(`replay.mjs exited ${code}: ${err.slice(-500)}`)); return; }
      try { resolve({ report: JSON.parse(fs.readFileSync(reportFile, 'utf8')) }); } catch (e) { reject(e); }
      if (err.trim()) log(`replay.mjs stderr: ${err.trim().slice(0, 300)}`);
    });
  });
}

const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[xs.length >> 1]!;

export async function runReplayBench(o: { log?: (s: string) => void } = {}): Promise<Record<string, unknown>> {
  const log = o.log ?? ((s: string) => console.log(s));
  const rounds = Number(process.env.BENCH_REPLAY_ROUNDS ?? 2);
  const window = process.env.BENCH_REPLAY_WINDOW;
  if (!fs.existsSync(TOOL)) throw new Error(`${TOOL} is not there (BENCH_SHARED_DIR)`);
  const registry = JSON.parse(fs.readFileSync(path.join(SCENARIO, 'registry.json'), 'utf8')) as { devices: { deviceId: string }[] };
  const influx = await startInfluxd({ db: 'bench' });
  const nofile = softNofile();
  const runs: ReplayRun[] = [];
  try {
    const profile = process.env.BENCH_REPLAY_PROFILE ? [[rounds, 'gateway', true] as const] : [];
    const plan = [...Array.from({ length: rounds }, (_, r) => ((r % 2 ? ['gateway', 'bare'] : ['bare', 'gateway']) as ('bare' | 'gateway')[]).map((side) => [r, side, false] as const)).flat(), ...profile];
    for (const [r, side, profiled] of plan) {
      {
        const profileDir = profiled ? fs.mkdtempSync(path.join(os.tmpdir(), 'sitegate-replay-prof-')) : undefined;
        const state = fs.mkdtempSync(path.join(os.tmpdir(), 'sitegate-replay-'));
        const db = `bench_replay_${Date.now()}`;
        if (side === 'gateway') await influx.query(`CREATE DATABASE "${db}"`);
        const t: Target = await startTarget(side, { ...(side === 'gateway' ? { influx: { url: influx.url, db } } : {}), ...(profileDir ? { profileDir } : {}), nofile });
        let window0 = 0, window1 = 0;
        try {
          const common = ['--mqtt', `mqtt://127.0.0.1:${t.mqttPort}`, '--http', t.httpUrl ?? 'http://127.0.0.1:9', '--state', state, ...(window ? ['--window', window] : [])];
          if (side === 'gateway') {
            const reg = await tool([...common, '--only', 'register'], log);
            if (reg.report.errors.length) throw new Error(`register: ${reg.report.errors[0]}`);
          } else {
            fs.writeFileSync(path.join(state, 'sitegate-acceptance-secrets-public-2026-09.json'), JSON.stringify(Object.fromEntries(registry.devices.map((d) => [d.deviceId, 'x']))));
          }
          const influxPid = childrenNamed('influxd')[0];
          const meter = new CpuMeter(side === 'gateway' ? { gateway: t.pid, ...(influxPid ? { influxd: influxPid } : {}) } : { bare: t.pid });
          const la = round(os.loadavg()[0]!, 1);
          meter.start();
          window0 = Number(process.hrtime.bigint() / 1000n);
          const { report } = await tool([...common, '--only', 'replay'], log);
          window1 = Number(process.hrtime.bigint() / 1000n);
          const rep = report.replay as { events: number; acked: number; failed: number; seconds: number; eventsPerSecond: number };
          const cpu = meter.stop(rep.seconds, rep.events).usPerMsg;
          let ledger = '';
          if (t.httpUrl) {
            const m = await (await fetch(`${t.httpUrl}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).text();
            const v = (k: string) => Number(new RegExp(`^${k} (\\S+)$`, 'm').exec(m)?.[1] ?? NaN);
            const groups = v('sitegate_ledger_group_size_count'), records = v('sitegate_ledger_group_size_sum'), commitS = v('sitegate_ledger_commit_seconds_sum');
            const wal = fs.statSync(path.join(t.dataDir!, 'ledger.db-wal'), { throwIfNoEntry: false })?.size ?? 0;
            ledger = `; ledger ${groups} commits, ${round(records / groups, 1)} records per fsync, commit mean ${round((commitS / groups) * 1000)} ms, WAL ${round(wal / 2 ** 20, 1)} MiB`;
          }
          const run: ReplayRun = { side, ...rep, cpuUsPerEvent: cpu, loadavg: la, errors: report.errors.length };
          delete (run as unknown as { http?: unknown }).http;
          if (!profiled) runs.push(run);
          log(`replay ${profiled ? 'profiled' : `round ${r + 1}/${rounds}`} ${side}: ${rep.events} events in ${rep.seconds} s = ${rep.eventsPerSecond} ev/s, acked ${rep.acked}, failed ${rep.failed}; CPU ${Object.entries(cpu).map(([k, v]) => `${k} ${v}`).join(', ')} µs/event${ledger}; errors ${report.errors.length}${report.errors.length ? ` (${String(report.errors[0]).slice(0, 120)})` : ''}; load average ${la}`);
        } finally {
          await stopTarget(t);
          fs.rmSync(state, { recursive: true, force: true });
          if (profileDir) {
            for (const th of splitProfiles(profileDir, window0, window1)) {
              log(`  ${th.thread}: ${th.activeMs} ms busy; stages ${th.stages.slice(0, 8).map(([k, v]) => `${k} ${v}`).join(' · ')}`);
              log(`    by package: ${th.categories.slice(0, 10).map(([k, v]) => `${k} ${v}`).join(' · ')}`);
              for (const [fn, ms] of th.functions.slice(0, 10)) log(`    ${String(ms).padStart(8)} ms  ${fn}`);
            }
            if (process.env.BENCH_KEEP_PROFILES) log(`  profiles kept in ${profileDir}`); else fs.rmSync(profileDir, { recursive: true, force: true });
          }
        }
      }
    }
  } finally {
    await influx.dispose().catch(() => {});
  }
  const g = runs.filter((x) => x.side === 'gateway'), b = runs.filter((x) => x.side === 'bare');
  const ratio = round(median(g.map((x) => x.eventsPerSecond)) / median(b.map((x) => x.eventsPerSecond)), 3);
  const roundRatios = g.map((x, i) => round(x.eventsPerSecond / b[i]!.eventsPerSecond, 3));
  log(`replay: gateway ÷ bare aedes ${ratio} (rounds ${roundRatios.join(', ')}) — issue 11 goal ≥ 0.5`);
  return {
    gatewayEventsPerS: median(g.map((x) => x.eventsPerSecond)), bareEventsPerS: median(b.map((x) => x.eventsPerSecond)), ratio, roundRatios,
    gatewayCpuUsPerEvent: median(g.map((x) => x.cpuUsPerEvent.gateway!)), bareCpuUsPerEvent: median(b.map((x) => x.cpuUsPerEvent.bare!)),
    runs,
  };
}
