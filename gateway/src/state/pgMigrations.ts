import type pg from 'pg';
import type { Migration } from './migrations.ts';

/**
 * Numbered migrations on PostgreSQL, with the meaning of migrations.ts: each applied in its own
 * transaction together with its version, a database newer than this gateway refused. SQLite keeps
 * the version in `user_version` (one file per store); a PostgreSQL database holds several stores
 * (ledger now, state next), so the version is one row per store in `sitegate_schema`.
 *
 * Region mode opens the same database from N instances at once: each migration runs under a
 * transaction-level advisory lock and re-reads the version under it, so two instances starting
 * together apply each migration once.
 */
const MIGRATION_LOCK = 0x5a7e_0001; // any constant shared by every instance; one per purpose

export async function migratePg(client: pg.ClientBase, migrations: readonly Migration[], what: string): Promise<{ from: number; to: number }> {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`${what} migrations must be numbered 1, 2, 3…: found ${m.version} at position ${i + 1}`);
  });
  const latest = migrations.length;
  let from: number | undefined;
  for (;;) {
    await client.query('BEGIN');
    try {
      await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      // Under the lock: two instances creating it at once would collide in the catalogue.
      await client.query('CREATE TABLE IF NOT EXISTS sitegate_schema (store TEXT PRIMARY KEY, version INTEGER NOT NULL)');
      const r = await client.query<{ version: number }>('SELECT version FROM sitegate_schema WHERE store = $1', [what]);
      const at = r.rows[0]?.version ?? 0;
      from ??= at;
      if (at > latest) throw new Error(`${what} is at schema version ${at}, newer than this gateway knows (${latest}): use the newer gateway or restore a backup`);
      if (at === latest) {
        await client.query('COMMIT');
        return { from, to: latest };
      }
      const m = migrations[at]!;
      await client.query(m.up);
      await client.query('INSERT INTO sitegate_schema (store, version) VALUES ($1, $2) ON CONFLICT (store) DO UPDATE SET version = EXCLUDED.version', [what, m.version]);
      await client.query('COMMIT');
    } catch (e) {
      await client.query('ROLLBACK').catch(() => {});
      throw e;
    }
  }
}
