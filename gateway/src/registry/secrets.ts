import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** A fresh random secret: 32 bytes, base64url. */
export function newSecret(bytes = 32): string {
  return crypto.randomBytes(bytes).toString('base64url');
}

/**
 * Device secrets are kept only as scrypt hashes (a slow, memory-hard KDF), so a copy of the data
 * directory does not hand out device credentials. Format: `scrypt$N$r$p$salt$hash` (base64url).
 */
export function hashSecret(secret: string, N = 16384): Promise<string> {
  const r = 8, p = 1;
  const salt = crypto.randomBytes(16);
  return new Promise((resolve, reject) => {
    crypto.scrypt(secret, salt, 32, { N, r, p, maxmem: 256 * N * r }, (err, key) => {
      if (err) reject(err);
      else resolve(`scrypt$${N}$${r}$${p}$${salt.toString('base64url')}$${key.toString('base64url')}`);
    });
  });
}

export function verifySecret(secret: string, stored: string): Promise<boolean> {
  const [alg, n, r, p, salt, hash] = stored.split('$');
  if (alg !== 'scrypt' || !salt || !hash) return Promise.resolve(false);
  const N = Number(n), R = Number(r), P = Number(p);
  const expected = Buffer.from(hash, 'base64url');
  return new Promise((resolve) => {
    crypto.scrypt(secret, Buffer.from(salt, 'base64url'), expected.length, { N, r: R, p: P, maxmem: 256 * N * R }, (err, key) => {
      resolve(!err && crypto.timingSafeEqual(key, expected));
    });
  });
}

/** API tokens are 32 random bytes: a plain SHA-256 is enough to look them up without storing them. */
export function tokenHash(token: string): string {
  return crypto.createHash('sha256').update(token).digest('hex');
}

/** Reads a key file under the data directory, creating it (mode 0600) on first use. */
export function installationKey(dataDir: string, name: string): Buffer {
  const dir = path.join(dataDir, 'keys');
  const file = path.join(dir, name);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  try {
    return Buffer.from(fs.readFileSync(file, 'utf8').trim(), 'base64');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const key = crypto.randomBytes(32);
  try {
    fs.writeFileSync(file, key.toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
    return key;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return Buffer.from(fs.readFileSync(file, 'utf8').trim(), 'base64');
    throw e;
  }
}

/**
 * Bank-card numbers (PIPL personal information) become a keyed hash with the installation key,
 * so equal cards give equal hashes without the number being recoverable, plus its last 4 digits.
 */
export function cardFingerprint(key: Buffer, card: string): { hash: string; last4: string } {
  const digits = card.replace(/\D/g, '');
  return { hash: crypto.createHmac('sha256', key).update(digits).digest('hex'), last4: digits.slice(-4) };
}
