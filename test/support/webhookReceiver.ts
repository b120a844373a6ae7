import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  deliveryId: string;
  event: string;
  alertId: string;
  level: number;
  state: string;
  signatureOk: boolean;
  headerEvent: string | undefined;
}

/**
 * A real HTTP receiver on a free loopback port, as a regulator's platform would run one: it
 * checks each delivery's signature with its own copy of the secret, and answers `fail` requests
 * with 500 before it starts answering 200 (a receiver outage). `holdNext` leaves one request
 * unanswered, so a test can stop the sender while it waits for the answer.
 */
export async function webhookReceiver(secret: string, o: { fail?: number } = {}) {
  let failLeft = o.fail ?? 0;
  const accepted: Received[] = [];
  let requests = 0;
  const waiters = new Set<() => void>();
  const holds: { match: (r: Received) => boolean; taken: (r: Received) => void }[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests++;
      if (failLeft > 0) {
        failLeft--;
        res.writeHead(500).end('down for maintenance');
        return;
      }
      const raw = Buffer.concat(chunks);
      const expected = `sha256=${crypto.createHmac('sha256', secret).update(raw).digest('hex')}`;
      const got = String(req.headers['x-sitegate-signature'] ?? '');
      const body = JSON.parse(raw.toString('utf8'));
      const r: Received = {
        deliveryId: body.deliveryId, event: body.event, alertId: body.alert.id, level: body.alert.level, state: body.alert.state,
        signatureOk: got.length === expected.length && crypto.timingSafeEqual(Buffer.from(got), Buffer.from(expected)) && req.headers['x-sitegate-delivery'] === body.deliveryId,
        headerEvent: req.headers['x-sitegate-event'] as string | undefined,
      };
      const hold = holds.findIndex((h) => h.match(r));
      if (hold >= 0) {
        holds.splice(hold, 1)[0]!.taken(r); // no answer: the sender has it in flight, not delivered
        return;
      }
      accepted.push(r);
      res.writeHead(204).end();
      for (const w of waiters) w();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  return {
    url,
    accepted,
    get requests() { return requests; },
    /** Events received for one alert, first receipt of each delivery, in arrival order. */
    eventsOf(alertId: string): string[] {
      const seen = new Set<string>();
      return accepted.filter((r) => r.alertId === alertId && !seen.has(r.deliveryId) && seen.add(r.deliveryId)).map((r) => r.event);
    },
    /** Resolves once `done()` holds, checked now and after every accepted delivery (no polling). */
    until(done: () => boolean): Promise<void> {
      return new Promise((resolve) => {
        const check = () => { if (done()) { waiters.delete(check); resolve(); } };
        waiters.add(check);
        check();
      });
    },
    /**
     * The next request that `match`es is left unanswered (taken, never accepted: the sender must
     * make it again); resolves with it once it arrived. Later requests are answered as usual.
     */
    holdNext(match: (r: Received) => boolean): Promise<Received> {
      return new Promise((taken) => holds.push({ match, taken }));
    },
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}
