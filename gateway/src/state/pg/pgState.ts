import pg from 'pg';
import { migratePg } from '../pgMigrations.ts';
import { SqlStateStore, type SqliteStateOptions } from '../sqliteState.ts';
import { PgStateDb } from './pgStateDb.ts';
import { PG_STATE_MIGRATIONS } from './stateSchema.ts';

/** The channel on which instances say that they changed the registry (payload: the instance id). */
export const REGISTRY_CHANNEL = 'sitegate_registry';

export interface PgStateOptions extends SqliteStateOptions {
  /** `postgres://…` (SITEGATE_DATABASE_URL). */
  url: string;
  /** Names the connection in pg_stat_activity (SITEGATE_INSTANCE_ID). */
  instanceId?: string;
  /** Longest wait for one answer before the connection is given up (syncPg.ts). */
  timeoutMs?: number;
}

/**
 * The state stores on PostgreSQL (region mode, contract §8): the same classes as on SQLite, over
 * a synchronous connection (pgStateDb.ts), so a check's step still applies its alerts and its
 * cursor in one transaction. Proven by the same suite (stateContract.ts, bound in pgState.test.ts).
 * `dataDir` still holds this instance's installation keys: in region mode every instance needs the
 * same `keys/card-hmac.key` (equal cards must hash equal everywhere), README "Region mode".
 */
export class PgStateStore extends SqlStateStore<PgStateDb> {
  /** Migrates the database (every instance may start at once: migratePg takes a lock) and connects. */
  static async open(o: PgStateOptions): Promise<PgStateStore> {
    const client = new pg.Client({ connectionString: o.url });
    await client.connect();
    try {
      await migratePg(client, PG_STATE_MIGRATIONS, 'state');
    } finally {
      await client.end();
    }
    const db = PgStateDb.connect({
      url: o.url, applicationName: `sitegate-state${o.instanceId ? `:${o.instanceId}` : ''}`, ...(o.timeoutMs ? { timeoutMs: o.timeoutMs } : {}),
    });
    const tag = o.instanceId ?? 'instance';
    // Every registry change tells the other instances (region/registryFollower.ts reloads theirs).
    return new PgStateStore(db, { ...o, registryShared: { changed: () => void db.query(`SELECT pg_notify('${REGISTRY_CHANNEL}', $1)`, [tag]) } });
  }
}
