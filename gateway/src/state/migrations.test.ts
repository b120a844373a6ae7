import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { migrate, type Migration } from './migrations.ts';
import { openStateDb, STATE_MIGRATIONS } from './stateDb.ts';

const M: Migration[] = [
  { version: 1, name: 'things', up: 'CREATE TABLE IF NOT EXISTS things (id INTEGER PRIMARY KEY, name TEXT NOT NULL);' },
  { version: 2, name: 'things by name', up: 'CREATE INDEX things_by_name ON things (name);' },
];

describe('numbered migrations', () => {
  it('applies each once, in order, and records the version', () => {
    const db = new Database(':memory:');
    expect(migrate(db, M.slice(0, 1), 't')).toEqual({ from: 0, to: 1 });
    db.prepare("INSERT INTO things (name) VALUES ('a')").run();
    expect(migrate(db, M, 't')).toEqual({ from: 1, to: 2 });
    expect(migrate(db, M, 't')).toEqual({ from: 2, to: 2 });
    expect(db.pragma('user_version', { simple: true })).toBe(2);
    expect(db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'things_by_name'").get()).toBeTruthy();
    expect(db.prepare('SELECT name FROM things').all()).toEqual([{ name: 'a' }]);
  });

  it('a failing migration leaves the database at the version before it, untouched', () => {
    const db = new Database(':memory:');
    migrate(db, M.slice(0, 1), 't');
    const bad: Migration[] = [...M.slice(0, 1), { version: 2, name: 'half', up: 'CREATE TABLE half (x); CREATE INDEX nope ON missing (x);' }];
    expect(() => migrate(db, bad, 't')).toThrow(/missing/);
    expect(db.pragma('user_version', { simple: true })).toBe(1);
    expect(db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'half'").get()).toBeUndefined();
  });

  it('refuses a database newer than the gateway, and migrations that are not numbered 1, 2, 3…', () => {
    const db = new Database(':memory:');
    migrate(db, M, 't');
    expect(() => migrate(db, M.slice(0, 1), 'state.db')).toThrow(/state.db is at schema version 2, newer than this gateway knows \(1\)/);
    expect(() => migrate(new Database(':memory:'), [M[1]!], 't')).toThrow(/numbered 1, 2, 3/);
  });

  it('adopts a state database created before migrations existed (tables there, user_version 0)', () => {
    const db = new Database(':memory:');
    db.exec(STATE_MIGRATIONS[0]!.up.replace(/INSERT OR IGNORE[^;]*;/, '')); // as the modules used to create it
    db.prepare("INSERT INTO sites (site_id, doc, updated_at) VALUES ('S1', '{}', 0)").run();
    expect(migrate(db, STATE_MIGRATIONS, 'state.db').from).toBe(0);
    expect(db.prepare('SELECT site_id FROM sites').all()).toEqual([{ site_id: 'S1' }]);
    expect(db.prepare('SELECT snapshot_seq, applied_seq FROM hazard_cursor').get()).toEqual({ snapshot_seq: 0, applied_seq: 0 });
  });

  it('the state database opens at its latest version', () => {
    expect(openStateDb(':memory:').pragma('user_version', { simple: true })).toBe(STATE_MIGRATIONS.length);
  });

  it('3 (the closed loop) gives alerts of an existing data directory their handling times and deadlines', () => {
    const db = new Database(':memory:');
    migrate(db, STATE_MIGRATIONS.slice(0, 2), 'state.db');
    const insert = db.prepare(`INSERT INTO alerts (id, site_id, kind, key, severity, level, state, subject, opened_at, recorded_at, message, evidence, level_since)
      VALUES (?, 'S1', 'device.offline', ?, ?, 1, ?, '{}', 0, 1000, 'm', '{}', 1000)`);
    insert.run('a1', 'k1', 'warning', 'acked');
    insert.run('a2', 'k2', 'info', 'open');
    insert.run('a3', 'k3', 'critical', 'resolved');
    db.prepare(`INSERT INTO audit_log (seq, at, type, subject, data, prev_hash, hash) VALUES (1, 5000, 'alert.acked', 'alert:a1', '{}', '', ''), (2, 7000, 'alert.resolved', 'alert:a3', '{}', '', '')`).run();
    migrate(db, STATE_MIGRATIONS, 'state.db');
    const rows = db.prepare('SELECT id, due_at, acked_at, closed_at FROM alerts ORDER BY id').all();
    expect(rows).toEqual([
      { id: 'a1', due_at: 1000 + 604_800_000, acked_at: 5000, closed_at: null },
      { id: 'a2', due_at: null, acked_at: null, closed_at: null },
      { id: 'a3', due_at: null, acked_at: null, closed_at: 7000 },
    ]);
    // rectified is still being handled: one per key.
    db.prepare("UPDATE alerts SET state = 'rectified' WHERE id = 'a1'").run();
    expect(() => insert.run('a4', 'k1', 'warning', 'open')).toThrow(/UNIQUE/);
  });
});
