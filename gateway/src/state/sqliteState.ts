import type Database from 'better-sqlite3';
import { AlertStore } from '../alerts/alertStore.ts';
import { AuditTrail } from '../audit/auditTrail.ts';
import { CheckProgress } from '../checks/progress.ts';
import type { Clock } from '../clock/clock.ts';
import { Registry } from '../registry/registry.ts';
import { SinkStateStore } from '../sinks/sinkState.ts';
import type { SqlDb } from './sqlDb.ts';
import { openStateDb } from './stateDb.ts';
import { Transactions } from './transactions.ts';
import type { StateStore } from './types.ts';

export interface SqliteStateOptions {
  /** Holds `state.db` and the installation keys (`keys/`). */
  dataDir: string;
  now: Clock;
  /** scrypt cost of device secrets (tests lower it). */
  scryptN?: number;
  /** Region mode: the registry is shared with other instances (registry.ts `shared`). */
  registryShared?: { changed: () => void };
}

/**
 * Every store over one SQL connection (`SqlDb`), sharing it so that `transaction` spans them all:
 * SQLite's `state.db` by default (below), PostgreSQL in region mode (pg/pgState.ts). The classes
 * stay reachable by their own types (`db` for the tables that have no interface yet: faces,
 * hazard snapshots, device liveness, webhooks, commands).
 */
export class SqlStateStore<D extends SqlDb = SqlDb> implements StateStore {
  readonly registry: Registry;
  readonly audit: AuditTrail;
  readonly alerts: AlertStore;
  readonly sinkState: SinkStateStore;
  private readonly progresses = new Map<string, CheckProgress>();

  protected constructor(readonly db: D, o: SqliteStateOptions) {
    this.registry = new Registry(o.dataDir, {
      now: o.now, db, ...(o.scryptN !== undefined ? { scryptN: o.scryptN } : {}), ...(o.registryShared ? { shared: o.registryShared } : {}),
    });
    this.audit = new AuditTrail(db);
    this.alerts = new AlertStore({
      db, audit: this.audit, now: o.now,
      // A site's own limits (contract §2 `settings`) override domain.md's defaults.
      escalationFor: (siteId) => this.registry.site(siteId)?.settings.escalationS,
      rectifyFor: (siteId) => this.registry.site(siteId)?.settings.rectifyS,
    });
    this.sinkState = new SinkStateStore(db);
  }

  progress(consumer: string): CheckProgress {
    let p = this.progresses.get(consumer);
    if (!p) this.progresses.set(consumer, (p = new CheckProgress(this.db, consumer)));
    return p;
  }

  transaction<T>(fn: () => T): T {
    return Transactions.of(this.db).run(fn);
  }

  close(): void {
    this.db.close();
  }
}

/** The default state store: `state.db` (state/stateDb.ts, numbered migrations applied on open). */
export class SqliteStateStore extends SqlStateStore<Database.Database> {
  /** Opens (creating when missing) `state.db` under `dataDir`, migrated to the latest version. */
  static open(o: SqliteStateOptions): SqliteStateStore {
    return new SqliteStateStore(openStateDb(o.dataDir), o);
  }
}
