import { createHash } from 'node:crypto';

/**
 * Region mode partitions the sites into a fixed number of shards (SITEGATE_REGION_SHARDS), and
 * each shard's checks run on the one instance that holds its lease (region/duties.ts): a site's
 * checks run in exactly one place, and the region's sites are spread over its instances. A site's
 * shard is a hash of its id, the same on every instance and across restarts; changing the number
 * of shards moves sites between cursors (`<check>#<shard>`), so it is chosen once per region.
 *
 * The ledgers answer a shard's reads with its sites' records only (`readAfter(…, shard)`): SQLite
 * calls `siteShardKey` from its SQL; PostgreSQL stores it with each record (`site_key`,
 * ledger/pg/schema.ts): one hash, in JavaScript, for both.
 */
export interface Shard {
  index: number;
  of: number;
}

/** The first four bytes of SHA-256 of the site id's UTF-8, as an unsigned integer. */
export function siteShardKey(siteId: string): number {
  return createHash('sha256').update(siteId).digest().readUInt32BE(0);
}

export function shardOf(siteId: string, of: number): number {
  return siteShardKey(siteId) % of;
}

/** A shard with the test for its sites (a hash per site, once): what a shard's checks run with. */
export interface SiteShard extends Shard {
  owns(siteId: string): boolean;
}

export function siteShard({ index, of }: Shard): SiteShard {
  const mine = new Map<string, boolean>();
  const owns = (siteId: string) => {
    let m = mine.get(siteId);
    if (m === undefined) mine.set(siteId, (m = shardOf(siteId, of) === index));
    return m;
  };
  return { index, of, owns };
}
