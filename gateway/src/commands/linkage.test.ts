import type Database from 'better-sqlite3';
import pino from 'pino';
import { beforeEach, describe, expect, it } from 'vitest';
import type { LinkageRule } from '../../../schemas/src/command.ts';
import { AlertStore } from '../alerts/alertStore.ts';
import { AuditTrail } from '../audit/auditTrail.ts';
import { CheckProgress } from '../checks/progress.ts';
import type { RaiseSignal } from '../checks/types.ts';
import { createMetrics } from '../observability/metrics.ts';
import type { Device, Site } from '../registry/registry.ts';
import { openStateDb } from '../state/stateDb.ts';
import { CommandStore } from './commandStore.ts';
import { Linkage } from './linkage.ts';

const T0 = Date.parse('2026-11-02T08:00:00+08:00');
const KEY = 'hazard.threshold:DUST-1:pm10:dust-mean';
const raise = (over: Partial<RaiseSignal> = {}): RaiseSignal => ({
  type: 'raise', kind: 'hazard.threshold', siteId: 'S1', subject: { deviceId: 'DUST-1', metric: 'pm10' },
  key: KEY, severity: 'warning', openedAt: T0, message: 'pm10 1-h mean 162 > 150', evidence: { mean: 162 }, ...over,
});
const clear = { type: 'clear', kind: 'hazard.threshold', siteId: 'S1', key: KEY, at: T0 + 3_600_000 } as const;

/** Linkage (contract §7) on a real state database: what is sent, when, once, and after a crash. */
describe('linkage', () => {
  let db: Database.Database;
  let now: number;
  let audit: AuditTrail;
  let alerts: AlertStore;
  let commands: CommandStore;
  let rules: LinkageRule[];
  const devices: Record<string, Pick<Device, 'deviceId' | 'siteId'>> = { 'FOG-1': { deviceId: 'FOG-1', siteId: 'S1' }, 'FOG-9': { deviceId: 'FOG-9', siteId: 'S2' } };
  const registry = {
    site: (id: string) => (id === 'S1' ? { siteId: 'S1', settings: { linkage: rules } } as unknown as Site : undefined),
    device: (id: string) => devices[id] as Device | undefined,
  };
  const linkage = () => new Linkage({
    alerts, commands, registry, audit, progress: new CheckProgress(db, 'linkage'), metrics: createMetrics(), logger: pino({ level: 'silent' }), now: () => now,
  });

  beforeEach(() => {
    db = openStateDb(':memory:');
    now = T0 + 60_000;
    audit = new AuditTrail(db);
    alerts = new AlertStore({ db, audit, now: () => now });
    commands = new CommandStore({ db, audit, now: () => now });
    rules = [{ on: { kind: 'hazard.threshold', metric: 'pm10' }, deviceId: 'FOG-1', action: 'on', clearAction: 'off' }];
  });

  it('sends the action when a matching alert opens and the clearAction when it clears, each in the alert history and the audit trail', () => {
    linkage().start();
    const a = alerts.apply(raise())!;
    expect(commands.list('FOG-1').map((c) => [c.action, c.state, c.alertId, c.by])).toEqual([['on', 'pending', a.id, 'linkage']]);
    alerts.apply(raise({ severity: 'critical' })); // a rise in place sends nothing more
    now += 600_000;
    alerts.apply(clear);
    expect(commands.list('FOG-1').map((c) => c.action)).toEqual(['off', 'on']);
    const history = alerts.view(alerts.get(a.id)!).history;
    expect(history.map((h) => h.event)).toEqual(['opened', 'linkage', 'severity', 'cleared', 'linkage']);
    expect(history[1]!.note).toMatch(/^联动：已向 FOG-1 发送「on」.*linkage: sent "on" to FOG-1/);
    expect(audit.bySubject(`alert:${a.id}`).filter((e) => e.type === 'alert.linkage').map((e) => e.data.action)).toEqual(['on', 'off']);
    expect(audit.verify().ok).toBe(true);
  });

  it('honours metric and least severity: a warning does not trigger a critical rule, its rise to critical does', () => {
    rules = [
      { on: { kind: 'hazard.threshold', metric: 'pm2_5' }, deviceId: 'FOG-1', action: 'wrong-metric' },
      { on: { kind: 'hazard.threshold', severity: 'critical' }, deviceId: 'FOG-1', action: 'spray', params: { level: 3 } },
    ];
    linkage().start();
    alerts.apply(raise());
    expect(commands.list('FOG-1')).toEqual([]);
    alerts.apply(raise({ severity: 'critical' }));
    expect(commands.list('FOG-1').map((c) => [c.action, c.params])).toEqual([['spray', { level: 3 }]]);
    alerts.apply(clear); // no clearAction: nothing
    expect(commands.list('FOG-1')).toHaveLength(1);
  });

  it('after a crash between the alert commit and the linkage, a start sends what was missed, once', () => {
    const before = linkage();
    before.start();
    const first = alerts.apply(raise())!;
    before.stop();
    // "Crash": the alert of another key commits, its linkage never runs.
    const missed = alerts.apply(raise({ key: `${KEY}:2`, subject: { deviceId: 'DUST-2', metric: 'pm10' } }))!;
    expect(commands.ofAlert(missed.id)).toEqual([]);
    const l = linkage();
    l.start();
    expect(commands.ofAlert(missed.id).map((c) => c.action)).toEqual(['on']);
    expect(commands.ofAlert(first.id)).toHaveLength(1);
    l.stop();
    linkage().start(); // and again: nothing twice
    expect(commands.list('FOG-1')).toHaveLength(2);
  });

  it('region mode: an event this instance acts on does not move it past another instance\'s event its read of the trail has not brought yet', () => {
    const local = new Linkage({
      alerts, commands, registry, audit, progress: new CheckProgress(db, 'linkage'), metrics: createMetrics(), logger: pino({ level: 'silent' }), now: () => now,
      pollMs: 3_600_000, // the poll does not come during the test: only the restart reads the trail
    });
    local.start();
    // Another instance's alert store on the same database: its event reaches this one only through the trail.
    const elsewhere = new AlertStore({ db, audit, now: () => now });
    const theirs = elsewhere.apply(raise({ key: `${KEY}:2`, subject: { deviceId: 'DUST-2', metric: 'pm10' } }))!;
    const mine = alerts.apply(raise())!; // heard at once, acted on, a later audit seq than theirs
    expect(commands.ofAlert(mine.id)).toHaveLength(1);
    expect(commands.ofAlert(theirs.id)).toEqual([]);
    local.stop();
    linkage().start(); // the next holder of the duty begins where the trail was read
    expect(commands.ofAlert(theirs.id).map((c) => c.action)).toEqual(['on']);
    expect(commands.ofAlert(mine.id)).toHaveLength(1);
  });

  it('sends nothing for an alert that opened longer ago than the command may live, nor to another site\'s device', () => {
    linkage().start();
    now = T0 + 601_000; // default time to live 600 s
    const old = alerts.apply(raise())!;
    alerts.apply(clear);
    expect(commands.ofAlert(old.id)).toEqual([]); // and no clearAction for an action never sent
    rules = [{ on: { kind: 'hazard.threshold' }, deviceId: 'FOG-9', action: 'on' }];
    alerts.apply(raise({ openedAt: now }));
    expect(commands.list('FOG-9')).toEqual([]);
  });
});
