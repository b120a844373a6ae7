import path from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../../schemas/src/config.ts';
import type { Clock } from './clock/clock.ts';
import { Ledger } from './ledger/ledger.ts';
import type { LedgerReads } from './ledger/ledgerQueries.ts';
import { PgLedger } from './ledger/pg/pgLedger.ts';
import { PgSyncReads } from './ledger/pg/pgSyncReads.ts';
import type { ReportSource } from './ledger/reportReader.ts';
import { RegistryFollower } from './region/registryFollower.ts';
import { PgStateStore } from './state/pg/pgState.ts';
import { SqliteStateStore, type SqlStateStore } from './state/sqliteState.ts';

/** The ledger and the state, on one engine: SQLite in the data directory, or PostgreSQL (region mode). */
export interface Storage {
  store: SqlStateStore;
  ledger: Ledger | PgLedger;
  /** Ledger reads inside a check's synchronous step (the SQLite ledger answers them itself). */
  stepReads?: LedgerReads;
  /** Where the report thread reads the ledger. */
  reportSource: ReportSource;
  /** Closes the ledger (after its pending commits), then the rest. */
  close(): Promise<void>;
}

export interface StorageOptions {
  now: Clock;
  logger: Logger;
  /** After every ledger group commit (metrics). */
  onCommit(info: { records: number; commitMs: number }): void;
  /** The ledger failed: nothing more can be made durable. */
  onFatal(err: Error): void;
}

/**
 * Opens what `SITEGATE_DATABASE_URL` says: with it, ledger and state in PostgreSQL (contract §8) —
 * the state over its synchronous connection, the ledger following every instance's commits, the
 * registry following their changes, in-step ledger reads over a synchronous connection of their
 * own; without it, `ledger.db` and `state.db` in `SITEGATE_DATA_DIR`.
 */
export async function openStorage(config: Config, o: StorageOptions): Promise<Storage> {
  const ledgerOptions = { onCommit: o.onCommit, onFatal: o.onFatal };
  const stateOptions = { dataDir: config.SITEGATE_DATA_DIR, now: o.now, scryptN: config.SITEGATE_SECRET_SCRYPT_N };
  const url = config.SITEGATE_DATABASE_URL;
  if (!url) {
    const store = SqliteStateStore.open(stateOptions);
    const ledger = await Ledger.open(config.SITEGATE_DATA_DIR, ledgerOptions);
    return {
      store, ledger, reportSource: { dbFile: ledger.file },
      async close() {
        await ledger.close();
        store.close();
      },
    };
  }
  const instanceId = config.SITEGATE_INSTANCE_ID!;
  const store = await PgStateStore.open({ ...stateOptions, url, instanceId });
  // Other instances' registry changes (a token revoked there) reach this one's memory.
  const follower = new RegistryFollower({ url, instanceId, registry: store.registry, logger: o.logger.child({ component: 'region' }) });
  await follower.start();
  // Following: its listeners (checks, live feed, LiveState) hear every instance's commits.
  const ledger = await PgLedger.open({ connectionString: url, evidenceDir: path.join(config.SITEGATE_DATA_DIR, 'evidence'), follow: {}, ...ledgerOptions });
  // Inside a step's state transaction, under its lock (pgSyncReads.ts says why).
  const stepReads = new PgSyncReads(store.db);
  return {
    store, ledger, stepReads, reportSource: { pgUrl: url },
    async close() {
      await ledger.close();
      await follower.stop();
      store.close();
    },
  };
}
