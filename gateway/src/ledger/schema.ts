import type { Migration } from '../state/migrations.ts';

/**
 * Ledger tables, as numbered migrations (state/migrations.ts). `seq` is the arrival order and the
 * sinks' cursor. Readings — the bulk — carry no secondary index, so appending them costs one
 * B-tree insert plus the dedupe index; the other kinds (check-ins, payments, verdicts, status) are
 * indexed by site and event time for reports, payments by period, check-ins and verdicts by
 * worker (evidence), check-ins by photo hash (lookups that otherwise scan a site's history).
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
}, {
  version: 2,
  name: 'lookups that scanned a site\'s history: payments by period, check-ins and verdicts by worker, check-ins by photo hash',
  up: `
CREATE INDEX IF NOT EXISTS records_payment_period ON records (site_id, json_extract(body, '$.period')) WHERE kind = 'wage_payment';
CREATE INDEX IF NOT EXISTS records_checkin_by_worker ON records (site_id, json_extract(body, '$.workerId'), ts) WHERE kind = 'checkin';
CREATE INDEX IF NOT EXISTS records_verdict_by_worker ON records (site_id, json_extract(body, '$.workerId'), ts) WHERE kind = 'verdict';
CREATE INDEX IF NOT EXISTS records_checkin_photo ON records (site_id, json_extract(body, '$.photoSha256')) WHERE kind = 'checkin';
`,
}, {
  version: 3,
  name: 'camera snapshots by device and time, and by hash (contract §6 GET …/snapshots, GET …/photos/{sha256})',
  // Partial indexes: a reading's insert only evaluates the WHERE; a site's history is not scanned per request.
  up: `
CREATE INDEX IF NOT EXISTS records_snapshot_by_device ON records (site_id, device_id, ts, seq) WHERE kind = 'snapshot';
CREATE INDEX IF NOT EXISTS records_snapshot_hash ON records (site_id, msg_id) WHERE kind = 'snapshot';
`,
}];
