/**
 * MQTT-3.2.0-1: "The first packet sent from the Server to the Client MUST be a CONNACK Packet."
 *
 * aedes 1.2 restores a persistent session's subscriptions before it writes the CONNACK (connect
 * handler: restoreSubs, storeWill, registerClient, cleanIncoming, then doConnack), so a message
 * published in between is written first. In region mode that window includes the Redis round trips
 * of the will, and a message from another instance arrives through Redis: under load the
 * regulator's reconnecting client got a PUBLISH before its CONNACK, and mqtt.js then never handled
 * the CONNACK (a 30 s connack timeout in region.redis.e2e; Paho drops such a connection instead).
 *
 * Here a connecting client's deliveries wait for its CONNACK. They are not lost: held deliveries
 * run, in order, right after the CONNACK is written — or, if the connection closes first, run then
 * and fail as any write to a closed client does. A held delivery answers the broker at once, so the
 * message's other subscribers, and the publisher waiting for all of them, do not wait for this
 * client's connect (a QoS 1 message of a persistent session is in its queue already, and is
 * resent from there if the connection drops). Bounded: past MAX_HELD a delivery is answered and
 * dropped — QoS 0 may be lost by definition, and a persistent session's QoS 1 message waits in its
 * queue, which aedes empties right after the CONNACK.
 */
type Deliver = (packet: unknown, cb: (err?: unknown) => void) => void;

interface ConnectingClient {
  deliver0: Deliver;
  deliverQoS: Deliver;
  conn?: { once?(event: 'close', listener: () => void): unknown };
}

const held = new WeakMap<object, (() => void)[]>();
/** Deliveries held for one connecting client at most (a connect normally takes milliseconds). */
export const MAX_HELD = 1000;
const noop = () => {};

/** From aedes' `preConnect`: the client's deliveries wait until `release` (its CONNACK). */
export function holdDeliveriesUntilConnack(client: ConnectingClient): void {
  const queue: (() => void)[] = [];
  held.set(client, queue);
  for (const name of ['deliver0', 'deliverQoS'] as const) {
    const deliver = client[name];
    client[name] = (packet, cb) => {
      if (!held.has(client)) return deliver(packet, cb);
      if (queue.length < MAX_HELD) queue.push(() => deliver(packet, noop));
      setImmediate(cb);
    };
  }
  client.conn?.once?.('close', () => releaseDeliveries(client));
}

/** On aedes' `connackSent` (and on close): what was held goes out, in order; later deliveries go at once. */
export function releaseDeliveries(client: object): void {
  const queue = held.get(client);
  if (!queue) return;
  held.delete(client);
  for (const run of queue) run();
}
