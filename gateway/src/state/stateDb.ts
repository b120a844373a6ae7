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
