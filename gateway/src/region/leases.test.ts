import { spawn } from 'node:child_process';
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

  it('a clean stop hands its sites over at once, well under the TTL', async () => {
    const ttl = 6000;
    const r = await region(siteIds(20), { ttlMs: ttl, renewEveryMs: 2000, marginMs: 1000 });
    const [a, b] = [r.make('A'), r.make('B')];
    await Promise.all([a.start(), b.start()]);
    await r.until('10/10', r.split([a, b], [10, 10]));
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
