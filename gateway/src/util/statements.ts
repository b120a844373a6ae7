import type Database from 'better-sqlite3';

/** A statement per SQL text, compiled once: `sql(text)` for code that runs per event. */
export function statementCache(db: Database.Database): (text: string) => Database.Statement {
  const statements = new Map<string, Database.Statement>();
  return (text) => {
    let st = statements.get(text);
    if (!st) statements.set(text, (st = db.prepare(text)));
    return st;
  };
}
