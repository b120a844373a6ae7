import crypto from 'node:crypto';

/**
 * The evidence digest (format `sitegate-evidence-v1`): a SHA-256 hash chain over canonical rows.
 * A canonical row is the list of a CSV record's field values, as strings, written as a JSON array
 * (`JSON.stringify`, no spaces: `["checkin","S-HZ-001",…]`). The CSV header is row 0. Then
 *
 *   h_0   = SHA-256("sitegate-evidence-v1")                           (lowercase hex)
 *   h_i+1 = SHA-256(h_i ‖ "\n" ‖ canonical row i)                      (UTF-8, hex in, hex out)
 *   root  = h_n after the last row
 *
 * so it can be recomputed from the exported CSV alone (after stripping the BOM and parsing it as
 * RFC 4180): changing, dropping, adding or reordering any row changes the root. No dependency on
 * the rest of the gateway: the verification command imports only this file.
 */
export const DIGEST_FORMAT = 'sitegate-evidence-v1';
export const DIGEST_ALGORITHM = 'sha256-chain: h0 = sha256("sitegate-evidence-v1"), h(i+1) = sha256(h(i) + "\\n" + JSON.stringify(row i)), header is row 0';
export const DIGEST_GENESIS = crypto.createHash('sha256').update(DIGEST_FORMAT).digest('hex');

export const canonicalRow = (fields: readonly string[]): string => JSON.stringify(fields);

export class DigestChain {
  private h = DIGEST_GENESIS;
  private n = 0;

  push(fields: readonly string[]): this {
    this.h = crypto.createHash('sha256').update(`${this.h}\n${canonicalRow(fields)}`).digest('hex');
    this.n++;
    return this;
  }

  get root(): string {
    return this.h;
  }

  get rows(): number {
    return this.n;
  }
}

export function digestRows(rows: Iterable<readonly string[]>): { root: string; rows: number } {
  const c = new DigestChain();
  for (const r of rows) c.push(r);
  return { root: c.root, rows: c.rows };
}
