import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll } from 'vitest';
import { freePort } from './influxd.ts';

/**
 * A real PostgreSQL (Debian's 15: `initdb` and `postgres` from /usr/lib/postgresql/15/bin) on a
 * free loopback port, with its data directory and Unix socket in a throw-away directory. For the
 * ledger's contract suite now and the region-mode tests later (issue 14).
 *
 * PostgreSQL refuses to run as root. When the tests run as root, initdb and the server run as the
 * `postgres` user (the same as `runuser -u postgres -- …`, but through spawn's uid/gid, so that
 * the process we hold and signal is the postmaster itself, not a runuser in between). The
 * directories are then owned by that user.
 *
 * Like influxd.ts, a missing binary fails with a reason instead of skipping: a missing database
 * must not look like a passing test.
 */

export const PG_BIN_DIR = process.env.SITEGATE_TEST_PG_BIN ?? '/usr/lib/postgresql/15/bin';

export function postgresAvailable(): { ok: true } | { ok: false; reason: string } {
  try {
    for (const b of ['initdb', 'postgres']) fs.accessSync(path.join(PG_BIN_DIR, b), fs.constants.X_OK);
    return { ok: true };
  } catch {
    return {
      ok: false,
      reason: `PostgreSQL 15 is required by this suite (real PostgreSQL, style.md §10) but ${PG_BIN_DIR}/initdb or postgres is missing. ` +
        'Install it (Debian: `apt-get install postgresql-15`, then stop its system service) or point SITEGATE_TEST_PG_BIN at its bin directory. ' +
        'The suite does not skip: a missing database must not look like a passing test.',
    };
  }
}

export interface Postgres {
  host: string;
  port: number;
  /** `postgres://postgres@127.0.0.1:<port>/<db>` (trust authentication on loopback: a test server). */
  url(db?: string): string;
  /** Creates an empty database and returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** Fast shutdown (SIGINT: active sessions are rolled back, then a checkpoint), waits for the exit. */
  stop(): Promise<void>;
  /** Stops it and removes its directory. */
  dispose(): Promise<void>;
  readonly running: boolean;
}

const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

/** uid/gid to run PostgreSQL as: the `postgres` user when we are root, ourselves otherwise. */
function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) => {
    const r = spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error('the tests run as root and PostgreSQL refuses root, but there is no `postgres` user to run it as');
    return Number(r.stdout.trim());
  };
  return { uid: id('-u'), gid: id('-g') };
}

export async function startPostgres(opts: { startTimeoutMs?: number; stopTimeoutMs?: number } = {}): Promise<Postgres> {
  const available = postgresAvailable();
  if (!available.ok) throw new Error(available.reason);
  const startTimeoutMs = opts.startTimeoutMs ?? 30_000;
  const stopTimeoutMs = opts.stopTimeoutMs ?? 15_000;
  const user = runAs();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sitegate-pg-'));
  const dataDir = path.join(dir, 'data');
  const socketDir = path.join(dir, 'sock');
  fs.mkdirSync(socketDir);
  if (user) {
    fs.chownSync(dir, user.uid, user.gid);
    fs.chownSync(socketDir, user.uid, user.gid);
  }
  // Only our settings count: PG* variables would point the tools elsewhere.
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C', LC_ALL: 'C' };

  // --no-sync: a throw-away cluster need not fsync its template; the server itself fsyncs (fsync=on).
  const init = spawnSync(path.join(PG_BIN_DIR, 'initdb'), ['-D', dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-locale', '--no-sync'],
    { env, encoding: 'utf8', timeout: startTimeoutMs, ...(user ?? {}) });
  if (init.status !== 0) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed (${init.status ?? init.signal ?? init.error?.message}):\n${init.stderr}`);
  }

  let port = 0;
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let stderr = '';

  const launch = async (): Promise<void> => {
    stderr = '';
    const c = spawn(path.join(PG_BIN_DIR, 'postgres'), [
      '-D', dataDir, '-k', socketDir,
      '-c', 'listen_addresses=127.0.0.1', '-c', `port=${port}`,
      '-c', 'max_connections=60', '-c', 'shared_buffers=64MB', '-c', 'lc_messages=C',
      // Durable as in production: a commit returns after its WAL is flushed.
      '-c', 'fsync=on', '-c', 'synchronous_commit=on',
    ], { env, stdio: ['ignore', 'ignore', 'pipe'], ...(user ?? {}) });
    child = c;
    children.add(c);
    c.stderr!.setEncoding('utf8');
    let exitInfo: string | undefined;
    let onReady: () => void = () => {};
    let onExit: (e: Error) => void = () => {};
    // The postmaster logs this line once it accepts connections: an event to wait for, not a poll.
    const ready = new Promise<void>((resolve, reject) => { onReady = resolve; onExit = reject; });
    c.stderr!.on('data', (s: string) => {
      stderr = (stderr + s).slice(-8000);
      if (stderr.includes('database system is ready to accept connections')) onReady();
    });
    exited = new Promise<void>((resolve) => c.once('close', (code, signal) => {
      exitInfo = `code ${code}, signal ${signal}`;
      children.delete(c);
      if (child === c) child = undefined;
      onExit(new Error(`postgres exited during start (${exitInfo}) on port ${port}:\n${stderr}`));
      resolve();
    }));
    c.once('error', (e) => { stderr += `\nspawn error: ${e.message}`; });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`postgres did not become ready within ${startTimeoutMs} ms on port ${port}:\n${stderr}`)), startTimeoutMs);
    });
    try {
      await Promise.race([ready, timeout]);
    } catch (e) {
      if (!exitInfo) { c.kill('SIGKILL'); await exited; }
      throw e;
    } finally {
      clearTimeout(timer);
    }
    // Ready by its own word; one real connection proves the port is ours.
    const probe = new pg.Client({ connectionString: urlOf('postgres'), connectionTimeoutMillis: 5000 });
    await probe.connect();
    await probe.end();
  };

  const urlOf = (db: string) => `postgres://postgres@127.0.0.1:${port}/${db}`;

  const stop = async (): Promise<void> => {
    const c = child;
    if (!c) return;
    c.kill('SIGINT');
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => { timer = setTimeout(() => resolve('late'), stopTimeoutMs); });
    if ((await Promise.race([exited.then(() => 'done' as const), late])) === 'late') {
      c.kill('SIGKILL');
      await exited;
    }
    clearTimeout(timer);
  };

  // A port found free can be taken by someone else before postgres binds it: then pick another.
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      await launch();
      break;
    } catch (e) {
      if (attempt >= 3 || !/could not bind|already in use/i.test((e as Error).message)) {
        fs.rmSync(dir, { recursive: true, force: true });
        throw e;
      }
    }
  }

  return {
    host: '127.0.0.1',
    port,
    url: (db = 'postgres') => urlOf(db),
    async createDatabase(name: string) {
      if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`not a plain database name: ${name}`);
      const c = new pg.Client({ connectionString: urlOf('postgres'), connectionTimeoutMillis: 5000 });
      await c.connect();
      try { await c.query(`CREATE DATABASE ${name}`); } finally { await c.end(); }
      return urlOf(name);
    },
    stop,
    async dispose() {
      await stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
    get running() { return child !== undefined; },
  };
}

/**
 * One PostgreSQL for a test file (started before its tests, removed after them) and fresh
 * storage per test: an empty database and a throw-away directory beside it (evidence files,
 * a data directory), both named after `prefix`.
 */
export function postgresPerFile(prefix: string): { fresh(): Promise<{ url: string; dir: string }>; server(): Postgres } {
  let server: Postgres | undefined;
  const dirs: string[] = [];
  let databases = 0;
  beforeAll(async () => { server = await startPostgres(); }, 60_000);
  afterAll(async () => {
    await server?.dispose();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  }, 30_000);
  return {
    async fresh() {
      const url = await server!.createDatabase(`${prefix}_${process.pid}_${++databases}`);
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), `pg-${prefix}-`));
      dirs.push(dir);
      return { url, dir };
    },
    server: () => server!,
  };
}
