import { createHash } from 'node:crypto';

/**
 * Region mode partitions the sites into a fixed number of shards (SITEGATE_REGION_SHARDS), and
 * each shard's checks run on the one instance that holds its lease (region/duties.ts): a site's
 * checks run in exactly one place, and the region's sites are spread over its instances. A site's
 * shard is a hash of its id, the same on every instance and across restarts; changing the number
 * of shards moves sites between cursors (`<check>#<shard>`), so it is chosen once per region.
 */
export interface Shard {
  index: number;
  of: number;
}

export function shardOf(siteId: string, of: number): number {
  return createHash('sha256').update(siteId).digest().readUInt32BE(0) % of;
}
