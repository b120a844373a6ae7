import { afterEach, beforeEach, expect, it } from 'vitest';
import type { AlertEvent } from '../alerts/alertRecord.ts';
import type { RaiseSignal } from '../checks/types.ts';
import type { Clock } from '../clock/clock.ts';
import type { StateStore } from './types.ts';

/**
 * The contract every state store passes (the idea of aedes-persistence's abstract suite;
 * style.md "Abstract suites"). The gateway relies on exactly these promises: storage opens at the
 * latest schema version; an alert is raised once per condition, withdrawn when exclusive facts no
 * longer support it, cleared when it ends; alert events go out only after the commit and never
 * after a rollback; one transaction spans every store; the audit chain verifies and a changed
 * entry breaks it; progress, sink cursors, dead letters and the registry survive a restart; no
 * secret (token, device secret, card number) is stored in the clear.
 *
 * Every call outside a transaction is awaited, so an implementation answering with promises is
 * held to the same suite. Transaction bodies are synchronous, as the gateway's are today
 * (state/README.md says what an asynchronous engine settles there).
 */
export interface StateHarness {
  /** A store on fresh, empty storage, stamping time with `now`. */
  open(now: Clock): Promise<StateStore>;
  /** The same storage opened again (a restart), after the suite closed the previous store. */
  reopen(now: Clock): Promise<StateStore>;
  /** The schema version the storage is at, and the latest one this engine's migrations know. */
  schemaVersion(): Promise<{ current: number; latest: number }>;
  /** Changes the stored data of one audit entry behind the store's back (someone with database access). */
  tamperAuditEntry(seq: number): Promise<void>;
  /** Everything the storage holds, as text: secrets must not be in it. */
  storedText(): Promise<string>;
  teardown(): Promise<void>;
}

const T0 = Date.parse('2026-09-01T02:00:00Z');
const raise = (over: Partial<RaiseSignal> = {}): RaiseSignal => ({
  type: 'raise', kind: 'hazard.threshold', siteId: 'S1', subject: { deviceId: 'D1', metric: 'pm10' },
  key: 'hazard.threshold:D1:pm10:dust-mean', severity: 'warning', openedAt: T0, message: 'pm10 1-h mean 162 > 150', evidence: { mean: 162 }, ...over,
});
const site = { name: 'Riverside tower', regionCode: '330106' };

export function stateContract(name: string, makeHarness: () => Promise<StateHarness>): void {
  let h: StateHarness;
  let store: StateStore;
  let t: number;
  const now: Clock = () => t;
  let events: AlertEvent[];
  const listen = (s: StateStore) => s.alerts.onEvent((e) => events.push(e));
  /** A restart: the store closed, the same storage opened again. */
  const restart = async () => {
    await store.close();
    store = await h.reopen(now);
    listen(store);
  };

  beforeEach(async () => {
    t = T0 + 60_000;
    events = [];
    h = await makeHarness();
    store = await h.open(now);
    listen(store);
  });
  afterEach(async () => {
    await store.close();
    await h.teardown();
  });

  it(`${name}: opens at the latest schema version, fresh and after a restart`, async () => {
    const v = await h.schemaVersion();
    expect(v.latest).toBeGreaterThan(0);
    expect(v.current).toBe(v.latest);
    await restart();
    expect(await h.schemaVersion()).toEqual(v);
  });

  it(`${name}: reconcile raises a condition exactly once, whatever its state since; exclusive facts withdraw what they no longer support`, async () => {
    const { alerts } = store;
    const a = (await alerts.reconcile(raise().key, raise(), { exclusive: false }))!;
    expect((await alerts.reconcile(raise().key, raise(), { exclusive: false }))!.id).toBe(a.id); // a replay: on record
    await alerts.handle(a.id, 'resolve', 'inspector');
    expect((await alerts.reconcile(raise().key, raise(), { exclusive: false }))!.id).toBe(a.id); // resolved by a person: not raised again
    // Not exclusive: a later occurrence under the same key is a new alert; the first stands.
    const later = (await alerts.reconcile(raise().key, raise({ openedAt: T0 + 7_200_000 }), { exclusive: false }))!;
    expect(later.id).not.toBe(a.id);
    expect((await alerts.get(a.id))!.withdrawn).toBe(false);
    // Exclusive: the facts now place the condition elsewhere → the one on record is withdrawn, the new one raised.
    const key = 'keystaff.absent:S1:W1:2026-09-01';
    const absent = (openedAt: number): RaiseSignal => raise({ kind: 'keystaff.absent', key, subject: { workerId: 'W1' }, openedAt });
    const first = (await alerts.reconcile(key, absent(T0), { exclusive: true }))!;
    const moved = (await alerts.reconcile(key, absent(T0 + 60_000), { exclusive: true }))!;
    expect(moved.id).not.toBe(first.id);
    expect(await alerts.get(first.id)).toMatchObject({ withdrawn: true, state: 'cleared' });
    // …and facts that support nothing withdraw the last one.
    expect(await alerts.reconcile(key, null, { exclusive: true, reason: 'checked in after all' })).toBeUndefined();
    expect((await alerts.get(moved.id))!.withdrawn).toBe(true);
    expect(events.filter((e) => e.alert.key === key).map((e) => e.type)).toEqual(['opened', 'withdrawn', 'opened', 'withdrawn']);
    await expect(async () => alerts.reconcile('other', raise(), { exclusive: false })).rejects.toThrow(/given a signal for/);
  });

  it(`${name}: a restart replaying the same facts raises nothing again, an alert people resolved included`, async () => {
    const a = (await store.alerts.reconcile(raise().key, raise(), { exclusive: false }))!;
    const b = (await store.alerts.reconcile('k-resolved', raise({ key: 'k-resolved' }), { exclusive: false }))!;
    await store.alerts.handle(b.id, 'resolve', 'inspector');
    await restart();
    expect((await store.alerts.reconcile(raise().key, raise(), { exclusive: false }))!.id).toBe(a.id);
    expect((await store.alerts.reconcile('k-resolved', raise({ key: 'k-resolved' }), { exclusive: false }))!.id).toBe(b.id);
    expect((await store.alerts.active(raise().key))!.id).toBe(a.id);
    expect(await store.alerts.active('k-resolved')).toBeUndefined();
    expect(events.map((e) => e.type)).toEqual(['opened', 'opened', 'resolved']);
  });

  it(`${name}: clears when the condition ends, once; the next occurrence opens a new alert`, async () => {
    const { alerts } = store;
    const a = (await alerts.apply(raise()))!;
    const clear = { type: 'clear', kind: 'hazard.threshold', siteId: 'S1', key: a.key, at: T0 + 3_600_000 } as const;
    await alerts.apply(clear);
    expect((await alerts.get(a.id))!.state).toBe('cleared');
    expect(await alerts.active(a.key)).toBeUndefined();
    expect(await alerts.apply(clear)).toBeUndefined(); // nothing open: nothing to clear
    const b = (await alerts.apply(raise({ openedAt: T0 + 7_200_000 })))!;
    expect(b.id).not.toBe(a.id);
    expect(events.map((e) => e.type)).toEqual(['opened', 'cleared', 'opened']);
  });

  it(`${name}: tells listeners only after the commit: nothing from a transaction that rolls back, everything once one commits`, async () => {
    const { alerts } = store;
    await expect(async () => store.transaction(() => {
      alerts.apply(raise());
      expect(events).toEqual([]); // not yet: the transaction is open
      throw new Error('the cursor write failed');
    })).rejects.toThrow('the cursor write failed');
    expect(events).toEqual([]);
    expect((await alerts.list({ limit: 10 })).items).toEqual([]); // and the alert itself rolled back with it
    const opened = await store.transaction(() => {
      const a = alerts.apply(raise())!;
      // A nested part that fails takes only its own event with it.
      expect(() => store.transaction(() => { alerts.apply({ type: 'clear', kind: 'hazard.threshold', siteId: 'S1', key: a.key, at: T0 + 1 }); throw new Error('inner'); })).toThrow('inner');
      expect(events).toEqual([]);
      return a;
    });
    expect(events.map((e) => [e.type, e.alert.id])).toEqual([['opened', opened.id]]);
    expect((await alerts.list({ limit: 10 })).items.map((a) => a.state)).toEqual(['open']);
  });

  it(`${name}: one transaction spans every store: a rollback takes back the alert, its audit entry, progress and the sink cursor together`, async () => {
    const progress = store.progress('keystaff');
    await progress.set('cursor', 10);
    await store.sinkState.saveCursor('influx', 10, t);
    const head = await store.audit.head();
    await expect(async () => store.transaction(() => {
      store.alerts.apply(raise());
      progress.set('cursor', 20);
      progress.set('site:S1', 5);
      progress.remove('cursor');
      store.sinkState.saveCursor('influx', 20, t);
      throw new Error('crash before the commit');
    })).rejects.toThrow(/crash/);
    expect(await progress.get('cursor')).toBe(10);
    expect(await progress.all()).toEqual(new Map([['cursor', 10]]));
    expect(await store.sinkState.cursor('influx')).toBe(10);
    expect(await store.audit.head()).toEqual(head);
    expect(await store.alerts.active(raise().key)).toBeUndefined();
    await store.transaction(() => {
      store.alerts.apply(raise());
      progress.set('cursor', 20);
    });
    expect(await progress.get('cursor')).toBe(20);
    expect(events.map((e) => e.type)).toEqual(['opened']);
  });

  it(`${name}: takes escalation limits from the site settings in the registry`, async () => {
    await store.registry.putSite('S1', { ...site, settings: { escalationS: { warning: [60, 120] } } });
    const a = (await store.alerts.apply(raise()))!;
    t += 59_000;
    expect(await store.alerts.escalateDue(t)).toEqual([]);
    t += 2_000;
    expect((await store.alerts.escalateDue(t)).map((x) => [x.id, x.level])).toEqual([[a.id, 2]]);
  });

  it(`${name}: records every transition in a hash chain that verifies across a restart and detects an edited entry`, async () => {
    const { alerts } = store;
    const a = (await alerts.apply(raise()))!;
    await alerts.handle(a.id, 'ack', 'u1');
    await alerts.handle(a.id, 'resolve', 'u1', { note: 'done' });
    expect(await store.audit.verify()).toMatchObject({ ok: true, entries: 3 });
    expect((await store.audit.bySubject(`alert:${a.id}`)).map((e) => e.type)).toEqual(['alert.opened', 'alert.acked', 'alert.resolved']);
    expect((await store.audit.after(1, 'alert.')).map((e) => e.seq)).toEqual([2, 3]);
    await restart();
    const entry = await store.audit.append('face.enrolled', 'worker:S1/W1', { modelId: 'm1' }, t);
    expect(entry).toMatchObject({ seq: 4, prevHash: (await store.audit.bySubject(`alert:${a.id}`))[2]!.hash });
    expect(await store.audit.head()).toEqual({ seq: 4, hash: entry.hash });
    expect(await store.audit.verify()).toMatchObject({ ok: true, entries: 4, head: entry.hash });
    await h.tamperAuditEntry(2);
    expect(await store.audit.verify()).toMatchObject({ ok: false, brokenAt: 2 });
  });

  it(`${name}: progress is kept per consumer and scope, and survives a restart`, async () => {
    const p = store.progress('keystaff');
    await p.set('cursor', 42);
    await p.set('site:S1', T0);
    await p.set('site:S1', T0 + 1); // an upsert, not a second row
    await p.set('dirty:S1:202609', 1);
    await store.progress('linkage').set('cursor', 7);
    await p.remove('dirty:S1:202609');
    await p.remove('never-set');
    await restart();
    expect(await store.progress('keystaff').all()).toEqual(new Map([['cursor', 42], ['site:S1', T0 + 1]]));
    expect(await store.progress('keystaff').get('dirty:S1:202609')).toBeUndefined();
    expect(await store.progress('linkage').get('cursor')).toBe(7);
    expect(await store.progress('nobody').all()).toEqual(new Map());
  });

  it(`${name}: sink cursors and dead letters survive a restart; a refused record is kept once`, async () => {
    const s = store.sinkState;
    expect(await s.cursor('influx')).toBe(0);
    await s.saveCursor('influx', 120, t);
    await s.saveCursor('influx', 150, t);
    await s.saveCursor('webhook', 3, t);
    expect(await s.addDeadLetter('influx', 101, 'bad line 1', 'field type conflict', t)).toBe(true);
    expect(await s.addDeadLetter('influx', 101, 'bad line 1', 'field type conflict', t + 1)).toBe(false); // a retried batch
    expect(await s.addDeadLetter('influx', 140, 'bad line 2', 'invalid number', t + 2)).toBe(true);
    expect(await s.addDeadLetter('webhook', 101, 'other sink', 'refused', t + 3)).toBe(true);
    await restart();
    const after = store.sinkState;
    expect([await after.cursor('influx'), await after.cursor('webhook'), await after.cursor('new')]).toEqual([150, 3, 0]);
    expect([await after.deadLetterCount('influx'), await after.deadLetterCount('webhook')]).toEqual([2, 1]);
    const newest = await after.deadLetters(2);
    expect(newest.map((d) => [d.sink, d.seq])).toEqual([['webhook', 101], ['influx', 140]]);
    expect(newest[1]).toMatchObject({ line: 'bad line 2', error: 'invalid number', at: t + 2 });
  });

  it(`${name}: the registry keeps sites, workers and devices across a restart, and a device id once across sites`, async () => {
    const r = store.registry;
    expect(await r.putSite('S1', site)).toMatchObject({ created: true, site: { siteId: 'S1', timezone: 'Asia/Shanghai' } });
    expect((await r.putSite('S1', { ...site, timezone: 'Asia/Urumqi' })).created).toBe(false);
    await r.putSite('S2', { name: 'Harbour depot', regionCode: '330206' });
    expect((await r.putWorker('S1', 'W1', { name: 'Li Wei', keyRole: 'safety_officer' })).created).toBe(true);
    await r.putWorker('S1', 'W2', { name: 'Zhang Min', trade: 'rebar' });
    const { device, secret } = await r.putDevice('S1', 'D1', { kind: 'sensor', intervalS: 60 });
    expect(device).toEqual({ deviceId: 'D1', siteId: 'S1', kind: 'sensor', intervalS: 60 });
    expect(secret).toBeTruthy();
    expect((await r.putDevice('S1', 'D1', { kind: 'sensor', intervalS: 30 })).secret).toBeUndefined(); // shown once
    await expect(r.putDevice('S2', 'D1', { kind: 'camera' })).rejects.toMatchObject({ code: 'conflict' });
    await restart();
    const back = store.registry;
    expect(await back.site('S1')).toMatchObject({ name: 'Riverside tower', timezone: 'Asia/Urumqi', regionCode: '330106' });
    expect((await back.listSites()).map((s) => s.siteId).sort()).toEqual(['S1', 'S2']);
    expect(await back.worker('S1', 'W1')).toMatchObject({ name: 'Li Wei', keyRole: 'safety_officer' });
    expect((await back.listWorkers('S1')).map((w) => w.workerId).sort()).toEqual(['W1', 'W2']);
    expect(await back.listWorkers('S2')).toEqual([]);
    expect(await back.device('D1')).toEqual({ deviceId: 'D1', siteId: 'S1', kind: 'sensor', intervalS: 30 });
    expect(await back.listDevices('S2')).toEqual([]);
    expect(await back.verifyDevice('D1', secret!)).toMatchObject({ deviceId: 'D1' });
    expect(await back.verifyDevice('D1', `${secret}x`)).toBeNull();
    const rotated = await back.rotateSecret('D1');
    expect(await back.verifyDevice('D1', secret!)).toBeNull();
    expect(await back.verifyDevice('D1', rotated)).toMatchObject({ deviceId: 'D1' });
  });

  it(`${name}: tokens authenticate until revoked or expired, across a restart`, async () => {
    const r = store.registry;
    const reg = await r.createToken({ role: 'regulator', scope: { regions: ['3301'] }, label: 'district office' });
    const short = await r.createToken({ role: 'auditor', scope: { sites: ['S1'] }, expiresAt: t + 60_000 });
    const gone = await r.createToken({ role: 'payroll', scope: { sites: ['S1'] } });
    expect(await r.revokeToken(gone.id)).toBe(true);
    expect(await r.revokeToken(gone.id)).toBe(false);
    await restart();
    const back = store.registry;
    expect(await back.authenticateToken(reg.token)).toEqual({ id: reg.id, role: 'regulator', scope: { regions: ['3301'] }, label: 'district office' });
    expect(await back.authenticateToken(short.token)).toMatchObject({ id: short.id, role: 'auditor' });
    expect(await back.authenticateToken(gone.token)).toBeNull();
    expect(await back.hasToken(gone.id)).toBe(true);
    expect(await back.authenticateToken(`${reg.token}x`)).toBeNull();
    t += 60_000;
    expect(await back.authenticateToken(short.token)).toBeNull(); // expired
    // A fixed token (SITEGATE_ADMIN_TOKEN) under the same id replaces the one before it.
    await back.createToken({ role: 'admin' }, { id: 'admin-env', token: 'sg_first-admin-token-value' });
    await back.createToken({ role: 'admin' }, { id: 'admin-env', token: 'sg_second-admin-token-value' });
    expect(await back.authenticateToken('sg_first-admin-token-value')).toBeNull();
    expect(await back.authenticateToken('sg_second-admin-token-value')).toMatchObject({ id: 'admin-env', role: 'admin' });
  });

  it(`${name}: keeps tokens, device secrets and card numbers only as hashes; equal cards hash equal after a restart`, async () => {
    const r = store.registry;
    const card = '6222021234567890123';
    const { token } = await r.createToken({ role: 'admin' });
    const { secret } = await r.putDevice('S1', 'D1', { kind: 'face_terminal' });
    const { worker } = await r.putWorker('S1', 'W1', { name: 'Li Wei', wageCard: card });
    expect(worker).toMatchObject({ cardLast4: '0123', cardHash: expect.stringMatching(/^[0-9a-f]{64}$/) });
    const text = await h.storedText();
    expect(text).toContain('Li Wei'); // the dump does hold what was stored…
    for (const plain of [token, secret!, card]) expect(text).not.toContain(plain); // …but no secret in the clear
    await restart();
    const shared = await store.registry.putWorker('S1', 'W2', { name: 'Zhang Min', wageCard: card });
    expect(shared.worker.cardHash).toBe(worker.cardHash);
    expect(shared.sharedWith).toEqual(['W1']); // contract §2: reported as wage.shared_card
    expect(await store.registry.cardFingerprint(card)).toEqual({ hash: worker.cardHash, last4: '0123' });
    // A PUT without the card keeps the one registered.
    await store.registry.putWorker('S1', 'W1', { name: 'Li Wei', trade: 'crane operator' });
    expect(await store.registry.worker('S1', 'W1')).toMatchObject({ cardHash: worker.cardHash, cardLast4: '0123', trade: 'crane operator' });
  });
}
