import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type Postgres } from '../../../test/support/postgres.ts';
import { migratePg } from '../state/pgMigrations.ts';
import { LEASE_MIGRATIONS } from './schema.ts';
import { FENCE, LeaseLostError, SiteLeases, type LossReason, type SiteLeasesOptions } from './leases.ts';

/**
 * Site leases against a real PostgreSQL 15 (test/support/postgres.ts), several instances in this
 * process plus one in a child process that is killed with SIGKILL. Short leases (TTL 1.5 s, a round
 * every 0.4 s, holds() ends 0.3 s before the database's expiry); every wait is for an event.
 */
const TTL = 1500, RENEW = 400, MARGIN = 300;
let server: Postgres;
let databases = 0;
const open: SiteLeases[] = [];
const clients: pg.Client[] = [];

beforeAll(async () => { server = await startPostgres(); }, 60_000);
afterEach(async () => {
  await Promise.all(open.splice(0).map((l) => l.stop()));
  await Promise.all(clients.splice(0).map((c) => c.end().catch(() => {})));
});
afterAll(async () => { await server?.dispose(); }, 30_000);

const md5 = (s: string) => createHash('md5').update(s).digest('hex');
const siteIds = (n: number, from = 0) => Array.from({ length: n }, (_, i) => `S${String(from + i).padStart(3, '0')}`);

async function client(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  clients.push(c);
  return c;
}

type Event = { at: number; who: string; site: string; acquired?: number; lost?: LossReason };

/** A region on a fresh database: instances share one site list and one event log. */
async function region(sites: string[], opts: Partial<SiteLeasesOptions> = {}) {
  const url = await server.createDatabase(`leases_${process.pid}_${++databases}`);
  const list = { sites };
  const log: Event[] = [];
  const waiters = new Set<() => void>();
  const changed = () => { for (const w of waiters) w(); };
  const errors: Error[] = [];
  const instances: SiteLeases[] = [];
  const make = (name: string, extra: Partial<SiteLeasesOptions> = {}) => {
    const l = new SiteLeases({ connectionString: url, sites: () => list.sites, ttlMs: TTL, renewEveryMs: RENEW, marginMs: MARGIN, instanceId: name, onError: (e) => errors.push(e), ...opts, ...extra });
    l.onAcquired((site, epoch) => { log.push({ at: performance.now(), who: name, site, acquired: epoch }); changed(); });
    l.onLost((site, why) => { log.push({ at: performance.now(), who: name, site, lost: why }); changed(); });
    open.push(l);
    instances.push(l);
    return l;
  };
  /** Resolves when `pred` holds, checked now and after every acquisition or loss anywhere. */
  const until = (what: string, pred: () => boolean, timeoutMs = 10_000) => new Promise<void>((resolve, reject) => {
    const check = () => { if (pred()) { done(); resolve(); } };
    const timer = setTimeout(() => { done(); reject(new Error(`timed out waiting for ${what}; held: ${JSON.stringify(instances.map((i) => [i.instanceId, i.sites().length]))}`)); }, timeoutMs);
    const done = () => { clearTimeout(timer); waiters.delete(check); };
    waiters.add(check);
    check();
  });
  /** Every listed site held by exactly one of `live`, each holding `counts` (in any order). */
  const split = (live: SiteLeases[], counts: number[]) => () =>
    list.sites.every((s) => live.filter((l) => l.holds(s)).length === 1) &&
    JSON.stringify(live.map((l) => l.sites().length).sort()) === JSON.stringify([...counts].sort());
  return { url, list, log, errors, make, until, split, changed };
}

/**
 * Samples in a loop while the test runs: at no moment do two instances say they hold one site, and
 * a site an instance holds before and after a read of the table is, in that read, held by it at
 * the same epoch and not expired in the database's clock.
 */
function watchExclusive(url: string, instances: () => SiteLeases[]) {
  let on = true, samples = 0;
  const violations: string[] = [];
  const done = (async () => {
    const c = await client(url);
    await migratePg(c, LEASE_MIGRATIONS, 'leases'); // the instances may not have created the table yet
    while (on) {
      const now = [...instances()];
      const before = now.map((l) => new Map(l.sites().map((s) => [s, l.epoch(s)])));
      for (const s of new Set(before.flatMap((m) => [...m.keys()]))) {
        if (before.filter((m) => m.has(s)).length > 1) violations.push(`two holders of ${s}`);
      }
      const rows = (await c.query<{ site_id: string; holder: string | null; epoch: string; live: boolean }>(
        'SELECT site_id, holder, epoch, expires_at > clock_timestamp() AS live FROM site_leases')).rows;
      const table = new Map(rows.map((r) => [r.site_id, r]));
      now.forEach((l, i) => {
        for (const [s, epoch] of before[i]!) {
          if (l.epoch(s) !== epoch) continue; // changed meanwhile: this read proves nothing
          const r = table.get(s);
          if (r?.holder !== l.instanceId || Number(r.epoch) !== epoch || !r.live) violations.push(`${l.instanceId} holds ${s}@${epoch} but the table says ${JSON.stringify(r)}`);
        }
      });
      samples++;
    }
  })();
  return { async stop() { on = false; await done; return { samples, violations }; } };
}

/** Per site, the intervals from onAcquired to onLost never overlap across instances, and epochs only grow. */
function assertHistory(log: Event[]) {
  const open = new Map<string, { who: string; epoch: number }>();
  const last = new Map<string, number>();
  for (const e of log) {
    if (e.acquired !== undefined) {
      expect(open.get(e.site), `${e.who} acquired ${e.site} while another held it`).toBeUndefined();
      expect(e.acquired).toBeGreaterThan(last.get(e.site) ?? 0);
      open.set(e.site, { who: e.who, epoch: e.acquired });
      last.set(e.site, e.acquired);
    } else if (open.get(e.site)?.who === e.who) {
      open.delete(e.site);
    }
  }
}

describe('site leases', () => {
  it('two, then three instances split 30 sites evenly, and back to two on a clean stop; never two holders at once', async () => {
    const r = await region(siteIds(30));
    const [a, b] = [r.make('A'), r.make('B')];
    const all = [a, b];
    const watch = watchExclusive(r.url, () => all);
    await Promise.all([a.start(), b.start()]);
    await r.until('15/15', r.split([a, b], [15, 15]));
    const c = r.make('C');
    all.push(c);
    await c.start();
    await r.until('10/10/10', r.split([a, b, c], [10, 10, 10]));
    await b.stop();
    await r.until('15/15 after B left', r.split([a, c], [15, 15]));
    const { samples, violations } = await watch.stop();
    expect(violations).toEqual([]);
    expect(samples).toBeGreaterThan(20);
    assertHistory(r.log);
    // Balanced without thrash: each site moved only when the membership changed.
    expect(r.log.filter((e) => e.acquired !== undefined).length).toBeLessThanOrEqual(30 + 15 + 20 + 15);
    expect(r.errors).toEqual([]);
  });

  it('a joining instance gets its share, and a clean stop hands over, at once (well under the TTL); the sites given up are the ones the giver prefers least', async () => {
    const ttl = 6000;
    const r = await region(siteIds(20), { ttlMs: ttl, renewEveryMs: 2000, marginMs: 1000 });
    const [a, b] = [r.make('A'), r.make('B')];
    await a.start();
    await r.until('A holds 20', r.split([a], [20]));
    const joined = performance.now();
    await b.start();
    await r.until('10/10', r.split([a, b], [10, 10]));
    console.log(`join: B had its 10 sites ${(performance.now() - joined).toFixed(0)} ms after it started (renew period 2000 ms)`);
    expect(performance.now() - joined).toBeLessThan(1000);
    const leastPreferred = siteIds(20).sort((x, y) => (md5(x + 'A') < md5(y + 'A') ? 1 : -1)).slice(0, 10);
    expect(r.log.filter((e) => e.lost === 'rebalanced').map((e) => e.site).sort()).toEqual(leastPreferred.sort());
    const t0 = performance.now();
    await b.stop();
    expect(b.sites()).toEqual([]); // stop() returns with nothing held
    await r.until('A holds all 20', r.split([a], [20]));
    const ms = performance.now() - t0;
    console.log(`clean stop: 10 sites handed over in ${ms.toFixed(0)} ms (TTL ${ttl} ms, renew period 2000 ms)`);
    expect(ms).toBeLessThan(1000); // LISTEN/NOTIFY, not the next period, let alone the TTL
    assertHistory(r.log);
  });
});

/** Absence (of a move, of a loss) can only be shown by letting time pass: the one kind of wait here. */
const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** holdLeases.ts in its own process; `held` follows its printed events. */
function childHolder(url: string, sites: string[]) {
  const proc = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'gateway/src/region/fixtures/holdLeases.ts')], {
    cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH, LEASES_URL: url, LEASES_SITES: sites.join(','), LEASES_TTL_MS: String(TTL), LEASES_RENEW_MS: String(RENEW), LEASES_MARGIN_MS: String(MARGIN) },
  });
  const held = new Set<string>();
  let onLine = () => {};
  readline.createInterface({ input: proc.stdout! }).on('line', (line) => {
    const e = JSON.parse(line) as { acquired?: string; lost?: string };
    if (e.acquired) held.add(e.acquired);
    if (e.lost) held.delete(e.lost);
    onLine();
  });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => proc.once('exit', (_, signal) => resolve(signal)));
  return { held, exited, kill: () => proc.kill('SIGKILL'), changed: (f: () => void) => { onLine = f; } };
}

describe('site leases when things go wrong', () => {
  it('an instance killed with SIGKILL loses its sites to the others within TTL + one renew period', async () => {
    const sites = siteIds(30);
    const r = await region(sites);
    const a = r.make('A');
    await a.start();
    const child = childHolder(r.url, sites);
    child.changed(r.changed);
    try {
      await r.until('A and the child 15/15', () => a.sites().length === 15 && child.held.size === 15 && sites.every((s) => a.holds(s) !== child.held.has(s)), 20_000);
      const watch = watchExclusive(r.url, () => [a]);
      const t0 = performance.now();
      child.kill();
      expect(await child.exited).toBe('SIGKILL');
      await r.until('A holds all 30', () => a.sites().length === 30);
      const ms = performance.now() - t0;
      console.log(`failover after SIGKILL: 15 sites moved in ${ms.toFixed(0)} ms (TTL ${TTL} ms + renew period ${RENEW} ms = bound ${TTL + RENEW} ms)`);
      // Not before the child's last renewal could have lapsed (it renewed at most one period before
      // the kill), and not later than the bound (+ a little for the statements).
      expect(ms).toBeGreaterThan(TTL - RENEW - 50);
      expect(ms).toBeLessThan(TTL + RENEW + 250);
      const { violations } = await watch.stop();
      expect(violations).toEqual([]);
    } finally {
      child.kill();
      await child.exited;
    }
  }, 30_000);

  it('holds() turns false on its own while a renewal hangs, before the database would let anyone else take the site', async () => {
    const r = await region(siteIds(5));
    const a = r.make('A');
    const lostAt: number[] = [];
    a.onLost(() => lostAt.push(Date.now()));
    await a.start();
    await r.until('A holds 5', () => a.sites().length === 5);
    const epochs = siteIds(5).map((s) => a.epoch(s)!);
    // EXCLUSIVE blocks every UPDATE of the table (A's renewals hang until their statement timeout,
    // then its reconnected rounds hang again) but not this SELECT, which reads the final expiries.
    const locker = await client(r.url);
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE site_leases IN EXCLUSIVE MODE');
    const { rows } = await locker.query<{ ms: number }>("SELECT (extract(epoch FROM min(expires_at)) * 1000)::float8 AS ms FROM site_leases WHERE holder = 'A'");
    const expiry = rows[0]!.ms;
    await r.until('A lost all 5', () => r.log.filter((e) => e.lost).length === 5);
    expect(r.log.filter((e) => e.lost).map((e) => e.lost)).toEqual(Array(5).fill('expired'));
    expect(siteIds(5).some((s) => a.holds(s))).toBe(false);
    const ahead = expiry - Math.max(...lostAt);
    console.log(`renewals hanging: holds() turned false ${ahead.toFixed(0)} ms before the database's expiry (margin ${MARGIN} ms)`);
    expect(ahead).toBeGreaterThan(0);
    await locker.query('ROLLBACK');
    // Unblocked, A takes them back, each under a new epoch: work begun under the old one is fenced off.
    await r.until('A holds 5 again', () => a.sites().length === 5);
    expect(siteIds(5).map((s) => a.epoch(s)!)).toEqual(epochs.map((e) => e + 1));
    assertHistory(r.log);
  });

  it('a connection cut under it costs no lease: the next round reconnects and renews', async () => {
    const r = await region(siteIds(5));
    const a = r.make('A');
    await a.start();
    await r.until('A holds 5', () => a.sites().length === 5);
    const admin = await client(r.url);
    const cut = await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'sitegate-leases A%'");
    expect(cut.rowCount).toBe(1);
    await wait(TTL + RENEW);
    expect(a.sites().length).toBe(5);
    expect(r.log.filter((e) => e.lost)).toEqual([]);
  });

  it('fencing: an old epoch fails after the site moved, and a fenced transaction keeps the site from moving until it ends', async () => {
    const r = await region(['S1', 'S2']);
    const a = r.make('A');
    await a.start();
    await r.until('A holds both', () => a.sites().length === 2);
    const old = a.epoch('S1')!;
    const w = await client(r.url);
    await w.query('BEGIN');
    await a.fence(w, 'S1', old);
    await expect(a.fence(w, 'S1', old + 1)).rejects.toBeInstanceOf(LeaseLostError);
    // The fence's row lock does not hold up the holder's own release (nor its renewals: same lock mode)...
    await a.stop();
    const b = r.make('B');
    await b.start();
    await r.until('B holds S2', () => b.holds('S2'));
    // ...but it does keep the next holder out while A's transaction is open.
    await wait(2 * RENEW);
    expect(b.holds('S1')).toBe(false);
    await w.query('COMMIT');
    await r.until('B holds S1', () => b.holds('S1'));
    const now = b.epoch('S1')!;
    expect(now).toBeGreaterThan(old);
    await w.query('BEGIN');
    expect((await w.query(FENCE, ['S1', 'A', old])).rowCount).toBe(0);
    await expect(a.fence(w, 'S1', old)).rejects.toBeInstanceOf(LeaseLostError);
    await expect(b.fence(w, 'S1', old)).rejects.toBeInstanceOf(LeaseLostError);
    await b.fence(w, 'S1', now);
    await w.query('COMMIT');
    assertHistory(r.log);
  });

  it('sites added and removed between rounds are taken and given back', async () => {
    const r = await region(siteIds(10));
    const [a, b] = [r.make('A'), r.make('B')];
    await Promise.all([a.start(), b.start()]);
    await r.until('5/5', r.split([a, b], [5, 5]));
    const removed = siteIds(3, 7);
    const from = r.log.length;
    r.list.sites = [...siteIds(7), ...siteIds(4, 100)];
    await r.until('6/5 over the new list', r.split([a, b], [6, 5]));
    expect(removed.some((s) => a.holds(s) || b.holds(s))).toBe(false);
    expect(r.log.slice(from).filter((e) => removed.includes(e.site) && e.lost).map((e) => e.lost)).toEqual(['site_removed', 'site_removed', 'site_removed']);
    assertHistory(r.log);
  });
});
