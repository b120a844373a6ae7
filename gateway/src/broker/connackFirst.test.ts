/**
 * The hold on a connecting client's deliveries (connackFirst.ts) on its own; test/mqtt.e2e.test.ts
 * shows it on the wire with real aedes and a raw client.
 */
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { holdDeliveriesUntilConnack, MAX_HELD, releaseDeliveries } from './connackFirst.ts';

/** What aedes' client has of it here: two deliver functions and a connection that can close. */
function client() {
  const written: string[] = [];
  const c = {
    conn: new EventEmitter(),
    deliver0: (p: unknown, cb: () => void) => { written.push(`0:${String(p)}`); cb(); },
    deliverQoS: (p: unknown, cb: () => void) => { written.push(`1:${String(p)}`); cb(); },
  };
  return { c, written };
}
const answered = (n: number) => {
  let count = 0;
  let done!: () => void;
  const all = new Promise<void>((resolve) => { done = resolve; });
  return { cb: () => { if (++count === n) done(); }, all };
};

describe('deliveries held until the CONNACK', () => {
  it('answers the broker at once, delivers nothing before the CONNACK, then all in order, then at once', async () => {
    const { c, written } = client();
    holdDeliveriesUntilConnack(c);
    const a = answered(3);
    c.deliverQoS('a', a.cb);
    c.deliver0('b', a.cb);
    c.deliverQoS('c', a.cb);
    await a.all; // the publisher and other subscribers do not wait for this connect
    expect(written).toEqual([]);
    releaseDeliveries(c);
    expect(written).toEqual(['1:a', '0:b', '1:c']);
    c.deliverQoS('d', () => {});
    expect(written).toEqual(['1:a', '0:b', '1:c', '1:d']);
  });

  it('lets them go when the connection closes first (they fail there as any write to a closed client)', () => {
    const { c, written } = client();
    holdDeliveriesUntilConnack(c);
    c.deliverQoS('a', () => {});
    c.conn.emit('close');
    expect(written).toEqual(['1:a']);
  });

  it('holds at most MAX_HELD, answering every one', async () => {
    const { c, written } = client();
    holdDeliveriesUntilConnack(c);
    const a = answered(MAX_HELD + 5);
    for (let i = 0; i < MAX_HELD + 5; i++) c.deliver0(i, a.cb);
    await a.all;
    releaseDeliveries(c);
    expect(written).toHaveLength(MAX_HELD);
    expect(written[MAX_HELD - 1]).toBe(`0:${MAX_HELD - 1}`);
  });
});
