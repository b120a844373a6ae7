import fs from 'node:fs';
import path from 'node:path';
import { threadId } from 'node:worker_threads';
import type { EvidenceFile } from './types.ts';

/**
 * Content-addressed evidence files (photos, snapshots): `<evidenceDir>/<first 2 hex>/<sha256>`.
 * Written once under their SHA-256 and never overwritten (domain.md: photos are evidence). Used by
 * the ledger writer for files that travel with a record, and by face enrolment for its photo.
 */
export function evidencePath(evidenceDir: string, sha256: string): string {
  return path.join(evidenceDir, sha256.slice(0, 2), sha256);
}

/** Writes each file once under its SHA-256 (never overwritten) and makes it durable (fsync file and directories). */
export function persistEvidence(evidenceDir: string, files: EvidenceFile[]): void {
  const dirs = new Set<string>();
  for (const f of files) {
    const final = evidencePath(evidenceDir, f.sha256);
    const dir = path.dirname(final);
    if (fs.existsSync(final)) continue;
    fs.mkdirSync(dir, { recursive: true });
    // pid + thread: the ledger writer thread and the main thread may write the same photo at once.
    const tmp = `${final}.${process.pid}.${threadId}.tmp`;
    const fd = fs.openSync(tmp, 'w', 0o640);
    try {
      fs.writeSync(fd, f.data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    try {
      fs.linkSync(tmp, final); // fails if it exists: the first copy stays, bytes are equal by hash
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    } finally {
      fs.unlinkSync(tmp);
    }
    dirs.add(dir);
  }
  for (const dir of dirs) fsyncDir(dir);
  if (dirs.size) fsyncDir(evidenceDir);
}

/** The bytes of an evidence file, or undefined when it is not there. */
export function readEvidence(evidenceDir: string, sha256: string): Buffer | undefined {
  try {
    return fs.readFileSync(evidencePath(evidenceDir, sha256));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try { fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
}
