/**
 * The lease store's statements (tables: schema.ts). Each is one round trip and its own
 * transaction (sent outside BEGIN), and every expiry is read and written in the database's clock.
 *
 * Locks, and why. A caller proves its lease with FENCE inside its own transaction; the row lock
 * it takes (FOR KEY SHARE) lasts until that transaction ends.
 * - The holder's own RENEW and RELEASE change only non-key columns (FOR NO KEY UPDATE), which
 *   does not conflict with FOR KEY SHARE: a long fenced transaction never delays a renewal.
 * - ACQUIRE locks its candidates FOR UPDATE SKIP LOCKED, which does conflict: a site whose
 *   previous holder is still inside a fenced transaction is skipped until that commits or rolls
 *   back, so the next holder's first read (its cursor) comes after the last write of the previous
 *   one. SKIP LOCKED also lets instances acquire at once without waiting for each other.
 * So exclusivity does not rest on clocks at all; expiry only decides when a silent holder is
 * given up.
 */

/** Channel on which instances say "leases were released" or "membership changed" (payload `why:instance`). */
export const CHANNEL = 'sitegate_leases';

/** $1 site ids: a row for each site not seen before (holder NULL, epoch 0, expired). */
export const ENSURE = `INSERT INTO site_leases (site_id) SELECT unnest($1::text[]) ON CONFLICT (site_id) DO NOTHING`;

/**
 * The heartbeat and the renewal in one statement, with one expiry for both, so an instance's
 * membership and its leases lapse at the same instant (the failover bound in leases.ts relies on it).
 * $1 instance, $2 ttl ms, $3/$4 the sites and epochs this instance believes it holds.
 * Also: leases the database says we hold but we do not know of (an answer lost with a dropped
 * connection, a renewal that landed after we gave up locally) are released; instances dead for a
 * day are forgotten. Answers the renewed sites, the live instances and whether we just joined.
 */
export const RENEW = `
WITH t AS MATERIALIZED (SELECT clock_timestamp() AS now, clock_timestamp() + $2::int * interval '1 millisecond' AS exp),
beat AS (
  INSERT INTO region_instances (instance_id, expires_at) SELECT $1, t.exp FROM t
  ON CONFLICT (instance_id) DO UPDATE SET expires_at = EXCLUDED.expires_at
  RETURNING (xmax = 0) AS joined
), renewed AS (
  UPDATE site_leases l SET expires_at = t.exp
  FROM t, unnest($3::text[], $4::bigint[]) AS h(site_id, epoch)
  WHERE l.site_id = h.site_id AND l.epoch = h.epoch AND l.holder = $1 AND l.expires_at > t.now
  RETURNING l.site_id, l.epoch
), orphans AS (
  UPDATE site_leases SET holder = NULL, expires_at = '-infinity'
  WHERE holder = $1 AND NOT (site_id = ANY($3::text[]))
  RETURNING site_id
), forgotten AS (
  DELETE FROM region_instances r USING t WHERE r.expires_at < t.now - interval '1 day' AND r.instance_id <> $1
), said AS (
  SELECT pg_notify('${CHANNEL}', w || ':' || $1) FROM (
    SELECT 'joined' AS w FROM beat WHERE joined
    UNION ALL SELECT 'released' FROM (SELECT 1 FROM orphans LIMIT 1) o
  ) x
)
SELECT
  (SELECT COALESCE(json_agg(json_build_array(site_id, epoch::text)), '[]') FROM renewed) AS renewed,
  1 + (SELECT count(*) FROM region_instances r, t WHERE r.instance_id <> $1 AND r.expires_at > t.now)::int AS live,
  (SELECT count(*) FROM said)::int AS notified`;

/** $1 instance, $2 ttl ms, $3 the current sites, $4 how many: free or expired ones, this instance's preferred first. */
export const ACQUIRE = `
WITH c AS (
  SELECT site_id FROM site_leases
  WHERE site_id = ANY($3::text[]) AND expires_at < clock_timestamp()
  ORDER BY md5(site_id || $1) COLLATE "C"
  LIMIT $4
  FOR UPDATE SKIP LOCKED
)
UPDATE site_leases l
SET holder = $1, epoch = l.epoch + 1, expires_at = clock_timestamp() + $2::int * interval '1 millisecond', acquired_at = clock_timestamp()
FROM c WHERE l.site_id = c.site_id
RETURNING l.site_id, l.epoch::text AS epoch`;

/** $1 instance, $2 sites: given back at once, and the others told. */
export const RELEASE = `
WITH r AS (
  UPDATE site_leases SET holder = NULL, expires_at = '-infinity' WHERE holder = $1 AND site_id = ANY($2::text[]) RETURNING 1
)
SELECT pg_notify('${CHANNEL}', 'released:' || $1) FROM (SELECT 1 FROM r LIMIT 1) x`;

/** $1 instance: a clean stop gives back every lease and leaves the membership, so others rebalance now. */
export const LEAVE = `
WITH r AS (UPDATE site_leases SET holder = NULL, expires_at = '-infinity' WHERE holder = $1 RETURNING 1),
d AS (DELETE FROM region_instances WHERE instance_id = $1 RETURNING 1)
SELECT pg_notify('${CHANNEL}', 'left:' || $1), (SELECT count(*) FROM r)::int AS released`;

/**
 * Run inside the caller's own transaction, before its writes for the site: one row if
 * ($2 instance, $3 epoch) still holds site $1. The row stays locked until that transaction ends,
 * so no other instance can acquire the site before the caller's writes are committed or gone.
 */
export const FENCE = `SELECT 1 FROM site_leases WHERE site_id = $1 AND holder = $2 AND epoch = $3 AND expires_at > clock_timestamp() FOR KEY SHARE`;
