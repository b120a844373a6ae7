/**
 * The registry in region mode (`shared`): two registries on one state database stand for two
 * instances. A device, site or token not in memory is looked up in the database before it is
 * refused — once per id, not on every attempt of a client repeating it (with PostgreSQL each
 * lookup is a blocking round trip on the event loop). Real SQLite; the second instance's
 * connection only counts the lookups it is asked to prepare.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { openStateDb } from '../state/stateDb.ts';
import { Registry } from './registry.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** The connection itself, with the single-row lookups of a missing id written down as they are prepared. */
function countingLookups(db: Database.Database): { db: Database.Database; lookups: string[] } {
  const lookups: string[] = [];
  const proxy = new Proxy(db, {
    get(target, prop) {
      if (prop === 'prepare') {
        return (sql: string) => {
          if (/WHERE (device_id|site_id|hash) = \?$/.test(sql.trim())) lookups.push(sql);
          return target.prepare(sql);
        };
      }
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return { db: proxy, lookups };
}

describe('registry shared by instances (region mode)', () => {
  it('looks an unknown device, site or token up once, not on every attempt, and knows them once another instance registers them', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'registry-shared-'));
    dirs.push(dir);
    const now = () => Date.parse('2026-11-23T08:00:00+08:00');
    const shared = { changed: () => {} };
    const dbA = openStateDb(dir);
    const dbB = openStateDb(dir);
    const a = new Registry(dir, { scryptN: 1024, now, db: dbA, shared });
    const counted = countingLookups(dbB);
    const b = new Registry(dir, { scryptN: 1024, now, db: counted.db, shared });

    for (let i = 0; i < 50; i++) {
      expect(b.device('GHOST-1')).toBeUndefined();
      expect(b.site('S-GHOST')).toBeUndefined();
      expect(b.authenticateToken('sg_not-a-token')).toBeNull();
    }
    expect(counted.lookups).toHaveLength(3);

    // Registered on the other instance: here after its notice (the follower's reload).
    a.putSite('S-GHOST', { name: 'S-GHOST', regionCode: '330106' });
    await a.putDevice('S-GHOST', 'GHOST-1', { kind: 'sensor' }, 1024);
    const token = a.createToken({ role: 'regulator' });
    b.reload();
    expect(b.device('GHOST-1')?.siteId).toBe('S-GHOST');
    expect(b.site('S-GHOST')?.name).toBe('S-GHOST');
    expect(b.authenticateToken(token.token)?.role).toBe('regulator');
    dbA.close();
    dbB.close();
  });

  it('asks the database about a flood of different unknown ids within a budget, and counts the ids it refused without asking', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'registry-shared-'));
    dirs.push(dir);
    const now = () => Date.parse('2026-11-23T08:00:00+08:00');
    let mono = 0; // the budget's own clock, moved by hand
    const shared = { changed: () => {} };
    const dbA = openStateDb(dir);
    const dbB = openStateDb(dir);
    const a = new Registry(dir, { scryptN: 1024, now, db: dbA, shared });
    const counted = countingLookups(dbB);
    const b = new Registry(dir, { scryptN: 1024, now, db: counted.db, shared, monotonic: () => mono });

    // 1,000 different unknown device ids at one instant: the burst is looked up, the rest refused unasked.
    for (let i = 0; i < 1000; i++) expect(b.device(`SCAN-${i}`)).toBeUndefined();
    expect(counted.lookups).toHaveLength(200);
    expect(b.shedLookups).toBe(800);

    // Registered on the other instance meanwhile: over the budget it is not asked about…
    a.putSite('S-1', { name: 'S-1', regionCode: '330106' });
    await a.putDevice('S-1', 'NEW-1', { kind: 'sensor' }, 1024);
    expect(b.device('NEW-1')).toBeUndefined();
    // …a second later the budget has 50 lookups again, and it is found…
    mono += 1000;
    expect(b.device('NEW-1')?.siteId).toBe('S-1');
    // …and the other instance's notice makes everything it registered known, budget or not.
    for (let i = 1000; i < 1100; i++) b.device(`SCAN-${i}`);
    const token = a.createToken({ role: 'regulator' });
    b.reload();
    expect(b.authenticateToken(token.token)?.role).toBe('regulator');
    dbA.close();
    dbB.close();
  });
});
