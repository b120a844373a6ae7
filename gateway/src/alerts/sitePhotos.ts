import crypto from 'node:crypto';
import type { SqlDb, SqlStatement } from '../state/sqlDb.ts';
import type { Clock } from '../clock/clock.ts';
import { SitegateError } from '../errors.ts';
import { persistEvidence } from '../ledger/evidence.ts';
import { statementCache } from '../util/statements.ts';

/**
 * Photos people upload for a site (contract §6: rectification photos, `POST /sites/{siteId}/photos`).
 * The bytes are evidence like check-in photos — content-addressed by SHA-256 in the same evidence
 * directory, fsynced, never overwritten — and `site_photos` says which site each was given for, so
 * a photo is served and cited only within that site.
 */
export class SitePhotos {
  private readonly sql: (text: string) => SqlStatement;

  constructor(db: SqlDb, private readonly evidenceDir: string, private readonly now: Clock) {
    this.sql = statementCache(db);
  }

  add(siteId: string, bytes: Buffer, by: string): string {
    if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8 || bytes[2] !== 0xff) throw new SitegateError('not_a_jpeg', 'the photo is not a JPEG image');
    const sha256 = crypto.createHash('sha256').update(bytes).digest('hex');
    // The file is durable before the row that lets anyone cite it.
    persistEvidence(this.evidenceDir, [{ sha256, data: bytes }]);
    this.sql('INSERT OR IGNORE INTO site_photos (site_id, sha256, uploaded_at, by) VALUES (?, ?, ?, ?)').run(siteId, sha256, this.now(), by);
    return sha256;
  }

  has(siteId: string, sha256: string): boolean {
    return this.sql('SELECT 1 FROM site_photos WHERE site_id = ? AND sha256 = ?').get(siteId, sha256) !== undefined;
  }
}
