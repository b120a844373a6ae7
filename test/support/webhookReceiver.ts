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
 * with 500 before it starts answering 200 (a receiver outage).
 */
export async function webhookReceiver(secret: string, o: { fail?: number } = {}) {
  let failLeft = o.fail ?? 0;
  const accepted: Received[] = [];
  let requests = 0;
  const waiters = new Set<() => void>();
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
      accepted.push({
        deliveryId: body.deliveryId, event: body.event, alertId: body.alert.id, level: body.alert.level, state: body.alert.state,
        signatureOk: got.length === expected.length && crypto.timingSafeEqual(Buffer.from(got), Buffer.from(expected)) && req.headers['x-sitegate-delivery'] === body.deliveryId,
        headerEvent: req.headers['x-sitegate-event'] as string | undefined,
      });
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
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}
