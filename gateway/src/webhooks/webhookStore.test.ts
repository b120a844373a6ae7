import { describe, expect, it } from 'vitest';
import { AlertStore } from '../alerts/alertStore.ts';
import { AuditTrail } from '../audit/auditTrail.ts';
import type { RaiseSignal } from '../checks/types.ts';
import { openStateDb } from '../state/stateDb.ts';
import { Transactions } from '../state/transactions.ts';
import { WebhookStore } from './webhookStore.ts';

const T0 = Date.parse('2026-09-01T02:00:00Z');
const raise = (over: Partial<RaiseSignal> = {}): RaiseSignal => ({
  type: 'raise', kind: 'hazard.threshold', siteId: 'S1', subject: { deviceId: 'D1', metric: 'pm10' },
  key: 'k1', severity: 'warning', openedAt: T0, message: 'pm10', evidence: {}, ...over,
});

function setup() {
  const db = openStateDb(':memory:');
  const sites: Record<string, { regionCode: string }> = { S1: { regionCode: '330106' }, S2: { regionCode: '511302' } };
  const hooks = new WebhookStore(db, { site: (id: string) => sites[id] as never }, () => T0);
  const alerts = new AlertStore({ db, audit: new AuditTrail(db), now: () => T0 });
  alerts.onEventInTransaction((e) => hooks.enqueue(e, () => alerts.view(e.alert)));
  const events = (id: string) => hooks.deliveries(id, { limit: 100 }).items.map((d) => d.event);
  return { db, hooks, alerts, events };
}

describe('webhook outbox (contract §6)', () => {
  it('filters by scope (regions or sites), levels, kind prefixes and events', () => {
    const { hooks, alerts, events } = setup();
    const secret = 's'.repeat(16);
    hooks.put('region', { url: 'http://x/1', secret, scope: { regions: ['3301'] } });
    hooks.put('other', { url: 'http://x/2', secret, scope: { regions: ['5113'] } });
    hooks.put('site2', { url: 'http://x/3', secret, scope: { sites: ['S2'] } });
    hooks.put('wages', { url: 'http://x/4', secret, scope: { regions: ['33'] }, kinds: ['wage.'] });
    hooks.put('l2', { url: 'http://x/5', secret, scope: { regions: ['33'] }, levels: [2] });
    hooks.put('acks', { url: 'http://x/6', secret, scope: { sites: ['S1'] }, events: ['acked'] });
    const a = alerts.apply(raise())!;
    alerts.apply(raise({ severity: 'critical' })); // severity changes are not a webhook event
    alerts.ack(a.id, 'u');
    alerts.apply(raise({ key: 'k2', siteId: 'S2' }));
    expect(events('region')).toEqual(['opened', 'acked']);
    expect(events('other')).toEqual(['opened']);
    expect(events('site2')).toEqual(['opened']);
    expect(events('wages')).toEqual([]);
    expect(events('l2')).toEqual([]);
    expect(events('acks')).toEqual(['acked']);
  });

  it('writes the deliveries in the alert change\'s transaction: a rollback leaves neither the change nor its deliveries', () => {
    const { db, hooks, alerts, events } = setup();
    hooks.put('all', { url: 'http://x/1', secret: 's'.repeat(16), scope: { sites: ['S1'] } });
    expect(() => Transactions.of(db).run(() => { alerts.apply(raise()); throw new Error('crash before the commit'); })).toThrow(/crash/);
    expect(events('all')).toEqual([]);
    expect(alerts.active('k1')).toBeUndefined();
    alerts.apply(raise());
    const [d] = hooks.deliveries('all', { limit: 1 }).items;
    expect(d).toMatchObject({ event: 'opened', state: 'pending', attempts: 0 });
    const body = JSON.parse(db.prepare('SELECT body FROM webhook_deliveries').pluck().get() as string);
    expect(body).toMatchObject({ deliveryId: d!.deliveryId, event: 'opened', alert: { id: alerts.active('k1')!.id, state: 'open', level: 1 } });
    expect(body.alert.history.map((h: { event: string }) => h.event)).toEqual(['opened']);
  });
});
