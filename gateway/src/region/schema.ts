import type { Migration } from '../state/migrations.ts';

/**
 * The lease store's tables on PostgreSQL (store `leases` in `sitegate_schema`, applied by
 * state/pgMigrations.ts), for region mode (issue 14): which instances are alive, and which
 * instance runs each site's checks and timers.
 *
 * - `region_instances`: one row per running instance (a fresh id per process start), its
 *   heartbeat as an expiry in the database's clock. Live = `expires_at > clock_timestamp()`.
 * - `site_leases`: one row per site ever leased. A released lease keeps its row (holder NULL), so
 *   `epoch` only ever grows: it is the fencing token, incremented on every acquisition, and a
 *   writer that proved epoch e can never be confused with a later holder.
 *
 * Every expiry is written and compared in the database's clock (`clock_timestamp()`), never an
 * instance's, so skew between instances cannot make two holders. No unique index may ever cover
 * holder, epoch or expires_at: the fence's FOR KEY SHARE relies on those updates being non-key
 * (leases.ts explains the locks).
 */
export const LEASE_MIGRATIONS: readonly Migration[] = [{
  version: 1,
  name: 'region_instances (membership by heartbeat) and site_leases (holder, epoch fencing token, expiry)',
  up: `
CREATE TABLE region_instances (
  instance_id TEXT PRIMARY KEY,
  started_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
  expires_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE site_leases (
  site_id TEXT PRIMARY KEY,
  holder TEXT,
  epoch BIGINT NOT NULL DEFAULT 0,
  expires_at TIMESTAMPTZ NOT NULL DEFAULT '-infinity',
  acquired_at TIMESTAMPTZ
);
CREATE INDEX site_leases_by_holder ON site_leases (holder) WHERE holder IS NOT NULL;
`,
}];
