import type { Migration } from '../state/migrations.ts';

/**
 * Ledger tables, as numbered migrations (state/migrations.ts). `seq` is the arrival order and the sinks' cursor. Readings — the bulk — carry no
 * secondary index, so appending them costs one B-tree insert plus the dedupe index; the other
 * kinds (check-ins, payments, verdicts, status) are indexed by site and event time for reports.
 */
export const LEDGER_MIGRATIONS: readonly Migration[] = [{
  version: 1,
  name: 'baseline (IF NOT EXISTS adopts a ledger made before migrations)',
  up: `
CREATE TABLE IF NOT EXISTS records (
  seq INTEGER PRIMARY KEY,
  dedupe_key TEXT NOT NULL UNIQUE,
  site_id TEXT NOT NULL,
  device_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  msg_id TEXT NOT NULL,
  ts INTEGER NOT NULL,
  received_at INTEGER NOT NULL,
  body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_by_site_kind_ts ON records (site_id, kind, ts) WHERE kind <> 'reading';
`,
}];
