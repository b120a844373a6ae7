import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { postgresPerFile } from '../../../../test/support/postgres.ts';
import { stateContract } from '../stateContract.ts';
import { STATE_MIGRATIONS } from '../stateDb.ts';
import { PgStateStore } from './pgState.ts';
import { PG_STATE_MIGRATIONS } from './stateSchema.ts';
import { PgStateDb } from './pgStateDb.ts';
import { SyncPg } from './syncPg.ts';
import { startWorker } from '../../util/startWorker.ts';

/**
 * The state stores on a real PostgreSQL 15 (test/support/postgres.ts): the contract every state
 * store passes (the same suite SQLite passes in state.test.ts), then what only PostgreSQL shows —
 * the synchronous connection's failure modes and two instances writing one audit chain.
 */
const pg15 = postgresPerFile('state');

async function freshStorage(): Promise<{ url: string; dataDir: string }> {
  const { url, dir } = await pg15.fresh();
  return { url, dataDir: dir };
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

describe('PostgreSQL state store (the contract every state store passes)', () => {
  stateContract('postgres', async () => {
    const { url, dataDir } = await freshStorage();
    const open = (now: () => number) => PgStateStore.open({ url, dataDir, now, scryptN: 1024 });
    return {
      open,
      reopen: open,
      schemaVersion: () => withClient(url, async (c) => ({
        current: (await c.query<{ version: number }>("SELECT version FROM sitegate_schema WHERE store = 'state'")).rows[0]!.version,
        latest: PG_STATE_MIGRATIONS.length,
      })),
      tamperAuditEntry: (seq) => withClient(url, async (c) => {
        const r = await c.query("UPDATE audit_log SET data = jsonb_set(data::jsonb, '{tampered}', '1')::text WHERE seq = $1", [seq]);
        if (r.rowCount !== 1) throw new Error(`no audit entry ${seq} to tamper with`);
      }),
      // Every row of every table of the database (its files are the server's: the rows are what it holds).
      storedText: () => withClient(url, async (c) => {
        const tables = (await c.query<{ t: string }>("SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public'")).rows;
        const rows = await Promise.all(tables.map(async ({ t }) => JSON.stringify((await c.query(`SELECT * FROM "${t}"`)).rows)));
        return rows.join('\n');
      }),
      teardown: async () => {},
    };
  });
});

describe('PostgreSQL state store beyond the contract', () => {
  it('has one migration for each of state.db\'s, with the same numbers', () => {
    expect(PG_STATE_MIGRATIONS.map((m) => m.version)).toEqual(STATE_MIGRATIONS.map((m) => m.version));
  });

  it('two instances appending to one audit chain at once keep one unbroken chain (the state lock)', async () => {
    const { url, dataDir } = await freshStorage();
    const now = () => Date.parse('2026-09-01T00:00:00Z');
    (await PgStateStore.open({ url, dataDir, now, scryptN: 1024 })).close(); // migrated once, before the race
    // Each instance on its own thread (a connection blocks its caller, so one thread cannot race two).
    const writers = ['a', 'b'].map((name) => startWorker(new URL('../../../../test/support/pgAuditWriter.ts', import.meta.url), { url, dataDir, name, entries: 60 }));
    const done = await Promise.all(writers.map((w) => new Promise<unknown>((resolve, reject) => { w.once('message', resolve); w.once('error', reject); })));
    expect(done).toEqual([{ appended: 60 }, { appended: 60 }]);
    const store = await PgStateStore.open({ url, dataDir, now, scryptN: 1024 });
    expect(store.audit.verify()).toEqual({ ok: true, entries: 120, head: expect.any(String) });
    store.close();
  });

  it('begins a transaction on the server with its first statement: none for a body that ran none, the lock and the deferred fence before the first', async () => {
    const { url } = await freshStorage();
    const db = PgStateDb.connect({ url });
    const sent: string[] = [];
    const query = db.pg.query.bind(db.pg);
    db.pg.query = ((sql: string, params?: unknown[]) => { sent.push(sql.split(' ')[0]!); return query(sql, params); }) as typeof db.pg.query;
    const fenced: string[] = [];
    db.transaction(() => { db.deferUntilBegin(() => fenced.push('fence')); })();
    expect([sent, fenced]).toEqual([[], []]);
    const held = db.transaction(() => {
      db.deferUntilBegin(() => fenced.push('fence'));
      return db.prepare("SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted").get() as { n: number };
    })();
    expect(held.n).toBe(1); // the state lock, taken before the first statement
    expect(fenced).toEqual(['fence']);
    expect(sent).toEqual(['BEGIN;', 'SELECT', 'COMMIT']);
    // A nested transaction whose body ran nothing sends no savepoint either; a throw rolls back what began.
    sent.length = 0;
    expect(() => db.transaction(() => {
      db.transaction(() => undefined)();
      db.prepare('SELECT 1').get();
      throw new Error('no');
    })()).toThrow('no');
    expect(sent).toEqual(['BEGIN;', 'SELECT', 'ROLLBACK']);
    db.close();
  });

  it('a query that gets no answer in time fails the connection, and later calls say so', async () => {
    const { url } = await freshStorage();
    const db = new SyncPg({ url, timeoutMs: 300 });
    expect(db.query<{ n: number }>('SELECT 1 AS n').rows).toEqual([{ n: 1 }]);
    expect(() => db.query('SELECT pg_sleep(2)')).toThrow(/did not answer within 300 ms/);
    expect(db.open).toBe(false);
    expect(() => db.query('SELECT 1')).toThrow(/failed earlier/);
    db.close();
  });

  it('a refused connection fails at open with PostgreSQL\'s reason', () => {
    expect(() => new SyncPg({ url: `postgres://postgres@127.0.0.1:${pg15.server().port}/no_such_db`, timeoutMs: 5_000 })).toThrow(/no_such_db/);
  });

  it('an SQL error answers with PostgreSQL\'s message and code, and the connection goes on', async () => {
    const { url } = await freshStorage();
    const db = new SyncPg({ url });
    expect(() => db.query('SELECT * FROM nowhere')).toThrow(expect.objectContaining({ code: '42P01' }));
    expect(db.query('SELECT 2 AS n').rows).toEqual([{ n: 2 }]);
    db.close();
  });
});
