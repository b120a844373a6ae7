import type Database from 'better-sqlite3';

/**
 * Numbered schema migrations (style.md: versioned, like Zigbee2MQTT's settings). A database
 * records the last one applied in SQLite's `user_version`; opening it applies the ones after
 * that, each in its own transaction with its version, so a crash between two leaves a database
 * at a known version. A database newer than this gateway is refused: a downgrade would read
 * tables it does not know. Never edit a migration that has shipped: add the next one.
 */
export interface Migration {
  version: number;
  name: string;
  up: string;
}

export function migrate(db: Database.Database, migrations: readonly Migration[], what: string): { from: number; to: number } {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`${what} migrations must be numbered 1, 2, 3…: found ${m.version} at position ${i + 1}`);
  });
  const from = db.pragma('user_version', { simple: true }) as number;
  const latest = migrations.length;
  if (from > latest) throw new Error(`${what} is at schema version ${from}, newer than this gateway knows (${latest}): use the newer gateway or restore a backup`);
  for (const m of migrations.slice(from)) {
    db.transaction(() => {
      db.exec(m.up);
      db.pragma(`user_version = ${m.version}`);
    })();
  }
  return { from, to: latest };
}
