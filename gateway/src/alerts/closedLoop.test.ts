import { describe, expect, it } from 'vitest';
import { AuditTrail } from '../audit/auditTrail.ts';
import type { RaiseSignal } from '../checks/types.ts';
import { openStateDb } from '../state/stateDb.ts';
import { AlertStore, type AlertEvent } from './alertStore.ts';
import { nextStep, REMINDER_AT } from './deadlines.ts';

const T0 = Date.parse('2026-09-01T02:00:00Z');
const MIN = 60_000;
const H = 60 * MIN;
const raise = (over: Partial<RaiseSignal> = {}): RaiseSignal => ({
  type: 'raise', kind: 'hazard.threshold', siteId: 'S1', subject: { deviceId: 'D1', metric: 'gas_lel_pct' },
  key: 'hazard.threshold:D1:gas_lel_pct:gas', severity: 'critical', openedAt: T0, message: 'gas 27 %LEL', evidence: {}, ...over,
});

function setup() {
  const db = openStateDb(':memory:');
  const clock = { t: T0 };
  const audit = new AuditTrail(db);
  const make = () => {
    const store = new AlertStore({ db, audit, now: () => clock.t });
    const events: AlertEvent[] = [];
    store.onEvent((e) => events.push(e));
    return { store, events };
  };
  return { db, clock, audit, make };
}

describe('the closed loop (contract §6): deadlines, escalation, reminders, handling', () => {
  it('critical: unacknowledged → level 2; acked but not rectified by dueAt → level 3; rectify, reopen, rectify, resolve', () => {
    const { clock, make, audit } = setup();
    const { store, events } = make();
    const a = store.apply(raise())!;
    expect(a.dueAt).toBe(T0 + 24 * H);
    clock.t = T0 + 24 * MIN; // 80 % of the 30-minute acknowledgement limit
    expect(store.escalateDue()).toEqual([]);
    expect(events.map((e) => e.type)).toEqual(['opened', 'reminder']);
    store.escalateDue();
    expect(events.filter((e) => e.type === 'reminder')).toHaveLength(1); // once per deadline
    clock.t = T0 + 31 * MIN;
    const [up] = store.escalateDue();
    expect(up).toMatchObject({ level: 2, levelSince: T0 + 30 * MIN, dueAt: T0 + 30 * MIN + 24 * H });
    store.handle(a.id, 'ack', 'construction_unit cu1', { note: '已派人处理' });
    clock.t = T0 + 30 * MIN + 0.8 * 24 * H;
    expect(store.escalateDue()).toEqual([]); // the rectification deadline's reminder
    clock.t = T0 + 30 * MIN + 24 * H; // the new deadline passes, acknowledged or not
    const [top] = store.escalateDue();
    expect(top).toMatchObject({ level: 3, state: 'acked', missedDue: true });
    clock.t += 48 * H;
    expect(store.escalateDue()).toEqual([]); // level 3 is the last
    expect(store.view(store.get(a.id)!).overdue).toBe(true);
    store.handle(a.id, 'rectify', 'construction_unit cu1', { note: '已更换探头', photos: ['a'.repeat(64)] });
    expect(() => store.handle(a.id, 'rectify', 'x', { note: 'again' })).toThrow(/is rectified/);
    const reopened = store.handle(a.id, 'reopen', 'regulator r1', { note: '照片不清晰' });
    expect(reopened).toMatchObject({ state: 'acked', dueAt: clock.t + 24 * H });
    store.handle(a.id, 'rectify', 'construction_unit cu1', { note: '补充照片', photos: ['b'.repeat(64)] });
    store.handle(a.id, 'resolve', 'regulator r1', { note: '验收通过' });
    const h = store.history(a.id);
    expect(h.map((x) => x.event)).toEqual(['opened', 'reminder', 'escalated', 'acked', 'reminder', 'escalated', 'rectified', 'reopened', 'rectified', 'resolved']);
    expect(h[6]).toMatchObject({ by: 'construction_unit cu1', photos: ['a'.repeat(64)] });
    expect(h[2]!.note).toMatch(/^处理不及时/);
    expect(h[5]!.note).toMatch(/^超期未整改/);
    expect(audit.verify()).toMatchObject({ ok: true });
    expect(store.get(a.id)).toMatchObject({ state: 'resolved', closedAt: clock.t });
  });

  it('a gateway that was down catches up step by step, from the deadlines, not from when it woke', () => {
    const { clock, make } = setup();
    const { store, events } = make();
    const a = store.apply(raise())!;
    clock.t = T0 + 5 * H; // ack limits 30 min then 2 h: both passed while down
    expect(store.escalateDue().map((x) => x.level)).toEqual([2, 3]);
    expect(store.get(a.id)).toMatchObject({ level: 3, levelSince: T0 + 150 * MIN, dueAt: T0 + 150 * MIN + 24 * H });
    expect(events.filter((e) => e.type === 'reminder')).toEqual([]); // deadlines that passed escalate, they are not reminded
  });

  it('a restart (a new store on the same database) neither loses nor repeats a timer', () => {
    const { clock, make } = setup();
    const first = make();
    const a = first.store.apply(raise({ severity: 'warning' }))!;
    clock.t = T0 + 20 * H; // reminder of the 24 h acknowledgement limit (80 % = 19.2 h)
    first.store.escalateDue();
    const second = make();
    second.store.escalateDue();
    expect(second.events).toEqual([]);
    clock.t = T0 + 24 * H;
    expect(second.store.escalateDue()).toHaveLength(1);
    const third = make();
    expect(third.store.escalateDue()).toEqual([]);
    expect(third.store.history(a.id).map((h) => h.event)).toEqual(['opened', 'reminder', 'escalated']);
  });

  it('info alerts have no deadline; a rise to critical brings one; a rectified alert is not cleared by the gateway', () => {
    const { clock, make } = setup();
    const { store } = make();
    const a = store.apply(raise({ severity: 'info' }))!;
    expect(a.dueAt).toBeUndefined();
    clock.t = T0 + H;
    expect(store.apply(raise({ severity: 'critical' }))!.dueAt).toBe(T0 + 25 * H);
    store.handle(a.id, 'rectify', 'cu', { note: 'fan installed' });
    expect(store.apply({ type: 'clear', kind: 'hazard.threshold', siteId: 'S1', key: raise().key, at: T0 + 2 * H })).toBeUndefined();
    expect(store.get(a.id)!.state).toBe('rectified');
    expect(store.active(raise().key)!.id).toBe(a.id); // still one alert per key while a regulator decides
  });

  it('reminds at 80 % of each deadline\'s time', () => {
    const alert = { state: 'acked', withdrawn: false, level: 1, levelSince: 0, dueAt: 100_000 } as const;
    expect(nextStep(alert as never, { escalationS: [30], rectifyS: 100 }, REMINDER_AT * 100_000 - 1)).toBeUndefined();
    expect(nextStep(alert as never, { escalationS: [30], rectifyS: 100 }, REMINDER_AT * 100_000)).toEqual({ type: 'remind', what: 'rectify', deadline: 100_000 });
  });
});
