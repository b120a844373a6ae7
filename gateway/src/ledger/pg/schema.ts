import type { Migration } from '../../state/migrations.ts';

/** The advisory lock every group commit holds (one per database, shared by every instance). */
export const APPEND_LOCK = 0x5a7e_0002;

/**
 * The ledger's tables on PostgreSQL, as numbered migrations (state/pgMigrations.ts), meaning what
 * ledger/schema.ts means on SQLite: version 1 is SQLite's 1–3 (table, dedupe key unique, the
 * partial indexes of the report, evidence and snapshot reads; readings carry none), version 2 the
 * group-commit function, version 3 each record's site key (region/shards.ts) for a shard's reads.
 *
 * `body` is the JSON text as the gateway wrote it (TEXT, like SQLite), not jsonb: a body is
 * stored and read back byte for byte, and PostgreSQL never parses a reading's body. Only the kinds
 * with a partial index have theirs parsed, once, by the index expression; the queries in
 * pgLedger.ts use exactly these expressions so the planner uses the indexes.
 */
export const PG_LEDGER_MIGRATIONS: readonly Migration[] = [{
  version: 1,
  name: 'records, dedupe key unique, the report/evidence/snapshot indexes (SQLite ledger versions 1–3)',
  up: `
CREATE TABLE ledger_records (
  seq BIGINT PRIMARY KEY,
  dedupe_key TEXT NOT NULL UNIQUE,
  site_id TEXT NOT NULL,
  device_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  msg_id TEXT NOT NULL,
  ts BIGINT NOT NULL,
  received_at BIGINT NOT NULL,
  body TEXT NOT NULL
);
CREATE INDEX ledger_records_by_site_kind_ts ON ledger_records (site_id, kind, ts) WHERE kind <> 'reading';
CREATE INDEX ledger_records_payment_period ON ledger_records (site_id, ((body::json) ->> 'period')) WHERE kind = 'wage_payment';
CREATE INDEX ledger_records_checkin_by_worker ON ledger_records (site_id, ((body::json) ->> 'workerId'), ts) WHERE kind = 'checkin';
CREATE INDEX ledger_records_verdict_by_worker ON ledger_records (site_id, ((body::json) ->> 'workerId'), ts) WHERE kind = 'verdict';
CREATE INDEX ledger_records_checkin_photo ON ledger_records (site_id, ((body::json) ->> 'photoSha256')) WHERE kind = 'checkin';
CREATE INDEX ledger_records_snapshot_by_device ON ledger_records (site_id, device_id, ts, seq) WHERE kind = 'snapshot';
CREATE INDEX ledger_records_snapshot_hash ON ledger_records (site_id, msg_id) WHERE kind = 'snapshot';
`,
}, {
  version: 2,
  name: 'ledger_append: one group in one statement (one round trip, one transaction), seq in commit order across instances',
  // Called as a single statement outside BEGIN, so the statement is the transaction: its answer
  // arrives after COMMIT (synchronous_commit = on: after the WAL flush).
  //
  // The advisory lock makes commits one at a time across every instance on the database, and seq
  // continues from the highest committed one under it. So seq is the commit order: a reader
  // (a sink's or a check's cursor on any instance) that has seen seq n never later finds a record
  // below n committed after it — which a sequence's nextval under concurrent transactions would
  // allow. It also makes the dedupe exact without gaps: under the lock nobody else inserts, so
  // the lookup sees every stored key, DISTINCT ON keeps the first of a key repeated in the group,
  // and seq has no holes. Every row of `numbered` is inserted, so it is the answer; should that
  // ever not hold, the unique index raises and the group fails (fail-stop: nothing acknowledged).
  //
  // The lookup is a LATERAL … LIMIT 1 on purpose: one probe of the dedupe index per record. As
  // NOT EXISTS the planner chose a hash anti-join, which reads the whole table every group (the
  // plan cached before the table grew): 1.2 s per group of 5,000 at 100,000 records.
  // (And no ON CONFLICT … RETURNING joined back to `numbered`: one more join of two CTEs.)
  up: appendFunction(false),
}, {
  version: 3,
  name: 'site_key: a site\'s shard key stored with each record, so that a shard reads only its sites\' records',
  // region/shards.ts siteShardKey, computed by the gateway when it appends (one hash for the rule,
  // in JavaScript) and kept as a column: a read of one shard filters on `site_key % shards`, an
  // integer per row. (Hashing in SQL per row was measured first: reading a shard's share of
  // 200,000 readings then cost more than reading them all.) Rows stored before have no key and
  // are read by every shard, which drops other sites' records as it always did.
  //
  // ledger_append takes the group's distinct sites and their keys as two more arrays (a few
  // entries, not one per record: a key per record cost 6 % of the append rate); the eight-array
  // form stays, storing no key, so an instance still on the previous version keeps appending
  // during a rolling upgrade.
  up: `
ALTER TABLE ledger_records ADD COLUMN site_key BIGINT;
${appendFunction(true)}
CREATE OR REPLACE FUNCTION ledger_append(
  p_keys TEXT[], p_sites TEXT[], p_devices TEXT[], p_kinds TEXT[], p_msg_ids TEXT[],
  p_ts BIGINT[], p_received_at BIGINT[], p_bodies TEXT[]
) RETURNS TABLE (o_ord INTEGER, o_seq BIGINT) LANGUAGE sql AS $fn$
  SELECT * FROM ledger_append(p_keys, p_sites, p_devices, p_kinds, p_msg_ids, p_ts, p_received_at, p_bodies, NULL::TEXT[], NULL::BIGINT[])
$fn$;
`,
}];

/**
 * The group-commit function (see migration 2 for how it works): with `siteKey`, the form of
 * migration 3 that also stores each record's site key, given per distinct site of the group.
 */
function appendFunction(siteKey: boolean): string {
  const k = (text: string) => (siteKey ? text : '');
  return `CREATE FUNCTION ledger_append(
  p_keys TEXT[], p_sites TEXT[], p_devices TEXT[], p_kinds TEXT[], p_msg_ids TEXT[],
  p_ts BIGINT[], p_received_at BIGINT[], p_bodies TEXT[]${k(', p_key_sites TEXT[], p_key_values BIGINT[]')}
) RETURNS TABLE (o_ord INTEGER, o_seq BIGINT) LANGUAGE plpgsql AS $fn$
DECLARE
  base BIGINT;
BEGIN
  PERFORM pg_advisory_xact_lock(${APPEND_LOCK});
  SELECT COALESCE(max(r.seq), 0) INTO base FROM ledger_records r;
  RETURN QUERY
  WITH input AS (
    SELECT u.k, u.site, u.dev, u.kind, u.msg, u.ts, u.recv, u.body, u.o::INTEGER AS o
    FROM unnest(p_keys, p_sites, p_devices, p_kinds, p_msg_ids, p_ts, p_received_at, p_bodies)
      WITH ORDINALITY AS u(k, site, dev, kind, msg, ts, recv, body, o)
  ), fresh AS (
    SELECT DISTINCT ON (i.k) i.* FROM input i
    LEFT JOIN LATERAL (SELECT 1 AS found FROM ledger_records r WHERE r.dedupe_key = i.k LIMIT 1) stored ON true
    WHERE stored.found IS NULL
    ORDER BY i.k, i.o
  ), numbered AS (
    SELECT f.*, base + row_number() OVER (ORDER BY f.o) AS s FROM fresh f
  ), ins AS (
    INSERT INTO ledger_records (seq, dedupe_key, site_id, device_id, kind, msg_id, ts, received_at, body${k(', site_key')})
    SELECT n.s, n.k, n.site, n.dev, n.kind, n.msg, n.ts, n.recv, n.body${k(', sk.key')} FROM numbered n${k(`
    LEFT JOIN unnest(p_key_sites, p_key_values) AS sk(site, key) ON sk.site = n.site`)}
  )
  SELECT n.o, n.s FROM numbered n ORDER BY n.s;
END
$fn$;
`;
}
