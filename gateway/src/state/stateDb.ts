import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { migrate, type Migration } from './migrations.ts';

/**
 * `state.db`: everything the gateway keeps besides the ledger — registry (sites, workers, devices,
 * tokens), alerts, the audit trail, enrolled faces, check progress and hazard snapshots, sink
 * cursors and dead letters. Its tables are declared here and only here, as numbered migrations;
 * the modules that use them prepare statements against them.
 */
export const STATE_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'baseline (the tables as they were created before migrations; IF NOT EXISTS adopts an existing data directory)',
    up: `
CREATE TABLE IF NOT EXISTS sites (site_id TEXT PRIMARY KEY, doc TEXT NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS workers (
  site_id TEXT NOT NULL, worker_id TEXT NOT NULL, doc TEXT NOT NULL, card_hash TEXT, updated_at INTEGER NOT NULL,
  PRIMARY KEY (site_id, worker_id));
CREATE INDEX IF NOT EXISTS workers_by_card ON workers (card_hash) WHERE card_hash IS NOT NULL;
CREATE TABLE IF NOT EXISTS devices (
  device_id TEXT PRIMARY KEY, site_id TEXT NOT NULL, kind TEXT NOT NULL, interval_s REAL,
  secret_hash TEXT NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
  id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, role TEXT NOT NULL, scope TEXT, label TEXT,
  expires_at INTEGER, revoked_at INTEGER, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sink_cursors (sink TEXT PRIMARY KEY, seq INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS dead_letters (
  id INTEGER PRIMARY KEY, sink TEXT NOT NULL, seq INTEGER NOT NULL, line TEXT NOT NULL, error TEXT NOT NULL, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS alerts (
  id TEXT PRIMARY KEY, site_id TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL,
  severity TEXT NOT NULL, level INTEGER NOT NULL, state TEXT NOT NULL, subject TEXT NOT NULL,
  opened_at INTEGER NOT NULL, recorded_at INTEGER NOT NULL, message TEXT NOT NULL, evidence TEXT NOT NULL,
  withdrawn INTEGER NOT NULL DEFAULT 0, level_since INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS alerts_by_opened ON alerts (opened_at, id);
CREATE INDEX IF NOT EXISTS alerts_by_key ON alerts (key, opened_at);
CREATE UNIQUE INDEX IF NOT EXISTS alerts_one_active_per_key ON alerts (key) WHERE state IN ('open', 'acked');
CREATE TABLE IF NOT EXISTS audit_log (
  seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, type TEXT NOT NULL, subject TEXT NOT NULL,
  data TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_by_subject ON audit_log (subject, seq);
CREATE TABLE IF NOT EXISTS faces (
  site_id TEXT NOT NULL, worker_id TEXT NOT NULL, embedding BLOB NOT NULL, photo_sha256 TEXT NOT NULL,
  model_id TEXT NOT NULL, face_px REAL NOT NULL, enrolled_at INTEGER NOT NULL,
  PRIMARY KEY (site_id, worker_id));
CREATE TABLE IF NOT EXISTS check_progress (
  check_name TEXT NOT NULL, scope TEXT NOT NULL, value INTEGER NOT NULL, PRIMARY KEY (check_name, scope));
CREATE TABLE IF NOT EXISTS hazard_snapshots (site_id TEXT PRIMARY KEY, doc TEXT NOT NULL, taken_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS hazard_cursor (
  id INTEGER PRIMARY KEY CHECK (id = 1), snapshot_seq INTEGER NOT NULL, applied_seq INTEGER NOT NULL);
INSERT OR IGNORE INTO hazard_cursor (id, snapshot_seq, applied_seq) VALUES (1, 0, 0);
`,
  },
  {
    version: 2,
    name: 'open alerts by level (escalation) and active alerts by site (counts), instead of scanning every alert',
    up: `
CREATE INDEX IF NOT EXISTS alerts_open_by_level ON alerts (level) WHERE state = 'open' AND withdrawn = 0;
CREATE INDEX IF NOT EXISTS alerts_active_by_site ON alerts (site_id) WHERE state IN ('open', 'acked') AND withdrawn = 0;
`,
  },
  {
    version: 3,
    name: 'the closed loop (contract §6): state rectified, deadlines and reminders as alert columns, webhooks with their delivery outbox, uploaded photos',
    // Timers are columns of the alert they belong to, changed in the transaction that fires them:
    // a restart finds each one exactly where the last commit left it (none lost, none fired twice).
    // Alerts already handled get their times back from the audit trail; open ones get the default
    // deadline from recordedAt (site-specific rectifyS applies from the next change on).
    up: `
ALTER TABLE alerts ADD COLUMN due_at INTEGER;
ALTER TABLE alerts ADD COLUMN reminded_for INTEGER;
ALTER TABLE alerts ADD COLUMN missed_due INTEGER NOT NULL DEFAULT 0;
ALTER TABLE alerts ADD COLUMN acked_at INTEGER;
ALTER TABLE alerts ADD COLUMN rectified_at INTEGER;
ALTER TABLE alerts ADD COLUMN closed_at INTEGER;
UPDATE alerts SET acked_at = (SELECT MIN(at) FROM audit_log WHERE subject = 'alert:' || alerts.id AND type = 'alert.acked');
UPDATE alerts SET closed_at = (SELECT MIN(at) FROM audit_log WHERE subject = 'alert:' || alerts.id AND type IN ('alert.resolved', 'alert.cleared', 'alert.withdrawn'))
  WHERE state IN ('resolved', 'cleared');
UPDATE alerts SET due_at = recorded_at + CASE severity WHEN 'critical' THEN 86400000 ELSE 604800000 END
  WHERE severity IN ('warning', 'critical') AND state IN ('open', 'acked');
DROP INDEX IF EXISTS alerts_one_active_per_key;
CREATE UNIQUE INDEX alerts_one_active_per_key ON alerts (key) WHERE state IN ('open', 'acked', 'rectified');
DROP INDEX IF EXISTS alerts_active_by_site;
CREATE INDEX alerts_active_by_site ON alerts (site_id) WHERE state IN ('open', 'acked', 'rectified') AND withdrawn = 0;
CREATE INDEX alerts_with_timers ON alerts (level) WHERE state IN ('open', 'acked') AND withdrawn = 0;
CREATE TABLE webhooks (id TEXT PRIMARY KEY, doc TEXT NOT NULL, secret TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE webhook_deliveries (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, webhook_id TEXT NOT NULL, alert_id TEXT NOT NULL,
  event TEXT NOT NULL, at INTEGER NOT NULL, body TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'pending',
  attempts INTEGER NOT NULL DEFAULT 0, next_at INTEGER NOT NULL, created_at INTEGER NOT NULL,
  last_status INTEGER, last_error TEXT, delivered_at INTEGER);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (webhook_id, alert_id, seq) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_by_state ON webhook_deliveries (webhook_id, state, seq);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_at) WHERE state = 'pending';
CREATE TABLE site_photos (site_id TEXT NOT NULL, sha256 TEXT NOT NULL, uploaded_at INTEGER NOT NULL, by TEXT NOT NULL, PRIMARY KEY (site_id, sha256));
`,
  },
  {
    version: 4,
    name: 'one cursor per check, owned by the check runner (issue 10): the checks\' own cursors become its `cursor` scope; device liveness kept as rows instead of relearnt from the ledger',
    // keystaff `seq`, face `resumeAfter` and hazard `applied_seq` each meant "the effects of every
    // record up to here are committed": the runner's cursor means the same.
    up: `
UPDATE check_progress SET scope = 'cursor' WHERE check_name = 'keystaff' AND scope = 'seq';
UPDATE check_progress SET scope = 'cursor' WHERE check_name = 'face-verification' AND scope = 'resumeAfter';
INSERT OR IGNORE INTO check_progress (check_name, scope, value) SELECT 'hazard', 'cursor', applied_seq FROM hazard_cursor WHERE id = 1 AND applied_seq > 0;
CREATE TABLE device_liveness (
  device_id TEXT PRIMARY KEY, site_id TEXT NOT NULL, last_heard INTEGER NOT NULL, last_event_ts INTEGER NOT NULL,
  gaps TEXT NOT NULL, offline_opened_at INTEGER, offline_recorded_at INTEGER);
`,
  },
  {
    version: 5,
    name: 'commands to site equipment (contract §7): one row per command, its state the delivery cursor; linkage commands keyed by alert event and rule',
    // A command is its own cursor: pending until the device PUBACKs it (sent again on every
    // subscription until then), then waiting for its result. `linkage_key` makes a linkage
    // command idempotent: (alert event's audit seq, rule, phase) is sent once whatever the restarts.
    up: `
CREATE TABLE commands (
  command_id TEXT PRIMARY KEY, site_id TEXT NOT NULL, device_id TEXT NOT NULL, action TEXT NOT NULL, params TEXT,
  state TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, delivered_at INTEGER,
  result_at INTEGER, result_ts INTEGER, message TEXT, by TEXT NOT NULL, alert_id TEXT, linkage_key TEXT UNIQUE);
CREATE INDEX commands_by_device ON commands (device_id, created_at);
CREATE INDEX commands_unfinished ON commands (device_id, created_at) WHERE state IN ('pending', 'delivered');
CREATE INDEX commands_by_alert ON commands (alert_id) WHERE alert_id IS NOT NULL;
`,
  },
];

/** Opens (creating when missing) and migrates the state database; `:memory:` for unit tests. */
export function openStateDb(dataDirOrMemory: string): Database.Database {
  const memory = dataDirOrMemory === ':memory:';
  if (!memory) fs.mkdirSync(dataDirOrMemory, { recursive: true });
  const db = new Database(memory ? ':memory:' : path.join(dataDirOrMemory, 'state.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  migrate(db, STATE_MIGRATIONS, 'state.db');
  return db;
}
