import type Database from 'better-sqlite3';
import { openStateDb } from '../state/stateDb.ts';
import { beforeEach, describe, expect, it } from 'vitest';
import { AuditTrail } from '../audit/auditTrail.ts';
import type { RaiseSignal } from '../checks/types.ts';
import { AlertStore, type AlertEvent } from './alertStore.ts';

const T0 = Date.parse('2026-09-01T02:00:00Z');
const raise = (over: Partial<RaiseSignal> = {}): RaiseSignal => ({
  type: 'raise', kind: 'hazard.threshold', siteId: 'S1', subject: { deviceId: 'D1', metric: 'pm10' },
  key: 'hazard.threshold:D1:pm10:dust-mean', severity: 'warning', openedAt: T0, message: 'pm10 1-h mean 162 > 150', evidence: { mean: 162 }, ...over,
});

// Lifecycle promises any engine must keep (raise once, clear, withdraw on exclusive facts, events
// after the commit, the audit chain) are in state/stateContract.ts; these are the SQLite store's own.
describe('alert store (contract §5 lifecycle) on a real SQLite database', () => {
  let db: Database.Database;
  let now: number;
  let store: AlertStore;
  let audit: AuditTrail;
  let events: AlertEvent[];

  beforeEach(() => {
    db = openStateDb(':memory:');
    now = T0 + 60_000;
    audit = new AuditTrail(db);
    store = new AlertStore({ db, audit, now: () => now });
    events = [];
    store.onEvent((e) => events.push(e));
  });

  it('keeps one alert per key while open; severity rises in place, never falls', () => {
    const a = store.apply(raise())!;
    expect(store.apply(raise({ openedAt: T0 + 1000 }))!.id).toBe(a.id);
    const up = store.apply(raise({ severity: 'critical', message: 'pm10 1-h mean 230 > 200' }))!;
    expect(up).toMatchObject({ id: a.id, severity: 'critical', level: 1, state: 'open', openedAt: T0 });
    expect(store.apply(raise({ severity: 'warning' }))!.severity).toBe('critical');
    expect(events.map((e) => e.type)).toEqual(['opened', 'severity']);
  });

  it('refuses to change an alert inside a transaction that did not go through Transactions.run', () => {
    expect(() => db.transaction(() => store.apply(raise()))()).toThrow(/not opened through Transactions.run/);
    expect(events).toEqual([]);
    expect(store.list({ limit: 10 }).items).toEqual([]);
  });

  it('withdraws an alert that late data disproved, hides it from lists, keeps it in the trail', () => {
    const a = store.apply(raise())!;
    store.apply({ type: 'clear', kind: 'hazard.threshold', siteId: 'S1', key: a.key, at: T0, retracts: T0 });
    expect(store.get(a.id)).toMatchObject({ state: 'cleared', withdrawn: true });
    expect(store.list({ limit: 10 }).items).toHaveLength(0);
    expect(store.list({ limit: 10, includeWithdrawn: true }).items).toHaveLength(1);
    expect(store.history(a.id).map((h) => h.event)).toEqual(['opened', 'withdrawn']);
  });

  it('escalates an unacknowledged alert one level per limit (critical: 30 min, then 2 h), and stops when acknowledged', () => {
    const crit = store.apply(raise({ severity: 'critical', key: 'k-crit' }))!;
    const warn = store.apply(raise({ key: 'k-warn' }))!;
    now += 29 * 60_000;
    expect(store.escalateDue()).toHaveLength(0);
    now += 2 * 60_000;
    expect(store.escalateDue().map((a) => a.id)).toEqual([crit.id]);
    now += 2 * 3_600_000;
    expect(store.escalateDue().map((a) => a.level)).toEqual([3]);
    now += 10 * 3_600_000;
    expect(store.escalateDue()).toHaveLength(0); // level 3 is the top
    store.ack(warn.id, 'tok_safety', 'crew sent to wet the haul road');
    now += 6 * 86_400_000;
    expect(store.escalateDue()).toHaveLength(0); // acknowledged: no escalation before its rectification deadline
    expect(store.get(crit.id)!.level).toBe(3);
    const h = store.history(warn.id);
    expect(h[1]).toMatchObject({ event: 'acked', by: 'tok_safety', note: 'crew sent to wet the haul road' });
  });

  it('takes escalation limits from the site settings', () => {
    store = new AlertStore({ db, audit, now: () => now, escalationFor: () => ({ warning: [60, 120] }) });
    const a = store.apply(raise({ key: 'k-site' }))!;
    now += 61_000;
    expect(store.escalateDue().map((x) => x.id)).toEqual([a.id]);
  });

  it('lets people ack and resolve, refusing transitions that make no sense', () => {
    const a = store.apply(raise())!;
    expect(() => store.resolve('nope', 'x')).toThrow(/no alert/);
    store.ack(a.id, 'u1');
    expect(() => store.ack(a.id, 'u1')).toThrow(/acked/);
    store.resolve(a.id, 'u2', 'fixed');
    expect(() => store.resolve(a.id, 'u2')).toThrow(/is resolved/);
    expect(store.get(a.id)!.state).toBe('resolved');
    // Resolved: the same key opens a new alert next time.
    expect(store.apply(raise())!.id).not.toBe(a.id);
  });

  it('pages by openedAt then id with a cursor, filtered by site, state, kind and since', () => {
    for (let i = 0; i < 25; i++) store.apply(raise({ key: `k${i}`, openedAt: T0 + (i % 5) * 1000, siteId: i % 2 ? 'S1' : 'S2' }));
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = store.list({ limit: 7, ...(cursor ? { cursor } : {}) });
      seen.push(...page.items.map((a) => `${a.openedAt}:${a.id}`));
      cursor = page.next;
    } while (cursor);
    expect(seen).toHaveLength(25);
    expect([...seen].sort()).toEqual(seen);
    expect(store.list({ limit: 100, siteIds: ['S1'] }).items).toHaveLength(12);
    expect(store.list({ limit: 100, since: T0 + 3000 }).items).toHaveLength(10);
    expect(store.list({ limit: 100, state: 'acked' }).items).toHaveLength(0);
    expect(store.list({ limit: 100, siteIds: [] }).items).toHaveLength(0);
  });

  it('detects a removed entry in the chain', () => {
    const a = store.apply(raise())!;
    store.ack(a.id, 'u1');
    store.resolve(a.id, 'u1');
    db.prepare('DELETE FROM audit_log WHERE seq = 2').run();
    expect(audit.verify()).toMatchObject({ ok: false, brokenAt: 3 });
  });
});

describe('audit trail inside a transaction that rolls back', () => {
  it('keeps the chain whole: the next entry links to the last one that committed', () => {
    const db = openStateDb(':memory:');
    const audit = new AuditTrail(db);
    audit.append('t.one', 's', { n: 1 }, 1);
    expect(() => db.transaction(() => { audit.append('t.two', 's', { n: 2 }, 2); throw new Error('abort'); })()).toThrow('abort');
    audit.append('t.three', 's', { n: 3 }, 3);
    expect(audit.verify()).toMatchObject({ ok: true, entries: 2 });
  });
});
