/**
 * Recomputes the digest of an evidence export from the CSV alone and compares it with an expected
 * root (format sitegate-evidence-v1, see gateway/src/evidence/digest.ts):
 *
 *   npm run digest -- evidence.csv                      prints the root
 *   npm run digest -- evidence.csv <root>               compares with a root (hex, or sitegate-evidence-v1:<hex>)
 *   npm run digest -- evidence.csv evidence.json        compares with the root recorded in the
 *                                                       audit trail at month close (digest.recorded.root),
 *                                                       else the root the JSON response was served with
 *
 * Exit code 0: match (or no expectation), 1: mismatch, 2: usage or unreadable input.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parse } from 'csv-parse';
import { DIGEST_FORMAT, DigestChain } from '../evidence/digest.ts';

export async function digestCsvFile(file: string): Promise<{ root: string; rows: number }> {
  const chain = new DigestChain();
  // RFC 4180 as exported: BOM stripped, quoted fields, CRLF; values kept exactly (no trimming, no casting).
  const parser = fs.createReadStream(file).pipe(parse({ bom: true, relax_column_count: false }));
  for await (const record of parser as AsyncIterable<string[]>) chain.push(record);
  return { root: chain.root, rows: chain.rows };
}

export function expectedRoot(arg: string): { root: string; source: string } {
  const hex = arg.replace(new RegExp(`^${DIGEST_FORMAT}:`), '').trim().toLowerCase();
  if (/^[0-9a-f]{64}$/.test(hex)) return { root: hex, source: 'given' };
  const json = JSON.parse(fs.readFileSync(arg, 'utf8')) as { digest?: { root?: string; recorded?: { root?: string } } };
  const recorded = json.digest?.recorded?.root;
  const served = json.digest?.root;
  if (recorded) return { root: recorded, source: `${arg}: digest.recorded.root (audit trail, month close)` };
  if (served) return { root: served, source: `${arg}: digest.root (as served)` };
  throw new Error(`${arg} holds no digest.root`);
}

async function main(argv: string[]): Promise<number> {
  const [csvFile, expect] = argv;
  if (!csvFile || csvFile === '--help' || csvFile === '-h') {
    console.error('usage: npm run digest -- <evidence.csv> [<expected root hex> | <evidence.json>]');
    return 2;
  }
  let got: { root: string; rows: number };
  let want: { root: string; source: string } | undefined;
  try {
    got = await digestCsvFile(csvFile);
    want = expect ? expectedRoot(expect) : undefined;
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    return 2;
  }
  console.log(`${DIGEST_FORMAT} root ${got.root} over ${got.rows} rows (header included) of ${csvFile}`);
  if (!want) return 0;
  if (want.root === got.root) {
    console.log(`MATCH: equals the expected root (${want.source})`);
    return 0;
  }
  console.log(`MISMATCH: expected ${want.root} (${want.source})`);
  return 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  process.exitCode = await main(process.argv.slice(2));
}
