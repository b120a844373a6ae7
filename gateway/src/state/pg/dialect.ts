/**
 * The state modules' SQL is written once, in SQLite's dialect; this rewrites the constructs that
 * PostgreSQL spells differently. Only what the gateway's statements use is handled, and a statement
 * the rewrite does not understand fails loudly in PostgreSQL rather than being guessed at: the
 * state contract suite and the region tests run every statement against a real server.
 *
 * - `?` parameters become `$1`, `$2`… (not inside quoted strings or identifiers);
 * - `INSERT OR IGNORE INTO …` becomes `INSERT INTO … ON CONFLICT DO NOTHING`;
 * - `json_extract(x, '$.a')` becomes `(x)::jsonb ->> 'a'` (text, as every caller reads it);
 * - `AS camelCase` aliases are quoted (PostgreSQL folds unquoted names to lower case).
 */
export function toPostgres(sql: string): string {
  let out = '';
  let n = 0;
  let quote: string | null = null;
  for (const ch of sql) {
    if (quote) {
      if (ch === quote) quote = null;
      out += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      out += ch;
    } else if (ch === '?') {
      out += `$${++n}`;
    } else {
      out += ch;
    }
  }
  if (/^\s*INSERT OR IGNORE INTO/i.test(out)) {
    out = out.replace(/INSERT OR IGNORE INTO/i, 'INSERT INTO').replace(/;?\s*$/, '');
    const returning = out.search(/\sRETURNING\s/i);
    out = returning < 0 ? `${out} ON CONFLICT DO NOTHING` : `${out.slice(0, returning)} ON CONFLICT DO NOTHING${out.slice(returning)}`;
  }
  out = out.replace(/json_extract\(([\w.]+),\s*'\$\.(\w+)'\)/g, "(($1)::jsonb ->> '$2')");
  out = out.replace(/\bAS ([a-z]+[A-Z]\w*)/g, 'AS "$1"');
  return out;
}
