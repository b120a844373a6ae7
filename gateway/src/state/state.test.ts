import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe } from 'vitest';
import { SqliteStateStore } from './sqliteState.ts';
import { stateContract } from './stateContract.ts';
import { STATE_MIGRATIONS } from './stateDb.ts';

describe('SQLite state store (state.db)', () => {
  stateContract('sqlite', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'state-contract-'));
    let current: SqliteStateStore | undefined;
    const open = async (now: () => number) => (current = SqliteStateStore.open({ dataDir: dir, now, scryptN: 1024 }));
    const db = () => {
      if (!current?.db.open) throw new Error('no state store open');
      return current.db;
    };
    return {
      open,
      reopen: open,
      schemaVersion: async () => ({ current: db().pragma('user_version', { simple: true }) as number, latest: STATE_MIGRATIONS.length }),
      tamperAuditEntry: async (seq) => {
        const changed = db().prepare("UPDATE audit_log SET data = json_set(data, '$.tampered', 1) WHERE seq = ?").run(seq).changes;
        if (changed !== 1) throw new Error(`no audit entry ${seq} to tamper with`);
      },
      // Every row of every table, and the database files' bytes (a secret in a freed page counts too).
      storedText: async () => {
        const tables = db().prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[];
        const rows = tables.map(({ name }) => JSON.stringify(db().prepare(`SELECT * FROM "${name}"`).all()));
        const files = fs.readdirSync(dir).filter((f) => f.startsWith('state.db')).map((f) => fs.readFileSync(path.join(dir, f)).toString('latin1'));
        return [...rows, ...files].join('\n');
      },
      teardown: async () => fs.rmSync(dir, { recursive: true, force: true }),
    };
  });
});
