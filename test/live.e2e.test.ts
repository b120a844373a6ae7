import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './support/gateway.ts';

const NOW = Date.now();

/** Reads Server-Sent Events from a fetch body until `want` events arrived. */
async function readEvents(res: Response, want: number): Promise<{ event: string; data: any }[]> {
  const reader = res.body!.getReader();
  const out: { event: string; data: any }[] = [];
  let buf = '';
  while (out.length < want) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += new TextDecoder().decode(value);
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const frame = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const event = /^event: (.+)$/m.exec(frame)?.[1];
      const data = /^data: (.+)$/m.exec(frame)?.[1];
      if (event && data) out.push({ event, data: JSON.parse(data) });
    }
  }
  await reader.cancel();
  return out;
}

describe('live feed (SSE) and the live page', () => {
  let g: TestGateway;
  let secret: string;
  let regulator: string;

  beforeAll(async () => {
    g = await startGateway();
    secret = await g.device('S1', 'ENV-1', 'sensor', '330106');
    await g.device('S2', 'ENV-2', 'sensor', '511302');
    regulator = (await g.api('POST', '/tokens', { role: 'regulator', scope: { regions: ['3301'] } })).json.token;
  });
  afterAll(async () => g?.stop());

  it('streams a site\'s readings and alerts to a ticket holder; tickets are single-use and scoped', async () => {
    const { ticket } = (await g.api('POST', '/live/tickets', undefined, { token: regulator })).json;
    const res = await fetch(`${g.httpUrl}/api/v1/live?siteId=S1&ticket=${ticket}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const events = readEvents(res, 2);
    const dev = await g.connect('ENV-1', secret);
    await dev.publishAsync('sites/S1/devices/ENV-1/telemetry', JSON.stringify({ id: 'l-1', ts: NOW, metrics: { pm10: 151 } }), { qos: 1 });
    g.gw.alerts.apply({ type: 'raise', kind: 'hazard.threshold', siteId: 'S1', subject: { deviceId: 'ENV-1', metric: 'pm10' }, key: 'k1', severity: 'warning', openedAt: NOW, message: 'pm10 1-h mean above 150', evidence: {} });
    const got = await events;
    expect(got[0]).toMatchObject({ event: 'reading', data: { deviceId: 'ENV-1', metrics: { pm10: 151 } } });
    expect(got[1]).toMatchObject({ event: 'alert', data: { event: 'opened', kind: 'hazard.threshold', siteId: 'S1' } });

    expect((await fetch(`${g.httpUrl}/api/v1/live?siteId=S1&ticket=${ticket}`)).status).toBe(401);
    const t2 = (await g.api('POST', '/live/tickets', undefined, { token: regulator })).json.ticket;
    expect((await fetch(`${g.httpUrl}/api/v1/live?siteId=S2&ticket=${t2}`)).status).toBe(403);
    expect((await fetch(`${g.httpUrl}/api/v1/live?siteId=S1`)).status).toBe(401);
  });

  describe('in a real browser (Debian chromium through playwright-core)', () => {
    let browser: Browser;
    beforeAll(async () => {
      browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-background-networking'] });
    });
    afterAll(async () => browser?.close());

    it('shows a reading published over MQTT and an alert, written as text', async () => {
      const page = await browser.newPage();
      await page.goto(`${g.httpUrl}/live?siteId=S1`);
      await page.fill('#token', regulator);
      await page.click('#connect');
      await page.waitForSelector('body[data-live="S1"]');
      const dev = await g.connect('ENV-1', secret);
      await dev.publishAsync('sites/S1/devices/ENV-1/telemetry', JSON.stringify({ id: 'b-1', ts: NOW + 1, metrics: { noise_dba: 71.5 } }), { qos: 1 });
      await page.waitForSelector('#readings td:text-is("71.5")');
      g.gw.alerts.apply({ type: 'raise', kind: 'hazard.threshold', siteId: 'S1', subject: { deviceId: 'ENV-1', metric: 'noise_dba' }, key: 'k2', severity: 'critical', openedAt: NOW, message: '<img src=x onerror=alert(1)> Leq above 70', evidence: {} });
      const li = await page.waitForSelector('#alerts li.critical');
      expect(await li.textContent()).toContain('<img src=x onerror=alert(1)>');
      expect(await page.$('#alerts img')).toBeNull();
      await page.close();
    });

    it('reports a refused token on the page', async () => {
      const page = await browser.newPage();
      await page.goto(`${g.httpUrl}/live?siteId=S1`);
      await page.fill('#token', 'sg_wrong');
      await page.click('#connect');
      await page.waitForSelector('#state:text-matches("refused")');
      await page.close();
    });
  });
});
