import path from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { postgresPerFile } from '../../../../test/support/postgres.ts';
import { ledgerContract } from '../ledgerContract.ts';
import type { LedgerRecord, StoredRecord } from '../types.ts';
import { PgLedger, READS } from './pgLedger.ts';
import { siteShardKey } from '../../region/shards.ts';

/**
 * The PostgreSQL ledger against a real PostgreSQL 15 (test/support/postgres.ts): the contract
 * every ledger passes, then what only a shared database can show — two instances racing on the
 * same dedupe keys.
 */
const pg15 = postgresPerFile('ledger');

/** A fresh database and evidence directory. */
async function freshStorage(): Promise<{ url: string; evidenceDir: string }> {
  const { url, dir } = await pg15.fresh();
  return { url, evidenceDir: path.join(dir, 'evidence') };
}

describe('PostgreSQL ledger (the contract every ledger passes)', () => {
  ledgerContract('postgres', async () => {
    const { url, evidenceDir } = await freshStorage();
    const open = () => PgLedger.open({ connectionString: url, evidenceDir });
    return { open, reopen: open, teardown: async () => {} };
  });
});

function reading(device: string, id: string, ts: number): LedgerRecord {
  return { siteId: 'S1', deviceId: device, kind: 'reading', msgId: id, dedupeKey: `${device}/${id}`, ts, receivedAt: ts, body: { metrics: { pm10: ts % 100 } } };
}

describe('PostgreSQL ledger across instances', () => {
  it('following (region mode), each instance\'s listeners hear every instance\'s commits once, in seq order, without a gap', async () => {
    const { url, evidenceDir } = await freshStorage();
    const [a, b] = await Promise.all([0, 1].map(() => PgLedger.open({ connectionString: url, evidenceDir, maxGroup: 50, follow: { everyMs: 20 } })));
    const heard: number[][] = [[], []];
    const heardAll = [a!, b!].map((l, i) => new Promise<void>((resolve) => l.onCommitted((rs) => {
      heard[i]!.push(...rs.map((r) => r.seq));
      if (heard[i]!.length >= 600) resolve();
    })));
    // 600 readings, alternately from each instance, in calls of 1–7, all at once: the commits interleave.
    const calls: Promise<unknown>[] = [];
    for (let i = 0, n = 0; i < 600; n++) {
      const size = 1 + (n % 7);
      const records = Array.from({ length: Math.min(size, 600 - i) }, (_, j) => reading(`d${n % 2}`, `f${i + j}`, 1_000 + i + j));
      calls.push((n % 2 ? b! : a!).appendMany(records));
      i += records.length;
    }
    await Promise.all(calls);
    await Promise.all([a!.drained(), b!.drained()]);
    // drained() waits until this instance's own commits were heard; the other's come within a period.
    await Promise.all(heardAll);
    expect([a!.lastSeq, b!.lastSeq]).toEqual([600, 600]);
    const all = Array.from({ length: 600 }, (_, i) => i + 1);
    expect(heard[0]).toEqual(all);
    expect(heard[1]).toEqual(all);
    await Promise.all([a!.close(), b!.close()]);
  });

  it('two instances appending the same dedupe keys at once store each key once, in one gap-free commit order', async () => {
    const { url, evidenceDir } = await freshStorage();
    const groups: number[][] = [[], []];
    const [a, b] = await Promise.all([0, 1].map((i) => PgLedger.open({ connectionString: url, evidenceDir, maxGroup: 300, onCommit: ({ records }) => groups[i]!.push(records) })));
    const heard: StoredRecord[][] = [[], []];
    a!.onCommitted((rs) => heard[0]!.push(...rs));
    b!.onCommitted((rs) => heard[1]!.push(...rs));

    // 2,000 keys from 5 devices; each instance appends all of them, in calls of 1–9 records, in a
    // different order (b backwards), so both race on every key.
    const keys = Array.from({ length: 2000 }, (_, i) => reading(`d${i % 5}`, `m${i}`, 1_000 + i));
    const calls = (records: LedgerRecord[]) => {
      const out: LedgerRecord[][] = [];
      for (let i = 0; i < records.length;) { const n = 1 + (i % 9); out.push(records.slice(i, i + n)); i += n; }
      return out;
    };
    const run = (ledger: PgLedger, records: LedgerRecord[]) =>
      Promise.all(calls(records).map((c) => ledger.appendMany(c).then((rs) => rs.map((r, j) => [c[j]!.dedupeKey, r.seq] as const)))).then((x) => x.flat());
    // A third instance tails the ledger meanwhile, as a sink's cursor would: it must never see a
    // seq before the one it has not seen yet (a record committed later with a lower seq is lost to it).
    const tailer = await PgLedger.open({ connectionString: url, evidenceDir });
    let appending = true;
    const tailed: number[] = [];
    const tail = (async () => {
      for (let cursor = 0; ;) {
        const last = !appending; // one more read after the appends settled picks up the rest
        const page = await tailer.readAfter(cursor, 500);
        for (const r of page) { tailed.push(r.seq); cursor = r.seq; }
        if (last && page.length === 0) return;
      }
    })();
    const [fromA, fromB] = await Promise.all([run(a!, keys), run(b!, [...keys].reverse())]);
    appending = false;
    await tail;
    await tailer.close();
    expect(tailed).toEqual(Array.from({ length: 2000 }, (_, i) => i + 1)); // each once, none skipped

    // Each key: stored by exactly one instance, a duplicate for the other.
    const seqA = new Map(fromA), seqB = new Map(fromB);
    for (const k of keys) {
      const sa = seqA.get(k.dedupeKey), sb = seqB.get(k.dedupeKey);
      expect([sa, sb].filter((s) => s !== null), k.dedupeKey).toHaveLength(1);
    }
    // Both instances took part (the race was real), and group commit grouped.
    expect(fromA.some(([, s]) => s !== null) && fromB.some(([, s]) => s !== null)).toBe(true);
    for (const g of groups) expect(Math.max(...g)).toBeGreaterThan(1);

    // The database holds each key once, seq 1…2000 without a hole; both instances read the same.
    const c = new pg.Client(url);
    await c.connect();
    const { rows } = await c.query<{ n: string; keys: string; lo: string; hi: string }>('SELECT count(*) AS n, count(DISTINCT dedupe_key) AS keys, min(seq) AS lo, max(seq) AS hi FROM ledger_records');
    await c.end();
    expect(rows[0]).toEqual({ n: '2000', keys: '2000', lo: '1', hi: '2000' });
    const viaA = await a!.readAfter(0, 10_000), viaB = await b!.readAfter(0, 10_000);
    expect(viaA.map((r) => r.seq)).toEqual(Array.from({ length: 2000 }, (_, i) => i + 1));
    expect(viaB).toEqual(viaA);

    // Listeners: each instance heard exactly what it stored, in seq order; together, every record once.
    for (const h of heard) expect(h.map((r) => r.seq)).toEqual([...h.map((r) => r.seq)].sort((x, y) => x - y));
    expect(heard[0]!.length + heard[1]!.length).toBe(2000);
    expect(new Set([...heard[0]!, ...heard[1]!].map((r) => r.dedupeKey)).size).toBe(2000);
    expect(heard[0]!.map((r) => r.dedupeKey).sort()).toEqual(fromA.filter(([, s]) => s !== null).map(([k]) => k).sort());

    // lastSeq is local; headSeq asks the database.
    expect(await a!.headSeq()).toBe(2000);
    await Promise.all([a!.close(), b!.close()]);
  });

  it('refuses a call whose ids PostgreSQL cannot store, alone, and carries on', async () => {
    const { url, evidenceDir } = await freshStorage();
    const ledger = await PgLedger.open({ connectionString: url, evidenceDir });
    const bad = ledger.appendMany([reading('d1', 'ok-in-bad-call', 1), reading('d1', 'nul\u0000id', 2)]);
    const good = ledger.append(reading('d1', 'fine', 3));
    await expect(bad).rejects.toThrow(/U\+0000/);
    expect((await good).seq).toBe(1);
    expect((await ledger.readAfter(0, 10)).map((r) => r.msgId)).toEqual(['fine']);
    await ledger.close();
  });

  it('fails stop when its connection is killed: nothing after the failure is acknowledged, and the owner is told once', async () => {
    const { url, evidenceDir } = await freshStorage();
    const fatal: string[] = [];
    const ledger = await PgLedger.open({ connectionString: url, evidenceDir, onFatal: (e) => fatal.push(e.message) });
    await ledger.append(reading('d1', 'before', 1));
    const admin = new pg.Client(url);
    await admin.connect();
    await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'sitegate-ledger-writer'");
    await admin.end();
    const after = await Promise.allSettled(Array.from({ length: 5 }, (_, i) => ledger.append(reading('d1', `w${i}`, 2 + i))));
    expect(after.every((r) => r.status === 'rejected')).toBe(true);
    await expect(ledger.append(reading('d1', 'later', 99))).rejects.toThrow(/ledger/);
    expect(fatal).toHaveLength(1);
    expect((await ledger.readAfter(0, 100)).map((r) => r.msgId)).toEqual(['before']);
    await ledger.close();
  });
});

describe('PostgreSQL ledger: a shard\'s reads', () => {
  it('store each record\'s site key; records an instance of the previous version appends (no key) are read by every shard', async () => {
    const { url, evidenceDir } = await freshStorage();
    const ledger = await PgLedger.open({ connectionString: url, evidenceDir });
    const sites = Array.from({ length: 8 }, (_, i) => `S-${i}`);
    const rec = (site: string, id: string): LedgerRecord => ({ ...reading('d1', id, 1_000), siteId: site, dedupeKey: `d1/${id}` });
    await ledger.appendMany(sites.map((site) => rec(site, `new-${site}`)));
    // The eight-array call of the previous version, during a rolling upgrade.
    const c = new pg.Client(url);
    await c.connect();
    try {
      const old = sites.map((site) => rec(site, `old-${site}`));
      await c.query('SELECT * FROM ledger_append($1, $2, $3, $4, $5, $6, $7, $8)', [
        old.map((r) => r.dedupeKey), old.map((r) => r.siteId), old.map((r) => r.deviceId), old.map((r) => r.kind),
        old.map((r) => r.msgId), old.map((r) => r.ts), old.map((r) => r.receivedAt), old.map((r) => JSON.stringify(r.body)),
      ]);
      const keys = (await c.query<{ site_id: string; k: string | null }>('SELECT site_id, site_key::text AS k FROM ledger_records ORDER BY seq')).rows;
      expect(keys.slice(0, 8).map((r) => Number(r.k))).toEqual(sites.map(siteShardKey));
      expect(keys.slice(8).map((r) => r.k)).toEqual(sites.map(() => null));
    } finally {
      await c.end();
    }
    for (let index = 0; index < 4; index++) {
      const read = await ledger.readAfter(0, 100, ['reading'], { index, of: 4 });
      expect(read.filter((r) => r.msgId.startsWith('new-')).map((r) => r.siteId)).toEqual(sites.filter((site) => siteShardKey(site) % 4 === index));
      expect(read.filter((r) => r.msgId.startsWith('old-')).map((r) => r.siteId)).toEqual(sites);
    }
    await ledger.close();
  });
});

describe('PostgreSQL ledger reads', () => {
  it('each read is served by the index meant for it (alone among the indexes, with sequential scans off, the plan puts the whole condition in it)', async () => {
    const { url, evidenceDir } = await freshStorage();
    const ledger = await PgLedger.open({ connectionString: url, evidenceDir });
    await ledger.close(); // the schema is what is planned; the table may stay empty
    const expected: Record<keyof typeof READS, string> = {
      after: 'ledger_records_pkey',
      afterKinds: 'ledger_records_pkey',
      afterShard: 'ledger_records_pkey',
      afterKindsShard: 'ledger_records_pkey',
      bySiteKind: 'ledger_records_by_site_kind_ts',
      payments: 'ledger_records_payment_period',
      checkinsByWorker: 'ledger_records_checkin_by_worker',
      verdictsByWorker: 'ledger_records_verdict_by_worker',
      checkinPhoto: 'ledger_records_checkin_photo',
      snapshotPage: 'ledger_records_snapshot_by_device',
      snapshotHash: 'ledger_records_snapshot_hash',
      head: 'ledger_records_pkey',
    };
    const args: Record<keyof typeof READS, string> = {
      after: "(0, 10)", afterKinds: "(0, 10, ARRAY['checkin'])", afterShard: '(0, 10, 4, 1)', afterKindsShard: "(0, 10, ARRAY['checkin'], 4, 1)",
      bySiteKind: "('S1', 'checkin', 0, 10)", payments: "('S1', '2026-09')",
      checkinsByWorker: "('S1', 'W1', 0, 10)", verdictsByWorker: "('S1', 'W1', 0, 10)", checkinPhoto: "('S1', 'a')",
      snapshotPage: "('S1', 'CAM1', 0, 0, 10)", snapshotHash: "('S1', 'a')", head: '',
    };
    const c = new pg.Client(url);
    await c.connect();
    try {
      // A generic plan: what a prepared statement with its parameters as parameters gets.
      await c.query('SET enable_seqscan = off; SET plan_cache_mode = force_generic_plan');
      const constraints = new Set(['ledger_records_pkey', 'ledger_records_dedupe_key_key']);
      const indexes = (await c.query<{ indexname: string }>("SELECT indexname FROM pg_indexes WHERE tablename = 'ledger_records'")).rows.map((r) => r.indexname);
      expect(indexes).toEqual(expect.arrayContaining(Object.values(expected)));
      for (const [name, sql] of Object.entries(READS) as [keyof typeof READS, string][]) {
        // Every other index dropped (and put back by the rollback): if the expression or the
        // partial predicate did not match, the only way left would be a (disabled) Seq Scan.
        await c.query('BEGIN');
        for (const ix of indexes) {
          if (ix === expected[name]) continue;
          await c.query(constraints.has(ix) ? `ALTER TABLE ledger_records DROP CONSTRAINT ${ix}` : `DROP INDEX ${ix}`);
        }
        await c.query(`PREPARE q_${name} AS ${sql}`);
        const plan = (await c.query(`EXPLAIN EXECUTE q_${name}${args[name]}`)).rows.map((r) => r['QUERY PLAN']).join('\n');
        await c.query(`DEALLOCATE q_${name}`);
        await c.query('ROLLBACK');
        expect(plan, name).toContain(expected[name]);
        expect(plan, name).not.toMatch(/Seq Scan/);
        // The whole condition is the index's (its leading column alone would also "use" it):
        // only the by-kind and by-shard tails filter rows of the primary key.
        if (!name.startsWith('after') || name === 'after') expect(plan, name).not.toMatch(/Filter:/);
      }
    } finally {
      await c.end();
    }
  });
});
