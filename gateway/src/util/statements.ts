import type { SqlDb, SqlStatement } from '../state/sqlDb.ts';

/** A statement per SQL text, compiled once: `sql(text)` for code that runs per event. */
export function statementCache(db: SqlDb): (text: string) => SqlStatement {
  const statements = new Map<string, SqlStatement>();
  return (text) => {
    let st = statements.get(text);
    if (!st) statements.set(text, (st = db.prepare(text)));
    return st;
  };
}
