import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/**
 * A real InfluxDB 1.x (`influxd`, Debian's 1.6.7: v1 `/write` and `/query`, no `/api/v2`) on free
 * loopback ports with throw-away meta/data/wal directories. CI installs it; a suite that needs it
 * fails with `influxdAvailable().reason` instead of skipping, so a missing binary is never
 * mistaken for a green run.
 */

export const INFLUXD_BIN = process.env.SITEGATE_TEST_INFLUXD ?? '/usr/bin/influxd';

export function influxdAvailable(): { ok: true; bin: string } | { ok: false; reason: string } {
  try {
    fs.accessSync(INFLUXD_BIN, fs.constants.X_OK);
    return { ok: true, bin: INFLUXD_BIN };
  } catch {
    return {
      ok: false,
      reason: `influxd is required by this suite (real InfluxDB, style.md §10) but ${INFLUXD_BIN} is missing or not executable. ` +
        'Install InfluxDB 1.x (Debian/Ubuntu: `apt-get install influxdb`) or point SITEGATE_TEST_INFLUXD at an influxd binary. ' +
        'The suite does not skip: a missing database must not look like a passing test.',
    };
  }
}

/** A loopback port nobody listens on right now (bind to 0, read the port, close). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export interface Influxd {
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** The database created at start. */
  db: string;
  /** Runs InfluxQL (`epoch=ms`) against `db` (or `opts.db`) and returns the parsed JSON; throws on an error in the answer. */
  query(influxql: string, opts?: { db?: string }): Promise<any>;
  /** SIGTERM, then waits for the process to exit. */
  stop(): Promise<void>;
  /** SIGKILL, then waits for the process to exit. */
  kill(): Promise<void>;
  /** Starts it again on the same ports and directories (data survives) and waits for /ping. */
  restart(): Promise<void>;
  /** Stops it and removes its directories. */
  dispose(): Promise<void>;
  /** Whether the process runs. */
  readonly running: boolean;
}

const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

function configText(dir: string, httpPort: number, rpcPort: number): string {
  // Top-level keys come before any section in TOML. No [udp]/[[graphite]]/… sections: they are
  // off by default, and a bare section would only add listeners.
  return `reporting-enabled = false
bind-address = "127.0.0.1:${rpcPort}"

[meta]
  dir = "${path.join(dir, 'meta')}"
  logging-enabled = false

[data]
  dir = "${path.join(dir, 'data')}"
  wal-dir = "${path.join(dir, 'wal')}"
  query-log-enabled = false
  wal-fsync-delay = "0s"

[monitor]
  store-enabled = false

[subscriber]
  enabled = false

[continuous_queries]
  enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:${httpPort}"
  log-enabled = false
  pprof-enabled = false

[logging]
  level = "warn"
  suppress-logo = true
`;
}

export async function startInfluxd(opts: { db?: string; startTimeoutMs?: number } = {}): Promise<Influxd> {
  const available = influxdAvailable();
  if (!available.ok) throw new Error(available.reason);
  const db = opts.db ?? 'sitegate';
  const startTimeoutMs = opts.startTimeoutMs ?? 20_000;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sitegate-influxd-'));
  const configFile = path.join(dir, 'influxdb.conf');
  let url = '';
  const choosePorts = async () => {
    const httpPort = await freePort();
    let rpcPort = await freePort();
    while (rpcPort === httpPort) rpcPort = await freePort();
    fs.writeFileSync(configFile, configText(dir, httpPort, rpcPort));
    url = `http://127.0.0.1:${httpPort}`;
  };

  // Only our config counts: INFLUXDB_* variables would override it.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('INFLUXDB_')));
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let stderr = '';

  const launch = async (): Promise<void> => {
    stderr = '';
    const c = spawn(available.bin, ['run', '-config', configFile], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    child = c;
    children.add(c);
    c.stderr!.setEncoding('utf8');
    c.stderr!.on('data', (s: string) => { stderr = (stderr + s).slice(-4000); });
    let exitInfo: string | undefined;
    // 'close', not 'exit': by then stderr is read to the end, so a start failure shows its reason.
    exited = new Promise<void>((resolve) => c.once('close', (code, signal) => {
      exitInfo = `code ${code}, signal ${signal}`;
      children.delete(c);
      if (child === c) child = undefined;
      resolve();
    }));
    c.once('error', (e) => { stderr += `\nspawn error: ${e.message}`; });
    // No readiness event exists: poll /ping with a bounded deadline, and stop at once if it exits.
    const deadline = Date.now() + startTimeoutMs;
    for (;;) {
      if (exitInfo) throw new Error(`influxd exited during start (${exitInfo}) on ${url}:\n${stderr}`);
      try {
        const res = await fetch(`${url}/ping`, { signal: AbortSignal.timeout(1000) });
        await res.arrayBuffer();
        if (res.status === 204) return;
      } catch { /* not listening yet */ }
      if (Date.now() > deadline) {
        c.kill('SIGKILL');
        await exited;
        throw new Error(`influxd did not answer ${url}/ping within ${startTimeoutMs} ms:\n${stderr}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  };

  const signal = async (sig: NodeJS.Signals): Promise<void> => {
    if (!child) return;
    child.kill(sig);
    await exited;
  };

  const query = async (influxql: string, o: { db?: string } = {}): Promise<any> => {
    const body = new URLSearchParams({ q: influxql, db: o.db ?? db, epoch: 'ms' });
    // POST: /query answers GET only for SELECT and SHOW.
    const res = await fetch(`${url}/query`, { method: 'POST', body, signal: AbortSignal.timeout(10_000) });
    const text = await res.text();
    let json: any;
    try { json = JSON.parse(text); } catch { throw new Error(`influxd /query ${res.status}: ${text}`); }
    const err = json.error ?? json.results?.find((r: any) => r.error)?.error;
    if (res.status !== 200 || err) throw new Error(`influxd query "${influxql}" failed (${res.status}): ${err ?? text}`);
    return json;
  };

  // A port found free can be taken by someone else before influxd binds it: then pick new ones.
  for (let attempt = 1; ; attempt++) {
    await choosePorts();
    try {
      await launch();
      break;
    } catch (e) {
      if (attempt >= 3 || !/address already in use/.test((e as Error).message)) {
        fs.rmSync(dir, { recursive: true, force: true });
        throw e;
      }
    }
  }
  await query(`CREATE DATABASE "${db}"`);

  return {
    url, db, query,
    stop: () => signal('SIGTERM'),
    kill: () => signal('SIGKILL'),
    async restart() {
      if (child) throw new Error('influxd is still running; stop() or kill() it first');
      await launch();
    },
    async dispose() {
      await signal('SIGTERM');
      fs.rmSync(dir, { recursive: true, force: true });
    },
    get running() { return child !== undefined; },
  };
}

/** Rows of an InfluxQL answer as objects (`time` in ms), across all series of the first statement. */
export function rows(answer: any): Record<string, any>[] {
  const out: Record<string, any>[] = [];
  for (const s of answer.results?.[0]?.series ?? []) {
    for (const v of s.values ?? []) {
      const row: Record<string, any> = { ...(s.tags ?? {}) };
      (s.columns as string[]).forEach((c, i) => { row[c] = v[i]; });
      out.push(row);
    }
  }
  return out;
}

/** `SELECT count(<field>)` as a number (0 when the measurement has no points). */
export async function countPoints(influx: Pick<Influxd, 'query'>, from: string, field = '*', opts?: { db?: string; where?: string }): Promise<number> {
  const r = rows(await influx.query(`SELECT count(${field}) FROM ${from}${opts?.where ? ` WHERE ${opts.where}` : ''}`, opts));
  if (r.length === 0) return 0;
  // count(*) answers one column per field (count_pm10, …): the points are the largest.
  return Math.max(...Object.entries(r[0]!).filter(([k]) => k.startsWith('count')).map(([, v]) => Number(v)));
}
