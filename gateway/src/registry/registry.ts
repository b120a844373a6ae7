import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { DeviceKind, KeyRole, Role, SiteBody, SiteSettings, TokenScope, WorkerBody } from '../../../schemas/src/api.ts';
import { SitegateError } from '../errors.ts';
import { cardFingerprint, hashSecret, installationKey, newSecret, tokenHash, verifySecret } from './secrets.ts';
import type { Clock } from '../clock/clock.ts';
import { openStateDb } from '../state/stateDb.ts';
import type { SqlDb } from '../state/sqlDb.ts';
import type { SiteRegistry } from '../state/types.ts';
import { TokenBucket } from '../util/tokenBucket.ts';

export const DEFAULT_TIMEZONE = 'Asia/Shanghai';
export const DEFAULT_WORKDAYS = [1, 2, 3, 4, 5, 6];

export interface Site {
  siteId: string;
  name: string;
  regionCode: string;
  timezone: string;
  location?: { lat: number; lon: number };
  workdays: number[];
  holidays: string[];
  settings: SiteSettings;
}

export interface Worker {
  siteId: string;
  workerId: string;
  name: string;
  employer?: string;
  trade?: string;
  keyRole?: KeyRole;
  cardHash?: string;
  cardLast4?: string;
}

export interface Device {
  deviceId: string;
  siteId: string;
  kind: DeviceKind;
  intervalS?: number;
}

export interface Token {
  id: string;
  role: Role;
  scope?: TokenScope;
  expiresAt?: number;
  label?: string;
}


/**
 * Sites, workers, devices and API tokens, plus small operational state (sink cursors, dead
 * letters), in `state.db`. Read paths are served from memory; every change is written through.
 */
export class Registry implements SiteRegistry {
  readonly db: SqlDb;
  private readonly ownsDb: boolean;
  private readonly cardKey: Buffer;
  private readonly scryptN: number;
  private sites = new Map<string, Site>();
  private workers = new Map<string, Map<string, Worker>>();
  private devices = new Map<string, Device & { secretHash: string }>();
  /** deviceId → SHA-256 of the last secret that passed scrypt, so reconnect storms stay cheap. */
  private verified = new Map<string, string>();
  private tokensByHash = new Map<string, Token & { revoked: boolean }>();
  private readonly now: Clock;

  /**
   * Region mode (N instances on one database): `changed` is told after every write here, so the
   * other instances hear of it and `reload()`; a device or token not in memory is looked up in
   * the database before it is refused (created on another instance a moment ago).
   */
  private readonly shared?: { changed: () => void };
  /** Region mode: what the database did not have when last asked, and the lookups' budget (see `Misses`). */
  private readonly misses: Misses;

  /** `monotonic` (tests): the time the lookups' budget refills by; default performance.now. */
  constructor(dataDir: string, opts: { scryptN?: number; now: Clock; db?: SqlDb; shared?: { changed: () => void }; monotonic?: () => number }) {
    this.misses = new Misses(MISS_TTL_MS, 10_000, opts.monotonic);
    this.ownsDb = !opts.db;
    if (opts.shared) this.shared = opts.shared;
    this.db = opts.db ?? openStateDb(dataDir);
    this.cardKey = installationKey(dataDir, 'card-hmac.key');
    this.scryptN = opts.scryptN ?? 16384;
    this.now = opts.now;
    this.load();
  }

  /** Region mode: ids refused without a database lookup because lookups were over their budget. */
  get shedLookups(): number {
    return this.misses.shed;
  }

  /**
   * Reads everything again (region mode: another instance changed the registry). A device whose
   * secret changed there must prove the new one here too: its remembered verification goes.
   */
  reload(): void {
    this.misses.clear();
    const before = this.devices;
    this.sites = new Map();
    this.workers = new Map();
    this.devices = new Map();
    this.tokensByHash = new Map();
    this.load();
    for (const id of [...this.verified.keys()]) if (this.devices.get(id)?.secretHash !== before.get(id)?.secretHash) this.verified.delete(id);
  }

  private load(): void {
    for (const r of this.db.prepare('SELECT doc FROM sites').all() as { doc: string }[]) {
      const s = JSON.parse(r.doc) as Site;
      this.sites.set(s.siteId, s);
    }
    for (const r of this.db.prepare('SELECT doc FROM workers').all() as { doc: string }[]) {
      const w = JSON.parse(r.doc) as Worker;
      this.workerMap(w.siteId).set(w.workerId, w);
    }
    for (const r of this.db.prepare('SELECT * FROM devices').all() as Record<string, unknown>[]) this.keepDevice(r);
    for (const r of this.db.prepare('SELECT * FROM tokens').all() as Record<string, unknown>[]) this.keepToken(r);
  }

  private keepDevice(r: Record<string, unknown>): Device & { secretHash: string } {
    const d = {
      deviceId: r.device_id as string, siteId: r.site_id as string, kind: r.kind as DeviceKind,
      intervalS: (r.interval_s as number | null) ?? undefined, secretHash: r.secret_hash as string,
    };
    this.devices.set(d.deviceId, d);
    return d;
  }

  private keepToken(r: Record<string, unknown>): Token & { revoked: boolean } {
    const t = {
      id: r.id as string, role: r.role as Role, scope: r.scope ? JSON.parse(r.scope as string) : undefined,
      expiresAt: (r.expires_at as number | null) ?? undefined, label: (r.label as string | null) ?? undefined,
      revoked: r.revoked_at !== null,
    };
    this.tokensByHash.set(r.hash as string, t);
    return t;
  }

  /** A device as remembered, or (region mode) as the database has it now. */
  private deviceRow(deviceId: string): (Device & { secretHash: string }) | undefined {
    const d = this.devices.get(deviceId);
    if (d || !this.shared) return d;
    const r = this.misses.lookUp(`device:${deviceId}`, () => this.db.prepare('SELECT * FROM devices WHERE device_id = ?').get(deviceId) as Record<string, unknown> | undefined);
    return r && this.keepDevice(r);
  }

  private workerMap(siteId: string): Map<string, Worker> {
    let m = this.workers.get(siteId);
    if (!m) this.workers.set(siteId, (m = new Map()));
    return m;
  }

  // — sites —
  putSite(siteId: string, body: SiteBody): { site: Site; created: boolean } {
    const created = !this.sites.has(siteId);
    const site: Site = {
      siteId, name: body.name, regionCode: body.regionCode, timezone: body.timezone ?? DEFAULT_TIMEZONE,
      ...(body.location ? { location: body.location } : {}),
      workdays: body.workdays ?? DEFAULT_WORKDAYS, holidays: body.holidays ?? [], settings: body.settings ?? {},
    };
    this.db.prepare('INSERT INTO sites (site_id, doc, updated_at) VALUES (?, ?, ?) ON CONFLICT(site_id) DO UPDATE SET doc = excluded.doc, updated_at = excluded.updated_at')
      .run(siteId, JSON.stringify(site), this.now());
    this.sites.set(siteId, site);
    this.shared?.changed();
    return { site, created };
  }

  site(siteId: string): Site | undefined {
    const site = this.sites.get(siteId);
    if (site || !this.shared) return site;
    const r = this.misses.lookUp(`site:${siteId}`, () => this.db.prepare('SELECT doc FROM sites WHERE site_id = ?').get(siteId) as { doc: string } | undefined);
    if (!r) return undefined;
    const fresh = JSON.parse(r.doc) as Site;
    this.sites.set(siteId, fresh);
    return fresh;
  }

  listSites(): Site[] {
    return [...this.sites.values()];
  }

  // — workers —
  putWorker(siteId: string, workerId: string, body: WorkerBody): { worker: Worker; created: boolean; sharedWith: string[] } {
    const existing = this.workerMap(siteId).get(workerId);
    const card = body.wageCard ? cardFingerprint(this.cardKey, body.wageCard) : undefined;
    const worker: Worker = {
      siteId, workerId, name: body.name,
      ...(body.employer !== undefined ? { employer: body.employer } : {}),
      ...(body.trade !== undefined ? { trade: body.trade } : {}),
      ...(body.keyRole ? { keyRole: body.keyRole } : {}),
      // A PUT without wageCard keeps the card already registered (the number is not re-sent).
      ...(card ? { cardHash: card.hash, cardLast4: card.last4 } : existing?.cardHash ? { cardHash: existing.cardHash, cardLast4: existing.cardLast4 } : {}),
    };
    this.db.prepare(`INSERT INTO workers (site_id, worker_id, doc, card_hash, updated_at) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT(site_id, worker_id) DO UPDATE SET doc = excluded.doc, card_hash = excluded.card_hash, updated_at = excluded.updated_at`)
      .run(siteId, workerId, JSON.stringify(worker), worker.cardHash ?? null, this.now());
    this.workerMap(siteId).set(workerId, worker);
    this.shared?.changed();
    const sharedWith = worker.cardHash ? this.workersByCard(worker.cardHash).filter((w) => !(w.siteId === siteId && w.workerId === workerId)).map((w) => w.workerId) : [];
    return { worker, created: !existing, sharedWith };
  }

  worker(siteId: string, workerId: string): Worker | undefined {
    return this.workers.get(siteId)?.get(workerId);
  }

  listWorkers(siteId: string): Worker[] {
    return [...(this.workers.get(siteId)?.values() ?? [])];
  }

  workersByCard(cardHash: string): Worker[] {
    const out: Worker[] = [];
    for (const m of this.workers.values()) for (const w of m.values()) if (w.cardHash === cardHash) out.push(w);
    return out;
  }

  cardFingerprint(card: string): { hash: string; last4: string } {
    return cardFingerprint(this.cardKey, card);
  }

  // — devices —
  async putDevice(siteId: string, deviceId: string, body: { kind: DeviceKind; intervalS?: number }, scryptN?: number): Promise<{ device: Device; secret?: string }> {
    const existing = this.deviceRow(deviceId);
    if (existing && existing.siteId !== siteId) {
      throw new SitegateError('conflict', `device ${deviceId} is registered under another site`);
    }
    const secret = existing ? undefined : newSecret();
    const secretHash = existing ? existing.secretHash : await hashSecret(secret!, scryptN ?? this.scryptN);
    const device = { deviceId, siteId, kind: body.kind, ...(body.intervalS ? { intervalS: body.intervalS } : {}) };
    // Re-check after the await: another request may have claimed the id meanwhile.
    const raced = this.devices.get(deviceId);
    if (!existing && raced) throw new SitegateError('conflict', `device ${deviceId} already exists`);
    this.db.prepare(`INSERT INTO devices (device_id, site_id, kind, interval_s, secret_hash, updated_at) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT(device_id) DO UPDATE SET kind = excluded.kind, interval_s = excluded.interval_s, updated_at = excluded.updated_at`)
      .run(deviceId, siteId, body.kind, body.intervalS ?? null, secretHash, this.now());
    this.devices.set(deviceId, { ...device, secretHash });
    this.shared?.changed();
    return { device, ...(secret ? { secret } : {}) };
  }

  async rotateSecret(deviceId: string): Promise<string> {
    const d = this.deviceRow(deviceId);
    if (!d) throw new SitegateError('not_found', `no device ${deviceId}`);
    const secret = newSecret();
    const secretHash = await hashSecret(secret, this.scryptN);
    this.db.prepare('UPDATE devices SET secret_hash = ?, updated_at = ? WHERE device_id = ?').run(secretHash, this.now(), deviceId);
    d.secretHash = secretHash;
    this.verified.delete(deviceId);
    this.shared?.changed();
    return secret;
  }

  device(deviceId: string): Device | undefined {
    const d = this.deviceRow(deviceId);
    if (!d) return undefined;
    const { secretHash: _h, ...device } = d;
    return device;
  }

  listDevices(siteId: string): Device[] {
    return [...this.devices.values()].filter((d) => d.siteId === siteId).map(({ secretHash: _h, ...d }) => d);
  }

  async verifyDevice(deviceId: string, secret: string): Promise<Device | null> {
    const d = this.deviceRow(deviceId);
    if (!d) return null;
    const quick = crypto.createHash('sha256').update(secret).digest('hex');
    if (this.verified.get(deviceId) === quick) return this.device(deviceId)!;
    const hashAtStart = d.secretHash;
    if (!(await verifySecret(secret, hashAtStart))) return null;
    if (d.secretHash !== hashAtStart) return null; // rotated while we were hashing
    this.verified.set(deviceId, quick);
    return this.device(deviceId)!;
  }

  // — tokens —
  createToken(t: { role: Role; scope?: TokenScope; expiresAt?: number; label?: string }, fixed?: { id: string; token: string }): { id: string; token: string } {
    const token = fixed?.token ?? `sg_${newSecret()}`;
    const id = fixed?.id ?? `tok_${crypto.randomBytes(8).toString('hex')}`;
    const hash = tokenHash(token);
    this.db.prepare(`INSERT INTO tokens (id, hash, role, scope, label, expires_at, revoked_at, created_at) VALUES (?, ?, ?, ?, ?, ?, NULL, ?)
      ON CONFLICT(id) DO UPDATE SET hash = excluded.hash, role = excluded.role, scope = excluded.scope, revoked_at = NULL`)
      .run(id, hash, t.role, t.scope ? JSON.stringify(t.scope) : null, t.label ?? null, t.expiresAt ?? null, this.now());
    for (const [h, v] of this.tokensByHash) if (v.id === id) this.tokensByHash.delete(h);
    this.tokensByHash.set(hash, { id, role: t.role, ...(t.scope ? { scope: t.scope } : {}), ...(t.expiresAt ? { expiresAt: t.expiresAt } : {}), ...(t.label ? { label: t.label } : {}), revoked: false });
    this.shared?.changed();
    return { id, token };
  }

  revokeToken(id: string): boolean {
    const res = this.db.prepare('UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(this.now(), id);
    for (const v of this.tokensByHash.values()) if (v.id === id) v.revoked = true;
    this.shared?.changed();
    return res.changes > 0;
  }

  hasToken(id: string): boolean {
    for (const v of this.tokensByHash.values()) if (v.id === id) return true;
    return false;
  }

  authenticateToken(token: string): Token | null {
    const hash = tokenHash(token);
    let t = this.tokensByHash.get(hash);
    if (!t && this.shared) {
      const r = this.misses.lookUp(`token:${hash}`, () => this.db.prepare('SELECT * FROM tokens WHERE hash = ?').get(hash) as Record<string, unknown> | undefined);
      if (r) t = this.keepToken(r);
    }
    if (!t || t.revoked) return null;
    if (t.expiresAt !== undefined && t.expiresAt <= this.now()) return null;
    const { revoked: _r, ...info } = t;
    return info;
  }

  /** Closes state.db when the registry opened it (tests); the app closes the one it handed in. */
  close(): void {
    if (this.ownsDb) this.db.close();
  }
}

/** How long a miss is remembered when no reload says otherwise first. */
const MISS_TTL_MS = 5_000;
/** Database lookups of ids not in memory: at most this many a second, after a burst of LOOKUP_BURST. */
const LOOKUPS_PER_S = 50;
const LOOKUP_BURST = 200;

/**
 * Region mode: ids (device, site, token hash) the database did not have when last asked, for a
 * few seconds. A client repeating an unknown id then costs one lookup — a blocking round trip on
 * the event loop with PostgreSQL — and not one per attempt. Every `reload()` (another instance
 * changed the registry) forgets them, so a device registered elsewhere is known here as soon as
 * that instance's notice arrives; the TTL bounds it if a notice is lost. Bounded: emptied at
 * 10,000 ids.
 *
 * A flood of *different* unknown ids (a scan, a misconfigured fleet) would still cost a lookup
 * each, so lookups have a budget: beyond LOOKUPS_PER_S (after a burst of LOOKUP_BURST) an id not in
 * memory is refused without asking, and counted (`shed`, sitegate_registry_lookups_shed_total). What
 * another instance registers still arrives here by its notice, budget or not: the lookup only
 * covers the moment between that registration and the notice.
 *
 * Monotonic time, not the injected wall clock: this is about load, not the calendar.
 */
class Misses {
  private readonly until = new Map<string, number>();
  private readonly budget: TokenBucket;
  /** Ids refused without a lookup because lookups were over their budget. */
  shed = 0;

  constructor(private readonly ttlMs = MISS_TTL_MS, private readonly max = 10_000, private readonly mono: () => number = () => performance.now()) {
    this.budget = new TokenBucket(LOOKUP_BURST, mono());
  }

  /**
   * `find()` from the database, unless `key` was missing a moment ago or lookups are over their
   * budget; a miss is remembered.
   */
  lookUp<T>(key: string, find: () => T | undefined): T | undefined {
    if (this.has(key)) return undefined;
    if (this.budget.refill(this.mono(), LOOKUPS_PER_S, LOOKUP_BURST) < 1) {
      this.shed++;
      return undefined;
    }
    this.budget.tokens -= 1;
    const found = find();
    if (found === undefined) this.add(key);
    return found;
  }

  private has(key: string): boolean {
    const t = this.until.get(key);
    if (t === undefined) return false;
    if (t > this.mono()) return true;
    this.until.delete(key);
    return false;
  }

  private add(key: string): void {
    if (this.until.size >= this.max) this.until.clear();
    this.until.set(key, this.mono() + this.ttlMs);
  }

  clear(): void {
    this.until.clear();
  }
}
