/**
 * The thread behind `SyncPg` (syncPg.ts): one `pg` connection, one query at a time. Each answer is
 * posted on the reply port and then signalled through the shared word, which the caller waits on
 * with `Atomics.wait` (so it needs no event loop of its own to hear it).
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import pg from 'pg';

interface Start { url: string; signal: SharedArrayBuffer; replies: MessagePort; applicationName: string }
export interface Query { sql: string; params: unknown[] }
export type Reply =
  | { ok: true; rows: Record<string, unknown>[]; rowCount: number }
  | { ok: false; message: string; code?: string; detail?: string };

const { url, signal, replies, applicationName } = workerData as Start;
const flag = new Int32Array(signal);

// BIGINT (times in ms, seqs) and NUMERIC (SUM, AVG) come back as numbers, as SQLite gives them.
const types = {
  getTypeParser: ((oid: number, format: 'text') =>
    oid === 20 || oid === 1700 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
};

function answer(reply: Reply): void {
  replies.postMessage(reply);
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
}

const client = new pg.Client({ connectionString: url, types, application_name: applicationName });
// A connection lost between queries: the next query answers with the error (the client refuses it).
client.on('error', () => {});
client.connect().then(
  () => answer({ ok: true, rows: [], rowCount: 0 }),
  (err: Error & { code?: string }) => answer({ ok: false, message: err.message, ...(err.code ? { code: err.code } : {}) }),
);

parentPort!.on('message', (q: Query | 'close') => {
  if (q === 'close') {
    void client.end().finally(() => answer({ ok: true, rows: [], rowCount: 0 }));
    return;
  }
  client.query({ text: q.sql, values: q.params }).then(
    (r) => answer({ ok: true, rows: r.rows as Record<string, unknown>[], rowCount: r.rowCount ?? 0 }),
    (err: Error & { code?: string; detail?: string }) => answer({
      ok: false, message: err.message, ...(err.code ? { code: err.code } : {}), ...(err.detail ? { detail: err.detail } : {}),
    }),
  );
});
